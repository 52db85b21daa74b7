"""The history endpoints and page part, framework-free, over the real receipt store."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest

from beacon.receipts.store import ReceiptStore
from mypharm_consent.config import Category, ConsentConfig
from mypharm_consent.cookie import ConsentCookie
from mypharm_consent.csrf import CsrfGuard
from mypharm_consent.history import (
    HISTORY_TEXTS,
    ConsentHistory,
    HistoryAnswer,
    HistoryRefusal,
)

from .receipt_helpers import insert_receipts, make_receipt

CONFIG = ConsentConfig(
    secret_keys=["history-tests-secret-key-0001"],
    categories=[
        Category(
            "analytics",
            label={"fr": "Mesure", "en": "Analytics"},
            description={"fr": "Audience", "en": "Audience"},
        ),
        Category(
            "marketing",
            label={"fr": "Publicité", "en": "Marketing"},
            description={"fr": "Offres", "en": "Offers"},
        ),
    ],
    cookie_secure=False,
)
HOST = "shop.example"


@pytest.fixture
def history(receipts: ReceiptStore) -> ConsentHistory:
    return ConsentHistory(
        CONFIG,
        receipts,
        cookie=ConsentCookie(CONFIG),
        csrf=CsrfGuard(CONFIG),
        texts=HISTORY_TEXTS,
    )


def cookie_for(
    consent_id: str, granted: frozenset[str] = frozenset({"analytics"}), *, age: float = 0
) -> str:
    signer = ConsentCookie(CONFIG, clock=lambda: time.time() - age)
    return f"{CONFIG.cookie_name}={signer.encode(consent_id, granted)}"


def answered(result: HistoryAnswer | HistoryRefusal) -> HistoryAnswer:
    assert isinstance(result, HistoryAnswer), result
    return result


def post(
    history: ConsentHistory,
    path: str,
    cookie: str | None,
    *,
    token: str | None = None,
    **headers: str,
) -> HistoryAnswer | HistoryRefusal:
    form = {"csrf": token if token is not None else CsrfGuard(CONFIG).token()}
    all_headers = {"host": HOST, "content-type": "application/x-www-form-urlencoded", **headers}
    if cookie:
        all_headers["cookie"] = cookie
    return history.handle("POST", path, all_headers, urlencode(form).encode())


VISITOR = "Zx3_kq9-VbN2mR7wT1yPdA"
OTHER = "Qq1_aa2-BbC3dD4eE5fF6g"


def test_download_is_the_cookie_holders_history(store: Any, history: ConsentHistory) -> None:
    insert_receipts(store, make_receipt(VISITOR, 0), make_receipt(OTHER, 1))
    answer = history.handle("GET", "/_consent/history.json", {"cookie": cookie_for(VISITOR)}, b"")
    assert answer.status == 200
    headers = dict(answer.headers)
    assert headers["content-disposition"] == 'attachment; filename="consent-history.json"'
    assert headers["content-type"].startswith("application/json")
    assert headers["cache-control"] == "no-store"
    document = json.loads(answer.body)
    assert [r["consent_id"] for r in document["receipts"]] == [VISITOR]


@pytest.mark.parametrize(
    "cookie",
    [None, "mypharm_consent=forged.value.sig", f"mypharm_consent={VISITOR}"],
    ids=["none", "forged", "bare-id"],
)
def test_without_a_genuine_cookie_nothing_is_shown(
    store: Any, history: ConsentHistory, cookie: str | None
) -> None:
    insert_receipts(store, make_receipt(VISITOR, 0))
    headers = {"cookie": cookie} if cookie else {}
    answer = answered(history.handle("GET", "/_consent/history.json", headers, b""))
    assert answer.status == 404
    assert VISITOR.encode() not in answer.body
    assert post(history, "/_consent/erase", cookie).status == 303
    assert ReceiptStore(store).erasure_status(VISITOR).state == "none"


def test_a_cookie_signed_with_a_revoked_key_reaches_nothing(
    store: Any, history: ConsentHistory
) -> None:
    insert_receipts(store, make_receipt(VISITOR, 0))
    revoked = ConsentConfig(secret_keys=["a-key-the-site-has-since-revoked"], cookie_secure=False)
    value = ConsentCookie(revoked).encode(VISITOR, frozenset({"necessary"}))
    cookie = f"{CONFIG.cookie_name}={value}"
    answer = answered(history.handle("GET", "/_consent/history.json", {"cookie": cookie}, b""))
    assert (answer.status, json.loads(answer.body)) == (404, {"outcome": "no-consent"})
    assert history.view(cookie, "", "fr").context["receipts"] == []
    refused = answered(post(history, "/_consent/erase", cookie, accept="application/json"))
    assert (refused.status, json.loads(refused.body)["outcome"]) == (403, "no-consent")


def test_a_decision_not_stored_yet_downloads_an_empty_history(history: ConsentHistory) -> None:
    answer = history.handle("GET", "/_consent/history.json", {"cookie": cookie_for(VISITOR)}, b"")
    assert answer.status == 200
    assert json.loads(answer.body)["receipts"] == []


def test_erase_then_cancel_through_the_forms(
    store: Any, history: ConsentHistory, receipts: ReceiptStore
) -> None:
    insert_receipts(store, make_receipt(VISITOR, 0))
    cookie = cookie_for(VISITOR)
    answer = answered(post(history, "/_consent/erase", cookie))
    assert answer.status == 303
    assert dict(answer.headers)["location"] == (
        "/_consent/preferences?history=erasure-requested#mypharm-consent-history"
    )
    assert receipts.erasure_status(VISITOR).state == "requested"
    again = answered(post(history, "/_consent/erase", cookie))
    assert "history=erasure-already" in dict(again.headers)["location"]
    cancelled = answered(post(history, "/_consent/erase/cancel", cookie, accept="application/json"))
    assert cancelled.status == 200
    assert json.loads(cancelled.body)["outcome"] == "erasure-cancelled"
    assert json.loads(cancelled.body)["erasure"]["state"] == "cancelled"
    assert receipts.erasure_status(VISITOR).state == "cancelled"


def test_cancel_after_the_deadline_is_refused(
    store: Any, history: ConsentHistory, receipts: ReceiptStore, clock: Any
) -> None:
    insert_receipts(store, make_receipt(VISITOR, 0))
    cookie = cookie_for(VISITOR)
    post(history, "/_consent/erase", cookie)
    clock.advance(timedelta(hours=24))
    answer = answered(post(history, "/_consent/erase/cancel", cookie, accept="application/json"))
    assert (answer.status, json.loads(answer.body)["outcome"]) == (409, "erasure-too-late")


@pytest.mark.parametrize(
    ("headers", "token"),
    [
        ({"origin": "https://evil.example"}, None),
        ({"sec-fetch-site": "cross-site"}, None),
        ({}, ""),
        ({}, "forged-token"),
    ],
    ids=["foreign-origin", "cross-site", "no-token", "forged-token"],
)
def test_cross_site_erasure_is_refused(
    store: Any,
    history: ConsentHistory,
    receipts: ReceiptStore,
    headers: dict[str, str],
    token: str | None,
) -> None:
    insert_receipts(store, make_receipt(VISITOR, 0))
    answer = post(history, "/_consent/erase", cookie_for(VISITOR), token=token, **headers)
    assert answer.status == 403
    assert receipts.erasure_status(VISITOR).state == "none"


@pytest.mark.parametrize(
    ("method", "path", "body", "content_type", "status"),
    [
        ("GET", "/_consent/erase", b"", "", 405),
        ("DELETE", "/_consent/history.json", b"", "", 405),
        ("POST", "/_consent/erase", b"x" * 9000, "application/x-www-form-urlencoded", 413),
        ("POST", "/_consent/erase", b"{}", "application/json", 415),
        ("POST", "/_consent/erase", b"\xff\xfe", "application/x-www-form-urlencoded", 400),
        (
            "POST",
            "/_consent/erase",
            b"&".join([b"a=1"] * 50),
            "application/x-www-form-urlencoded",
            400,
        ),
    ],
    ids=["get-erase", "delete-download", "huge", "json-body", "not-utf8", "too-many-fields"],
)
def test_bad_requests_get_clear_errors(
    history: ConsentHistory, method: str, path: str, body: bytes, content_type: str, status: int
) -> None:
    headers = {"host": HOST, "content-type": content_type, "cookie": cookie_for(VISITOR)}
    assert history.handle(method, path, headers, body).status == status


def test_the_page_lists_receipts_newest_first(store: Any, history: ConsentHistory) -> None:
    insert_receipts(
        store,
        make_receipt(VISITOR, 0),
        make_receipt(
            VISITOR,
            5,
            action="withdraw",
            granted=("necessary",),
            refused=("analytics", "marketing"),
        ),
    )
    view = history.view(cookie_for(VISITOR), "history=erasure-cancelled", "fr")
    rows = view.context["receipts"]
    assert [r["action"] for r in rows] == ["Consentement retiré", "Tout accepté"]
    assert rows[0]["refused"] == ["Mesure", "Publicité"]
    assert rows[1]["time"] == "02/11/2026 09:30 UTC"
    assert view.context["notice"] == HISTORY_TEXTS["fr"]["history_erasure_cancelled"]
    assert view.headers == []


def test_the_page_never_echoes_the_query(history: ConsentHistory) -> None:
    view = history.view(cookie_for(VISITOR), "history=<script>alert(1)</script>", "en")
    assert view.context["notice"] is None


def test_after_erasure_the_page_rotates_the_consent_id(
    store: Any, history: ConsentHistory, receipts: ReceiptStore
) -> None:
    insert_receipts(store, make_receipt(VISITOR, 0))
    receipts.erase_now(VISITOR)
    cookie = ConsentCookie(CONFIG)
    ten_days = 10 * 24 * 3600
    view = history.view(cookie_for(VISITOR, frozenset({"marketing"}), age=ten_days), "", "en")
    [(name, set_cookie)] = view.headers
    assert name == "set-cookie"
    value = set_cookie.split(";")[0].split("=", 1)[1]
    payload = cookie.decode(value)
    assert payload is not None
    assert payload.consent_id != VISITOR
    assert payload.granted == frozenset({"necessary", "marketing"})
    # Same expiry as before: the rotated cookie keeps the original decision time.
    assert abs(payload.decided_at.timestamp() - (time.time() - ten_days)) < 5
    assert view.context["erasure"] == "done"


def test_a_store_outage_shows_a_notice_not_an_error(clickhouse_url: str) -> None:
    from beacon.store import Store

    broken = ConsentHistory(
        CONFIG,
        ReceiptStore(Store(clickhouse_url)),
        cookie=ConsentCookie(CONFIG),
        csrf=CsrfGuard(CONFIG),
        texts=HISTORY_TEXTS,
    )
    view = broken.view(cookie_for(VISITOR), "", "fr")
    assert view.context["unavailable"] is True
    answer = broken.handle("GET", "/_consent/history.json", {"cookie": cookie_for(VISITOR)}, b"")
    assert answer.status == 503
