"""The public surface of the beacon core: what ``beacon`` exports, typed and documented."""

from __future__ import annotations

import importlib
import inspect

import pytest

import beacon

CORE_MODULES = [
    "beacon.anonymize",
    "beacon.app",
    "beacon.cli",
    "beacon.cli.db",
    "beacon.exceptions",
    "beacon.flusher",
    "beacon.migrations",
    "beacon.pageviews",
    "beacon.spool",
    "beacon.store",
    "beacon.useragent",
]


def test_package_exports() -> None:
    assert {"Beacon", "BeaconError", "PixelEvent", "Store", "open_store"} <= set(beacon.__all__)
    for name in beacon.__all__:
        assert getattr(beacon, name).__doc__


@pytest.mark.parametrize("module_name", CORE_MODULES)
def test_every_public_name_is_documented(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert module.__doc__
    for name in module.__all__:
        value = getattr(module, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__doc__, f"{module_name}.{name} has no docstring"


def test_exception_tree_is_drawn_in_its_docstring() -> None:
    from beacon import exceptions

    for name in exceptions.__all__:
        assert name in (exceptions.__doc__ or "")
        assert issubclass(getattr(exceptions, name), exceptions.BeaconError)
