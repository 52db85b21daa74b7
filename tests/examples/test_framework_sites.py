"""The FastAPI and Django example sites work as the integration guide says."""

from __future__ import annotations

import importlib
from typing import Any

import httpx
import pytest
from starlette.requests import Request

from mypharm_consent import ConfigurationError
from mypharm_consent.fastapi import get_consent
from tests.consent.conftest import decide
from tests.consent.sites import SyncASGITransport


def _fastapi_client() -> httpx.Client:
    app = importlib.import_module("examples.fastapi_site.app").app
    return httpx.Client(transport=SyncASGITransport(app), base_url="http://testserver")


def _django_client() -> httpx.Client:
    application = importlib.import_module("examples.django_site.app").application
    return httpx.Client(
        transport=httpx.WSGITransport(app=application), base_url="http://testserver"
    )


@pytest.mark.parametrize(
    "make_client", [_fastapi_client, _django_client], ids=["fastapi", "django"]
)
def test_the_site_shows_the_banner_until_a_choice_then_remembers_it(make_client: Any) -> None:
    with make_client() as client:
        first = client.get("/")
        assert first.status_code == 200
        assert 'id="mypharm-consent-banner"' in first.text
        assert "Marketing autorisé : <strong>non</strong>" in first.text
        assert decide(client, "accept_all").status_code == 303
        after = client.get("/")
        assert 'id="mypharm-consent-banner"' not in after.text
        assert "Marketing autorisé : <strong>oui</strong>" in after.text


@pytest.mark.parametrize(
    "make_client", [_fastapi_client, _django_client], ids=["fastapi", "django"]
)
def test_a_refusal_is_seen_by_the_view(make_client: Any) -> None:
    with make_client() as client:
        assert decide(client, "reject_all").status_code == 303
        page = client.get("/")
        assert 'id="mypharm-consent-banner"' not in page.text
        assert "Marketing autorisé : <strong>non</strong>" in page.text


def test_the_fastapi_dependency_hands_json_views_the_consent() -> None:
    with _fastapi_client() as client:
        assert client.get("/api/consent").json() == {"decided": False, "granted": ["necessary"]}
        decide(client, "save", categories=("analytics",))
        assert client.get("/api/consent").json() == {
            "decided": True,
            "granted": ["analytics", "necessary"],
        }


def test_the_fastapi_dependency_is_not_a_query_parameter_in_the_openapi_schema() -> None:
    app = importlib.import_module("examples.fastapi_site.app").app
    operation = app.openapi()["paths"]["/api/consent"]["get"]
    assert "parameters" not in operation


def test_the_django_pages_keep_their_own_headers() -> None:
    with _django_client() as client:
        page = client.get("/")
        assert page.headers["content-type"].startswith("text/html")
        assert int(page.headers["content-length"]) == len(page.content)
        assert "Cookie" in page.headers["vary"]


def test_get_consent_without_the_middleware_is_a_clear_configuration_error() -> None:
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})
    with pytest.raises(ConfigurationError, match="add ConsentMiddleware"):
        get_consent(request)
