"""Fixtures of the consent tests: a controllable clock, a config, the site under both adapters."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from mypharm_consent import Category, ConsentConfig

from .sites import asgi_site, client_for, wsgi_site

SECRET = "a-long-enough-secret-key-for-tests"
OLD_SECRET = "an-older-secret-key-still-accepted"


def run_with_debug_log(script: str, environment: dict[str, str]) -> tuple[str, str]:
    """Standard output and error of ``script`` run by this Python at the checkout's top.

    Logging is at DEBUG level (to see which path a module chose), and
    ``environment`` is added to this process's environment: how the tests
    check the pure-Python paths of the optional C extensions.
    """
    prelude = "import logging; logging.basicConfig(level=logging.DEBUG)\n"
    result = subprocess.run(
        [sys.executable, "-c", prelude + script],
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    return result.stdout, result.stderr


class FakeClock:
    """A clock tests move by hand (seconds since the epoch)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    @classmethod
    def real(cls) -> Callable[[], float]:
        """The real clock, for tests against a browser (its cookies use real time)."""
        return time.time


def categories() -> list[Category]:
    """The categories of the test site: the three a pharmacy site typically declares."""
    return [
        Category(
            "preferences",
            label={"fr": "Préférences", "en": "Preferences"},
            description={"fr": "Mémorisent vos réglages.", "en": "Remember your settings."},
            cookies=("pref_*",),
        ),
        Category(
            "analytics",
            label={"fr": "Mesure d'audience", "en": "Analytics"},
            description={"fr": "Statistiques de visite.", "en": "Visit statistics."},
            cookies=("_ga", "_ga_*"),
        ),
        Category(
            "marketing",
            label={"fr": "Marketing", "en": "Marketing"},
            description={"fr": "Publicités adaptées.", "en": "Relevant ads."},
            cookies=("_fbp",),
        ),
    ]


def make_config(**overrides: Any) -> ConsentConfig:
    """A test configuration (plain http, small size cap), with ``overrides`` applied."""
    settings: dict[str, Any] = {
        "secret_keys": [SECRET],
        "categories": categories(),
        "cookie_secure": False,
        "exclude_paths": ("/excluded",),
        "html_size_cap": 4096,
        "privacy_policy_url": "/confidentialite",
    }
    settings.update(overrides)
    return ConsentConfig(**settings)


@pytest.fixture
def clock() -> FakeClock:
    """The clock every middleware of a test reads."""
    return FakeClock()


@pytest.fixture(params=["asgi", "wsgi"])
def adapter(request: pytest.FixtureRequest) -> str:
    """Each protocol test runs once through each adapter."""
    return str(request.param)


SiteFactory = Callable[..., httpx.Client]


@pytest.fixture
def site(adapter: str, clock: FakeClock) -> Iterator[SiteFactory]:
    """Factory: ``site(**config_overrides)`` -> a client of the test site under ``adapter``."""
    clients: list[httpx.Client] = []

    def build(**overrides: Any) -> httpx.Client:
        config = make_config(**overrides)
        app = asgi_site(config, clock) if adapter == "asgi" else wsgi_site(config, clock)
        client = client_for(adapter, app)
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()


@pytest.fixture
def client(site: SiteFactory) -> httpx.Client:
    """A client of the test site with the default test configuration."""
    return site()


def form_token(html: str) -> str:
    """The signed form token in a rendered banner or preferences page."""
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no form token in the page"
    return match.group(1)


def decide(
    client: httpx.Client,
    action: str,
    *,
    categories: tuple[str, ...] = (),
    next_path: str = "/",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """Post a choice the way the banner's form does (token taken from a real page)."""
    token = form_token(client.get("/_consent/preferences").text)
    fields = [("csrf", token), ("action", action), ("next", next_path)]
    fields += [("category", name) for name in categories]
    return client.post(
        "/_consent/decide",
        content=httpx.QueryParams(fields).__str__().encode(),
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "origin": "http://testserver",
            "sec-fetch-site": "same-origin",
            **(headers or {}),
        },
        follow_redirects=False,
    )


ROOT = Path(__file__).resolve().parents[2]


def load_example(relative: str) -> ModuleType:
    """Import an example module by its path (examples are not an installed package)."""
    path = ROOT / relative
    name = "example_" + "_".join(path.with_suffix("").parts[-2:])
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
