"""Server-side expiry of the cookies of categories the visitor has not granted."""

from __future__ import annotations

import re

import pytest

from mypharm_consent import Category, ConsentConfig, ConsentState, Service
from mypharm_consent.cleanup import expired_cookie_headers, request_cookie_names

from .gating_pages import loopback_site, loopback_wsgi_site
from .sites import client_for

TEXT = {"fr": "Texte", "en": "Text"}
EXPIRED = "Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/"


def config(**settings: object) -> ConsentConfig:
    return ConsentConfig(
        secret_keys=["k" * 32],
        categories=[
            Category("necessary", label=TEXT, description=TEXT, cookies=("sessionid", "csrftoken")),
            Category("preferences", label=TEXT, description=TEXT, cookies=("theme",)),
            Category(
                "analytics",
                label=TEXT,
                description=TEXT,
                cookies=("stats_*",),
                services=("google-analytics",),
            ),
            Category(
                "marketing",
                label=TEXT,
                description=TEXT,
                services=("meta-pixel", Service("adpartner", cookies=("ap_*", "__Host-ap"))),
            ),
        ],
        **settings,  # type: ignore[arg-type]
    )


def state(*granted: str) -> ConsentState:
    return ConsentState(decided=True, granted=frozenset({"necessary", *granted}))


COOKIES = (
    "sessionid=s; csrftoken=c; theme=dark; stats_a=1; _ga=GA1; _ga_ABC=2; _gid=3;"
    " _fbp=fb; ap_x=1; __Host-ap=h; mypharm_consent=signed; unrelated=1"
)


@pytest.mark.parametrize(
    ("granted", "expired"),
    [
        pytest.param(
            (),
            ["theme", "stats_a", "_ga", "_ga_ABC", "_gid", "_fbp", "ap_x", "__Host-ap"],
            id="nothing",
        ),
        pytest.param(("analytics",), ["theme", "_fbp", "ap_x", "__Host-ap"], id="analytics-only"),
        pytest.param(
            ("marketing", "preferences"),
            ["stats_a", "_ga", "_ga_ABC", "_gid"],
            id="marketing-preferences",
        ),
        pytest.param(("preferences", "analytics", "marketing"), [], id="everything"),
    ],
)
def test_expires_exactly_the_refused_categories_cookies(
    granted: tuple[str, ...], expired: list[str]
) -> None:
    headers = expired_cookie_headers(COOKIES, state(*granted), config(), "www.mypharm.fr")
    expected = [
        f"{name}=; {EXPIRED}; Secure" if name.startswith("__Host-") else f"{name}=; {EXPIRED}"
        for name in expired
    ]
    assert headers == expected


def test_undecided_visitor_gets_every_optional_cookie_expired() -> None:
    headers = expired_cookie_headers("_ga=1; sessionid=2", ConsentState.undecided(), config(), None)
    assert headers == [f"_ga=; {EXPIRED}"]


def test_parent_domain_is_cleaned_too_when_configured() -> None:
    cfg = config(cleanup_parent_domain=".mypharm.fr")
    headers = expired_cookie_headers("_ga=1; __Host-ap=2", state(), cfg, "www.mypharm.fr:8443")
    assert headers == [
        f"_ga=; {EXPIRED}",
        f"_ga=; {EXPIRED}; Domain=mypharm.fr",
        f"__Host-ap=; {EXPIRED}; Secure",
    ]


def test_parent_domain_not_covering_the_host_is_not_sent() -> None:
    cfg = config(cleanup_parent_domain="mypharm.fr")
    headers = expired_cookie_headers("_ga=1", state(), cfg, "evilmypharm.fr")
    assert headers == [f"_ga=; {EXPIRED}"]


def test_never_the_consent_cookie_nor_necessary_ones() -> None:
    cfg = ConsentConfig(
        secret_keys=["k" * 32],
        categories=[
            Category("necessary", label=TEXT, description=TEXT, cookies=("keep_*",)),
            Category("marketing", label=TEXT, description=TEXT, cookies=("keep_*", "m*")),
        ],
    )
    headers = expired_cookie_headers(
        "mypharm_consent=x; keep_me=1; mine=2", ConsentState.undecided(), cfg, "a.fr"
    )
    assert headers == [f"mine=; {EXPIRED}"]


def test_a_cookie_claimed_by_a_granted_category_is_kept() -> None:
    cfg = ConsentConfig(
        secret_keys=["k" * 32],
        categories=[
            Category("analytics", label=TEXT, description=TEXT, cookies=("_x*",)),
            Category("marketing", label=TEXT, description=TEXT, cookies=("_x*",)),
        ],
    )
    assert expired_cookie_headers("_x1=1", state("analytics"), cfg, None) == []
    assert expired_cookie_headers("_x1=1", state(), cfg, None) == [f"_x1=; {EXPIRED}"]


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(None, id="none"),
        pytest.param("", id="empty"),
        pytest.param(";;; =; =x", id="only-separators"),
        pytest.param("_ga\r\nSet-Cookie: evil=1=x", id="crlf-injection"),
        pytest.param("_ga x=1; _ga,y=2; _ga\x00=3", id="invalid-names"),
        pytest.param("é_ga=1", id="non-ascii"),
    ],
)
def test_malformed_headers_never_echo_anything_unsafe(header: str | None) -> None:
    assert expired_cookie_headers(header, state(), config(), "a.fr") == []


def test_duplicate_names_are_expired_once() -> None:
    headers = expired_cookie_headers("_ga=1; _ga=2;  _ga = 3", state(), config(), None)
    assert headers == [f"_ga=; {EXPIRED}"]


def test_request_cookie_names_keeps_order_and_valid_tokens() -> None:
    assert request_cookie_names("b=1; a=2; b=3; bad name=4; c") == ["b", "a", "c"]


def test_invalid_parent_domain_fails_at_configuration_time() -> None:
    from mypharm_consent import ConfigurationError

    with pytest.raises(ConfigurationError, match="cleanup_parent_domain"):
        config(cleanup_parent_domain="https://mypharm.fr/")


@pytest.mark.parametrize("adapter", ["asgi", "wsgi"])
def test_a_refused_category_cookies_are_expired_by_the_response(adapter: str) -> None:
    app = loopback_site() if adapter == "asgi" else loopback_wsgi_site()
    with client_for(adapter, app) as client:
        preferences = client.get("/_consent/preferences").text
        token = re.search(r'name="csrf" value="([^"]+)"', preferences)
        assert token
        for name, value in (("lb_id", "1"), ("lb_other", "2"), ("ap_x", "3")):
            client.cookies.set(name, value)
        answer = client.post(
            "/_consent/decide",
            data={"csrf": token.group(1), "action": "save", "category": "analytics", "next": "/"},
            headers={"origin": "http://testserver", "sec-fetch-site": "same-origin"},
        )
        assert answer.status_code == 303
        expired = [v for v in answer.headers.get_list("set-cookie") if "Max-Age=0" in v]
        assert sorted(v.split("=")[0] for v in expired) == ["ap_x", "lb_id", "lb_other"]
        client.cookies.set("lb_id", "1")
        page = client.get("/")
        assert page.status_code == 200
        assert "lb_id=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/" in (
            page.headers.get_list("set-cookie")
        )
        assert "mypharm_consent=;" not in page.headers.get("set-cookie", "")


def test_long_and_short_cookie_names_are_judged_alike() -> None:
    # Verdicts on names up to 64 characters are remembered; longer ones are
    # judged each time, by the same rule.
    long_valid, long_invalid = "a" * 65, "a" * 64 + " b"
    header = f"{long_valid}=1; {long_invalid}=2; {'x' * 64}=3; {'x' * 63}(=4; ok=5"
    for _ in range(2):
        assert request_cookie_names(header) == [long_valid, "x" * 64, "ok"]
