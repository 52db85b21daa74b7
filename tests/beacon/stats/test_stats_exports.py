"""The public names of the statistics, account and dashboard packages."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize(
    ("module", "names"),
    [
        (
            "beacon.stats",
            {
                "StatsQueries",
                "DateRange",
                "InvalidFilter",
                "OTHER",
                "DEFAULT_K",
                "as_json",
                "Table",
            },
        ),
        ("beacon.auth", {"AccountStore", "SessionSigner", "LoginThrottle", "ROLES"}),
        ("beacon.dashboard", {"Dashboard", "create_dashboard"}),
        ("beacon.demo", {"seed_demo", "synthetic_events", "DemoAccount"}),
    ],
)
def test_exported_names(module, names):
    imported = importlib.import_module(module)
    assert names <= set(imported.__all__)
    for name in imported.__all__:
        assert getattr(imported, name) is not None, name
