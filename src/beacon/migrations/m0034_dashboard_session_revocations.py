"""``dashboard_session_revocations``: dashboard sessions ended by logging out.

A session cookie stays correctly signed until it expires, so logging out
must be remembered on the server for a copy of the cookie to stop working.
One row per ended session: the SHA-256 of its random id (never the id
itself), the account, when it was ended and when the cookie would have
expired anyway; rows leave with the TTL once that moment has passed. Small
and replicated on every node of a cluster, so every dashboard process sees
a logout.
"""

from __future__ import annotations

from beacon.migrations import Schema

__all__ = ["SESSION_REVOCATIONS", "statements"]

SESSION_REVOCATIONS = "dashboard_session_revocations"


def statements(schema: Schema) -> list[str]:
    """Create the table of ended dashboard sessions."""
    return [
        *schema.create_table(
            SESSION_REVOCATIONS,
            [
                ("session_hash", "String"),
                ("name", "String"),
                ("revoked_at", "DateTime('UTC')"),
                ("expires_at", "DateTime('UTC')"),
            ],
            engine="ReplacingMergeTree",
            engine_args="",
            order_by="session_hash",
            ttl="expires_at + INTERVAL 1 DAY",
            everywhere=True,
        ),
    ]
