"""Accounts of the statistics dashboard and their API tokens.

``dashboard_users``: one row per version of an account (name, role, salted
scrypt password hash, a ``deleted`` flag); ``ReplacingMergeTree(version)``
keeps the latest and readers take ``argMax(..., version)`` so that an answer
is right before background merges. ``dashboard_tokens``: the SHA-256 of each
API token (never the token), its owner and a label, versioned the same way.
Both are small and replicated on every node of a cluster.
"""

from __future__ import annotations

from beacon.migrations import Schema

__all__ = ["DASHBOARD_TOKENS", "DASHBOARD_USERS", "statements"]

DASHBOARD_USERS = "dashboard_users"
DASHBOARD_TOKENS = "dashboard_tokens"


def statements(schema: Schema) -> list[str]:
    """Create the account and token tables."""
    return [
        *schema.create_table(
            DASHBOARD_USERS,
            [
                ("name", "String"),
                ("role", "LowCardinality(String)"),
                ("password_hash", "String"),
                ("created_at", "DateTime('UTC')"),
                ("deleted", "UInt8"),
                ("version", "UInt64"),
            ],
            engine="ReplacingMergeTree",
            engine_args="version",
            order_by="name",
            everywhere=True,
        ),
        *schema.create_table(
            DASHBOARD_TOKENS,
            [
                ("token_hash", "String"),
                ("name", "String"),
                ("label", "String"),
                ("created_at", "DateTime('UTC')"),
                ("deleted", "UInt8"),
                ("version", "UInt64"),
            ],
            engine="ReplacingMergeTree",
            engine_args="version",
            order_by="token_hash",
            everywhere=True,
        ),
    ]
