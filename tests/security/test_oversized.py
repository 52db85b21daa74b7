"""Oversized inputs on every POST route: a clear refusal, never a 5xx, nothing recorded."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from beacon import Beacon
from tests.beacon.stats.stats_dataset import ADMIN

FORM = {"content-type": "application/x-www-form-urlencoded"}
MEGABYTE = 1024 * 1024


def _streamed(size: int) -> Iterator[bytes]:
    """A body sent in chunks without a ``Content-Length`` (chunked transfer)."""
    chunk = b"a=" + b"x" * 8190
    for _ in range(size // len(chunk) + 1):
        yield chunk


def test_consent_decision_over_the_size_cap_is_413(consent_client: httpx.Client) -> None:
    body = b"action=accept_all&next=/" + b"a" * MEGABYTE
    response = consent_client.post("/_consent/decide", content=body, headers=FORM)
    assert response.status_code == 413
    assert "set-cookie" not in response.headers


def test_streamed_consent_decision_over_the_size_cap_is_413(
    consent_served: httpx.Client,
) -> None:
    response = consent_served.post("/_consent/decide", content=_streamed(MEGABYTE), headers=FORM)
    assert response.status_code == 413
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize(
    "body",
    [
        b"&".join([b"category=analytics"] * 5000),
        b"next=" + b"/" * 7000,
        b"action=" + b"\xff" * 4000,
        b"csrf=" + b"A" * 7000 + b"&action=save",
    ],
    ids=["too many fields", "long next", "not utf-8", "long token"],
)
def test_consent_decision_with_hostile_fields_is_a_4xx(
    consent_client: httpx.Client, body: bytes
) -> None:
    response = consent_client.post("/_consent/decide", content=body, headers=FORM)
    assert 400 <= response.status_code < 500
    assert "set-cookie" not in response.headers


def test_consent_pages_survive_huge_headers(consent_client: httpx.Client) -> None:
    headers = {
        "cookie": "mypharm_consent=" + "A" * 6000 + "; other=" + "b" * 6000,
        "accept-language": "fr;q=0.5," * 800,
        "sec-gpc": "1" * 3000,
    }
    response = consent_client.get("/", headers=headers)
    assert response.status_code == 200
    assert "/_consent/decide" in response.text


def test_beacon_event_over_the_size_cap_is_not_recorded(
    beacon_client: tuple[Beacon, httpx.Client],
) -> None:
    tracker, http = beacon_client
    for content in (b'{"u": "/' + b"a" * MEGABYTE + b'"}', _streamed(MEGABYTE)):
        response = http.post("/b/e", content=content, headers={"content-type": "text/plain"})
        assert response.status_code == 204
    counters = tracker.counters()
    assert counters["bad_requests"] == 2
    assert counters["recorded"] == 0


def test_beacon_unsubscribe_with_huge_token_or_body_is_a_4xx(
    beacon_client: tuple[Beacon, httpx.Client],
) -> None:
    _, http = beacon_client
    assert http.post("/b/u/" + "A" * 20_000, content=b"x").status_code == 400
    token = "A" * 40 + "." + "B" * 22
    response = http.post(f"/b/u/{token}", content=b"x" * MEGABYTE, headers=FORM)
    assert response.status_code == 400


@pytest.mark.parametrize(
    "path",
    [
        "/stats/login",
        "/stats/logout",
        "/stats/users",
        f"/stats/users/{ADMIN[0]}/remove",
        f"/stats/users/{ADMIN[0]}/token",
    ],
)
@pytest.mark.parametrize("declared", [True, False])
def test_dashboard_forms_over_the_size_cap_are_413(
    logged_in: httpx.Client, path: str, declared: bool
) -> None:
    body = b"username=alice&password=" + b"p" * MEGABYTE
    content = body if declared else _streamed(MEGABYTE)
    response = logged_in.post(path, content=content, headers=FORM)
    assert response.status_code == 413
    assert "trop volumineux" in response.text
    assert "location" not in response.headers
    # The session still works and the account is still there.
    users = logged_in.get("/stats/users")
    assert users.status_code == 200
    assert ADMIN[0] in users.text
