"""The consent protocol, end to end, through both adapters (every test runs for ASGI and WSGI)."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import httpx
import pytest

from mypharm_consent import ConsentDecision

from .conftest import OLD_SECRET, SECRET, FakeClock, SiteFactory, decide, form_token
from .sites import PAGE, big_page_chunks

BANNER = 'id="mypharm-consent-banner"'
SIX_MONTHS = 182 * 24 * 3600


def set_cookies(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


def consent_state(client: httpx.Client) -> dict[str, object]:
    response = client.get("/state")
    assert response.status_code == 200
    data: dict[str, object] = response.json()
    return data


# -- first visit -------------------------------------------------------------


def test_first_visit_shows_the_banner_before_body_end_and_sets_no_cookie(
    client: httpx.Client,
) -> None:
    response = client.get("/")
    assert response.status_code == 200
    body = response.text
    assert BANNER in body
    assert body.index(BANNER) < body.rindex("</body>")
    assert body.startswith(PAGE[: PAGE.index("</body>")])
    assert set_cookies(response) == []
    assert int(response.headers["content-length"]) == len(response.content)
    assert "Cookie" in response.headers["vary"]
    # The page now depends on the cookie: the app's validator must not be reused.
    assert "etag" not in response.headers


def test_no_cookie_is_set_anywhere_before_the_first_choice(client: httpx.Client) -> None:
    paths = ["/", "/chunked", "/plain", "/state", "/missing", "/_consent/preferences"]
    paths += ["/_consent/static/consent.js", "/_consent/decide", "/_consent/nothing"]
    for path in paths:
        assert set_cookies(client.get(path)) == [], path
    assert set_cookies(client.post("/_consent/decide", data={"action": "accept_all"})) == []
    assert list(client.cookies.jar) == []


def test_the_three_choices_are_offered_with_equal_prominence(client: httpx.Client) -> None:
    body = client.get("/").text
    buttons = {
        label: re.search(rf"<(\w+)([^>]*)>{label}</\1>", body)
        for label in ("Accepter tout", "Refuser tout", "Personnaliser")
    }
    assert all(buttons.values()), buttons
    shapes = {
        (m.group(1), re.search(r'class="([^"]+)"', m.group(2)).group(1))  # type: ignore[union-attr]
        for m in buttons.values()
        if m
    }
    assert shapes == {("button", "mpc-button")}
    assert "Continuer sans accepter" in body


def test_no_optional_category_is_pre_ticked(client: httpx.Client) -> None:
    for page in (client.get("/").text, client.get("/_consent/preferences").text):
        boxes = re.findall(r"<input type=\"checkbox\"[^>]*>", page)
        assert len(boxes) == 4
        ticked = [box for box in boxes if " checked" in box]
        assert len(ticked) == 1
        assert "disabled" in ticked[0]
        assert 'id="mpc-cat-necessary"' in ticked[0]


def test_undecided_state_is_exposed_to_the_app(client: httpx.Client) -> None:
    assert consent_state(client) == {
        "decided": False,
        "granted": ["necessary"],
        "consent_id": None,
        "revision": None,
        "marketing": False,
        "gpc": False,
    }


def test_global_privacy_control_is_exposed(client: httpx.Client) -> None:
    state = client.get("/state", headers={"sec-gpc": "1"}).json()
    assert state["gpc"] is True


# -- deciding ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "posted", "granted"),
    [
        ("accept_all", (), ["analytics", "marketing", "necessary", "preferences"]),
        ("reject_all", ("analytics",), ["necessary"]),
        ("save", ("analytics",), ["analytics", "necessary"]),
        ("save", ("analytics", "unknown-category", "necessary"), ["analytics", "necessary"]),
        ("save", (), ["necessary"]),
    ],
    ids=[
        "accept-all",
        "reject-all-ignores-categories",
        "save",
        "save-ignores-unknown",
        "save-none",
    ],
)
def test_a_choice_is_remembered_and_exposed(
    client: httpx.Client, action: str, posted: tuple[str, ...], granted: list[str]
) -> None:
    response = decide(client, action, categories=posted, next_path="/chunked?x=1")
    assert response.status_code == 303
    assert response.headers["location"] == "/chunked?x=1"
    assert response.content == b""
    state = consent_state(client)
    assert state["decided"] is True
    assert state["granted"] == granted
    assert state["revision"] == 1
    assert isinstance(state["consent_id"], str)
    assert len(state["consent_id"]) == 22
    assert state["marketing"] is ("marketing" in granted)
    page = client.get("/")
    assert BANNER not in page.text
    assert 'data-decided="1"' in page.text
    assert f'data-granted="{" ".join(granted)}"' in page.text
    assert 'id="mypharm-consent-reopen"' in page.text


@pytest.mark.parametrize("action", ["accept_all", "reject_all"])
def test_the_consent_cookie_is_the_only_cookie_and_lasts_six_months(
    client: httpx.Client, action: str
) -> None:
    response = decide(client, action)
    cookies = set_cookies(response)
    assert len(cookies) == 1
    cookie = cookies[0]
    name, _, rest = cookie.partition("=")
    assert name == "mypharm_consent"
    value = rest.split(";")[0]
    assert len(f"{name}={value}") < 300
    attributes = [part.strip() for part in rest.split(";")[1:]]
    assert f"Max-Age={SIX_MONTHS}" in attributes
    assert {"Path=/", "HttpOnly", "SameSite=Lax"} <= set(attributes)
    assert "Secure" not in attributes
    assert [c.name for c in client.cookies.jar] == ["mypharm_consent"]


def test_the_cookie_is_secure_by_default(site: SiteFactory) -> None:
    client = site(cookie_secure=True, cookie_domain="testserver.local")
    response = decide(client, "reject_all")
    attributes = [p.strip() for p in set_cookies(response)[0].split(";")]
    assert "Secure" in attributes
    assert "Domain=testserver.local" in attributes


def test_the_cookie_is_not_extended_on_each_visit(client: httpx.Client, clock: FakeClock) -> None:
    decide(client, "reject_all")
    clock.advance(30 * 24 * 3600)
    for path in ("/", "/state", "/_consent/preferences", "/plain"):
        assert set_cookies(client.get(path)) == []


def test_consent_expires_after_six_months(client: httpx.Client, clock: FakeClock) -> None:
    decide(client, "accept_all")
    clock.advance(SIX_MONTHS - 60)
    assert consent_state(client)["decided"] is True
    clock.advance(120)
    assert consent_state(client)["decided"] is False
    assert BANNER in client.get("/").text


def test_consent_life_is_configurable(site: SiteFactory, clock: FakeClock) -> None:
    client = site(consent_max_age=timedelta(days=30))
    response = decide(client, "accept_all")
    assert f"Max-Age={30 * 24 * 3600}" in set_cookies(response)[0]
    clock.advance(31 * 24 * 3600)
    assert consent_state(client)["decided"] is False


def test_a_new_policy_revision_shows_the_banner_again(site: SiteFactory) -> None:
    old = site(policy_revision=1)
    decide(old, "accept_all")
    new = site(policy_revision=2)
    new.cookies = old.cookies
    assert consent_state(new)["decided"] is False
    assert BANNER in new.get("/").text


def test_key_rotation_keeps_old_cookies_and_signs_with_the_newest_key(site: SiteFactory) -> None:
    before = site(secret_keys=[OLD_SECRET])
    decide(before, "accept_all")
    rotated = site(secret_keys=[SECRET, OLD_SECRET])
    rotated.cookies = before.cookies
    assert consent_state(rotated)["decided"] is True
    decide(rotated, "reject_all")
    only_new = site(secret_keys=[SECRET])
    only_new.cookies = rotated.cookies
    assert consent_state(only_new)["granted"] == ["necessary"]
    assert consent_state(only_new)["decided"] is True
    only_old = site(secret_keys=[OLD_SECRET])
    only_old.cookies = rotated.cookies
    assert consent_state(only_old)["decided"] is False


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        "1:AAAAAAAAAAAAAAAAAAAAAA:1:analytics~marketing.AAAAAA.forged-signature",
        "1:" + "A" * 5000,
        '"quoted;value"',
        "%FF%FE",
        "é-not-ascii",
    ],
    ids=["empty", "garbage", "forged", "oversized", "quoted", "percent-bytes", "non-ascii"],
)
def test_a_bad_cookie_means_no_consent_yet(client: httpx.Client, value: str) -> None:
    headers = {"cookie": f"mypharm_consent={value}".encode()}
    response = client.get("/", headers=headers)
    assert response.status_code == 200
    assert BANNER in response.text
    assert client.get("/state", headers=headers).json()["decided"] is False


def test_a_cookie_with_raw_non_utf8_bytes_means_no_consent_yet(client: httpx.Client) -> None:
    response = client.get("/", headers={"cookie": b"mypharm_consent=\xff\xfe\x80; other=1"})
    assert response.status_code == 200
    assert BANNER in response.text


def test_a_tampered_cookie_means_no_consent_yet(client: httpx.Client) -> None:
    decide(client, "reject_all")
    value = client.cookies["mypharm_consent"]
    tampered = value.replace(":1:", ":1:marketing", 1)
    client.cookies.clear()
    response = client.get("/state", headers={"cookie": f"mypharm_consent={tampered}"})
    assert response.json()["decided"] is False


def test_a_truncated_cookie_means_no_consent_yet(client: httpx.Client) -> None:
    decide(client, "reject_all")
    value = client.cookies["mypharm_consent"]
    client.cookies.clear()
    for cut in (1, 10, len(value) // 2, len(value) - 1):
        headers = {"cookie": f"mypharm_consent={value[:cut]}"}
        assert client.get("/state", headers=headers).json()["decided"] is False


def test_json_answer_for_the_script(client: httpx.Client) -> None:
    response = decide(
        client, "save", categories=("marketing",), headers={"accept": "application/json"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "decided": True,
        "granted": ["marketing", "necessary"],
        "refused": ["analytics", "preferences"],
        "revision": 1,
    }
    assert len(set_cookies(response)) == 1
    assert response.headers["cache-control"] == "no-store"


def test_every_decision_reaches_the_hook(site: SiteFactory, clock: FakeClock) -> None:
    decisions: list[ConsentDecision] = []
    client = site(on_decision=decisions.append, policy_revision=4)
    decide(client, "accept_all", headers={"user-agent": "Mozilla/5.0 (Windows NT 10.0; Win64)"})
    clock.advance(60)
    decide(client, "save", categories=("analytics",), headers={"accept": "application/json"})
    clock.advance(60)
    decide(client, "save", categories=("analytics", "marketing"))
    first, second, third = decisions
    assert first.action == "accept_all"
    assert first.previous_consent_id is None
    assert first.granted == {"necessary", "preferences", "analytics", "marketing"}
    assert first.refused == frozenset()
    assert first.policy_revision == 4
    assert first.source == "no-js"
    assert first.device_class == "desktop"
    assert first.language == "fr"
    assert re.fullmatch(r"[0-9a-f]{32}", first.banner_hash)
    assert first.time.timestamp() == pytest.approx(clock.now - 120)
    assert second.action == "withdraw"
    assert second.previous_consent_id == first.consent_id
    assert second.refused == {"preferences", "marketing"}
    assert second.source == "js"
    assert third.action == "change"
    assert third.previous_consent_id == second.consent_id
    # One consent id per browser, kept across decisions: its receipts form one history.
    assert len({first.consent_id, second.consent_id, third.consent_id}) == 1
    assert consent_state(client)["consent_id"] == third.consent_id


def test_a_failing_hook_does_not_lose_the_choice(
    site: SiteFactory, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(decision: ConsentDecision) -> None:
        raise RuntimeError("receipt store unavailable")

    client = site(on_decision=broken)
    with caplog.at_level(logging.ERROR, logger="mypharm_consent"):
        response = decide(client, "reject_all")
    assert response.status_code == 303
    assert consent_state(client)["decided"] is True
    assert "on_decision hook failed" in caplog.text


# -- CSRF --------------------------------------------------------------------


def _post(client: httpx.Client, fields: dict[str, str], headers: dict[str, str]) -> httpx.Response:
    return client.post(
        "/_consent/decide",
        content=str(httpx.QueryParams(fields)).encode(),
        headers={"content-type": "application/x-www-form-urlencoded", **headers},
        follow_redirects=False,
    )


@pytest.mark.parametrize(
    ("headers", "token"),
    [
        ({"origin": "https://evil.example"}, "valid"),
        ({"origin": "http://testserver.evil.example"}, "valid"),
        ({"origin": "null"}, "valid"),
        ({"origin": "not a url"}, "valid"),
        ({"sec-fetch-site": "cross-site"}, "valid"),
        ({"sec-fetch-site": "same-site"}, "valid"),
        ({"origin": "http://testserver"}, "missing"),
        ({"origin": "http://testserver"}, "forged"),
        ({}, "other-salt"),
        ({}, "expired"),
    ],
    ids=[
        "foreign-origin",
        "lookalike-origin",
        "null-origin",
        "malformed-origin",
        "cross-site-fetch",
        "same-site-fetch",
        "missing-token",
        "forged-token",
        "cookie-as-token",
        "expired-token",
    ],
)
def test_cross_site_or_unsigned_posts_are_refused(
    client: httpx.Client, clock: FakeClock, headers: dict[str, str], token: str
) -> None:
    valid = form_token(client.get("/").text)
    fields = {"action": "accept_all", "next": "/"}
    if token == "valid":
        fields["csrf"] = valid
    elif token == "forged":
        fields["csrf"] = valid[:-4] + ("AAAA" if not valid.endswith("AAAA") else "BBBB")
    elif token == "other-salt":
        decide(client, "reject_all")
        fields["csrf"] = client.cookies["mypharm_consent"]
        client.cookies.clear()
    elif token == "expired":
        fields["csrf"] = valid
        clock.advance(8 * 24 * 3600)
    response = _post(client, fields, headers)
    assert response.status_code == 403
    assert "Votre choix n&#39;a pas pu être enregistré" in response.text
    assert "ne provient pas de ce site" in response.text
    assert set_cookies(response) == []
    assert consent_state(client)["decided"] is False


def test_same_origin_post_with_default_port_is_accepted(client: httpx.Client) -> None:
    token = form_token(client.get("/").text)
    response = _post(
        client,
        {"csrf": token, "action": "reject_all"},
        {"origin": "http://testserver:80", "sec-fetch-site": "same-origin"},
    )
    assert response.status_code == 303


def test_refusal_answers_json_to_the_script(client: httpx.Client) -> None:
    response = _post(
        client,
        {"action": "accept_all"},
        {"accept": "application/json", "origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"


# -- no open redirect ----------------------------------------------------------


@pytest.mark.parametrize(
    ("next_path", "location"),
    [
        ("/produits?page=2#top", "/produits?page=2#top"),
        ("/produits/crème", "/produits/cr%C3%A8me"),
        ("https://evil.example/", "/"),
        ("http:/evil.example", "/"),
        ("//evil.example", "/"),
        ("///evil.example", "/"),
        ("/\\evil.example", "/"),
        ("\\\\evil.example", "/"),
        ("/a\\b", "/"),
        ("/%2Fevil.example", "/"),
        ("/%5Cevil.example", "/"),
        ("%2F%2Fevil.example", "/"),
        ("/ok\r\nSet-Cookie: x=1", "/"),
        ("/ok%0d%0aSet-Cookie:%20x=1", "/"),
        ("/\tevil", "/"),
        ("javascript:alert(1)", "/"),
        ("evil.example", "/"),
        ("", "/"),
        ("/" + "a" * 5000, "/"),
    ],
    ids=[
        "path-query-fragment",
        "non-ascii",
        "absolute",
        "scheme-without-slashes",
        "scheme-relative",
        "triple-slash",
        "slash-backslash",
        "double-backslash",
        "inner-backslash",
        "encoded-slash",
        "encoded-backslash",
        "encoded-scheme-relative",
        "crlf",
        "encoded-crlf",
        "tab",
        "javascript",
        "relative-host",
        "empty",
        "too-long",
    ],
)
def test_next_only_ever_leads_back_to_this_site(
    client: httpx.Client, next_path: str, location: str
) -> None:
    response = decide(client, "reject_all", next_path=next_path)
    assert response.status_code == 303
    assert response.headers["location"] == location


def test_preferences_page_sanitises_next(client: httpx.Client) -> None:
    page = client.get("/_consent/preferences", params={"next": "//evil.example"}).text
    assert 'name="next" value="/"' in page
    page = client.get("/_consent/preferences", params={"next": "/contact"}).text
    assert 'name="next" value="/contact"' in page


# -- bad input -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"action=accept_all&next=/&csrf=" + b"x" * 9000, "application/x-www-form-urlencoded", 413),
        (b"action=accept_all&next=\xff\xfe", "application/x-www-form-urlencoded", 400),
        (b"action=accept_all&next=%FF%FE", "application/x-www-form-urlencoded", 400),
        (b"next=/", "application/x-www-form-urlencoded", 400),
        (b"action=everything", "application/x-www-form-urlencoded", 400),
        (b"action=accept_all&action=reject_all", "application/x-www-form-urlencoded", 400),
        (
            b"&".join([b"category=a"] * 150) + b"&action=save",
            "application/x-www-form-urlencoded",
            400,
        ),
        (b'{"action": "accept_all"}', "application/json", 415),
        (b"--x\r\n", "multipart/form-data; boundary=x", 415),
        (b"action=accept_all", "", 415),
    ],
    ids=[
        "huge-form",
        "non-utf8-body",
        "non-utf8-escapes",
        "missing-action",
        "unknown-action",
        "two-actions",
        "too-many-fields",
        "json-body",
        "multipart-body",
        "no-content-type",
    ],
)
def test_bad_forms_get_a_clear_error(
    client: httpx.Client, content: bytes, content_type: str, status: int
) -> None:
    token = form_token(client.get("/").text)
    body = content if status in (413, 415) else content + b"&csrf=" + token.encode()
    headers = {"origin": "http://testserver"}
    if content_type:
        headers["content-type"] = content_type
    response = client.post("/_consent/decide", content=body, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "<h1" in response.text
    assert "Traceback" not in response.text
    assert set_cookies(response) == []


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("GET", "/_consent/decide", 405, "POST"),
        ("PUT", "/_consent/decide", 405, "POST"),
        ("POST", "/_consent/preferences", 405, "GET, HEAD"),
        ("DELETE", "/_consent/static/consent.js", 405, "GET, HEAD"),
        ("GET", "/_consent", 404, None),
        ("GET", "/_consent/nothing", 404, None),
        ("GET", "/_consent/static/../cookie.py", 404, None),
        ("GET", "/_consent/static/missing.js", 404, None),
    ],
)
def test_wrong_method_or_path_under_the_prefix(
    client: httpx.Client, method: str, path: str, status: int, allow: str | None
) -> None:
    response = client.request(method, path)
    assert response.status_code == status
    assert response.headers.get("allow") == allow


# -- static files and pages ------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("consent.js", "text/javascript; charset=utf-8"), ("consent.css", "text/css; charset=utf-8")],
)
def test_static_files_are_served_with_validators(
    client: httpx.Client, name: str, content_type: str
) -> None:
    url = re.search(rf'"(/_consent/static/{re.escape(name)}\?v=[0-9a-f]+)"', client.get("/").text)
    assert url
    response = client.get(url.group(1))
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert "immutable" in response.headers["cache-control"]
    assert len(response.content) == int(response.headers["content-length"]) > 100
    again = client.get(url.group(1), headers={"if-none-match": response.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


def test_preferences_page_reflects_the_current_choice(client: httpx.Client) -> None:
    decide(client, "save", categories=("analytics",))
    response = client.get("/_consent/preferences")
    assert response.status_code == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    ticked = re.findall(r'<input type="checkbox" id="mpc-cat-(\w+)"[^>]* checked', response.text)
    assert sorted(ticked) == ["analytics", "necessary"]
    assert "Choix enregistré le" in response.text
    assert BANNER not in response.text
    decide(client, "reject_all")
    page = client.get("/_consent/preferences").text
    assert re.findall(r'id="mpc-cat-(\w+)"[^>]* checked', page) == ["necessary"]


def test_pages_speak_english_when_the_browser_asks(client: httpx.Client) -> None:
    headers = {"accept-language": "en-GB,en;q=0.9,fr;q=0.5"}
    body = client.get("/", headers=headers).text
    assert all(text in body for text in ("Accept all", "Refuse all", "Customise"))
    assert "Accepter tout" not in body
    assert "Accepter tout" in client.get("/", headers={"accept-language": "de, fr;q=0.3"}).text
    assert "Accepter tout" in client.get("/").text
    prefs = client.get("/_consent/preferences", headers=headers).text
    assert 'lang="en"' in prefs


def test_texts_are_overridable(site: SiteFactory) -> None:
    client = site(texts={"fr": {"accept_all": "J'accepte", "reject_all": "Je refuse"}})
    body = client.get("/").text
    assert "J&#39;accepte" in body
    assert "Je refuse" in body


# -- what passes through ----------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/plain", "/gzipped", "/excluded", "/bad-ascii"], ids=lambda p: p.strip("/")
)
def test_other_responses_pass_through_untouched(client: httpx.Client, path: str) -> None:
    response = client.get(path, headers={"accept-encoding": "identity"})
    assert response.status_code == 200
    # httpx undoes the gzip encoding: equal bytes prove the body was not touched.
    assert b"mypharm-consent" not in response.content
    if path == "/gzipped":
        assert response.content == PAGE.encode()
    assert "vary" not in response.headers


def test_html_streamed_past_the_size_cap_passes_through(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="mypharm_consent"):
        for _ in range(3):
            response = client.get("/big")
            assert response.status_code == 200
            assert response.content == b"".join(big_page_chunks(4096))
    warnings = [r for r in caplog.records if "html_size_cap" in r.getMessage()]
    assert len(warnings) == 1


@pytest.mark.parametrize(
    ("path", "banner"),
    [
        ("/chunked", True),
        ("/missing", True),
        ("/fragment", False),
        ("/latin1", True),
        ("/upper", True),
        ("/no-end", True),
    ],
    ids=["streamed-in-chunks", "error-page", "fragment", "latin1", "upper-case", "no-body-end"],
)
def test_html_pages_are_rewritten_with_a_correct_length(
    client: httpx.Client, path: str, banner: bool
) -> None:
    response = client.get(path)
    assert (BANNER in response.text) is banner
    assert int(response.headers["content-length"]) == len(response.content)
    assert "Cookie" in response.headers["vary"]


def test_the_banner_goes_right_before_an_upper_case_body_end(client: httpx.Client) -> None:
    body = client.get("/upper").text
    assert body.startswith("<HTML><BODY><P>Pharmacie</P>")
    assert body.endswith("</script>\n</BODY></HTML>")


def test_a_utf8_page_with_bytes_that_are_not_utf8_still_gets_the_banner(
    client: httpx.Client,
) -> None:
    # Read as bytes, the page needs no decoding: the stray bytes stay as
    # they are (browsers show U+FFFD) and the page is not left without consent.
    response = client.get("/bad-bytes")
    assert response.content.startswith(b"<html><body>\xff\xfe<link")
    assert BANNER.encode() in response.content
    assert int(response.headers["content-length"]) == len(response.content)


def test_latin1_pages_stay_latin1(client: httpx.Client) -> None:
    response = client.get("/latin1")
    assert "Crème".encode("latin-1") in response.content
    assert "Catégories".encode("latin-1") in response.content


def test_vary_is_merged_with_the_apps(client: httpx.Client) -> None:
    vary = client.get("/vary").headers["vary"]
    assert [v.strip() for v in vary.split(",")] == ["Accept-Encoding", "Cookie", "Accept-Language"]


def test_head_requests_are_not_rewritten(client: httpx.Client) -> None:
    response = client.head("/")
    assert response.status_code == 200
    assert response.content == b""


def test_head_of_the_preferences_page_announces_the_real_length(client: httpx.Client) -> None:
    full = client.get("/_consent/preferences")
    head = client.head("/_consent/preferences")
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) == len(full.content)
