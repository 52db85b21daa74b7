"""The e-mail endpoints over real HTTP, recording into the real engine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from beacon import Beacon
from beacon.email.tokens import MAX_TOKEN_LENGTH, EmailTokenSigner
from beacon.email.tracker import EmailTracker

from .email_fixtures import (
    BASE_URL,
    KEY,
    PUBLIC,
    SITE,
    Mailbox,
    WallClock,
    host_app,
    stored_counts,
)

CAMPAIGN = "2026-12-newsletter"
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36"
)
CHROME_DESKTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
APPLE_MPP = "Mozilla/5.0"
MIMECAST = "Mozilla/5.0 (compatible; Mimecast URL Protect)"

LINKS = [
    "https://mypharm.fr/",
    "https://mypharm.fr/promo/noël-2026",
    "https://mypharm.fr/boutique",
    "https://mypharm.fr/boutique",
    "https://xn--pharmacie-dtable-hqb.fr/",
    "https://pharmacie-étoile.fr/chemin/é",
]


def test_counts_separate_humans_from_machines(
    served: tuple[Beacon, httpx.Client], clock: WallClock
) -> None:
    tracker, http = served
    alice, bob, carol, dave, erin = (
        Mailbox(tracker, http, CAMPAIGN, f"{name}@example.org")
        for name in ("alice", "bob", "carol", "dave", "erin")
    )
    answers: list[httpx.Response] = []

    # Alice reads in Firefox, clicks the promotion 40 s later, a partner a minute after.
    answers.append(alice.open(FIREFOX))
    clock.advance(40)
    answers.append(alice.click(1, FIREFOX))
    clock.advance(55)
    answers.append(alice.click(5, FIREFOX))

    # Bob reads in Gmail: the image comes through Google's proxy; he clicks on his phone.
    clock.advance(10)
    answers.append(bob.open(GMAIL_PROXY))
    clock.advance(60)
    answers.append(bob.click(0, ANDROID))

    # Carol's iPhone has Mail Privacy Protection: Apple fetches the pixel on delivery.
    clock.advance(10)
    answers.append(carol.open(APPLE_MPP))

    # Dave's company sandbox renders the message and follows every link within a second.
    clock.advance(10)
    answers.append(dave.open(CHROME_DESKTOP))
    for link in range(len(LINKS)):
        clock.advance(0.15)
        answers.append(dave.click(link, CHROME_DESKTOP))

    # Erin's gateway checks every link with HEAD, then with GET under its own name.
    clock.advance(10)
    for link in range(len(LINKS)):
        answers.append(erin.click(link, CHROME_DESKTOP, method="HEAD"))
    clock.advance(30)
    for link in range(len(LINKS)):
        clock.advance(5)
        answers.append(erin.click(link, MIMECAST))

    assert [r.status_code for r in answers if "/o/" in str(r.url)] == [200] * 4
    assert all(r.headers["content-type"] == "image/gif" for r in answers if "/o/" in str(r.url))
    assert all(r.status_code == 302 for r in answers if "/c/" in str(r.url))

    expected: dict[tuple[str, str, int], int] = {
        ("open", "", 0): 2,  # Alice, and Dave's sandbox (its open comes before its burst)
        ("open", "", 1): 2,  # Gmail proxy, Apple MPP
        ("click", LINKS[0], 0): 1,  # Bob
        ("click", LINKS[1], 0): 1,  # Alice
        ("click", LINKS[5], 0): 1,  # Alice
    }
    for link in LINKS:
        # Dave's sandbox (burst), Erin's HEAD checks and Mimecast GETs.
        expected[("click", link, 1)] = expected.get(("click", link, 1), 0) + 3
    assert stored_counts(tracker, CAMPAIGN) == expected

    reasons = dict(
        tracker.store.query_rows(
            f"SELECT name, count() FROM `{tracker.store.database}`.events "
            "WHERE machine = 1 GROUP BY name"
        )
    )
    assert reasons == {
        "image-proxy:google": 1,
        "image-proxy:apple": 1,
        "burst": 6,
        "head-request": 6,
        "scanner:mimecast": 6,
    }
    recipients = {
        int(r)
        for (r,) in tracker.store.query_rows(
            f"SELECT DISTINCT recipient FROM `{tracker.store.database}`.events"
        )
    }
    assert recipients == {
        tracker.email.ref(f"{n}@example.org") for n in ("alice", "bob", "carol", "dave", "erin")
    }


def test_campaigns_are_counted_apart(served: tuple[Beacon, httpx.Client], clock: WallClock) -> None:
    tracker, http = served
    december = Mailbox(tracker, http, "2026-12-newsletter", "alice@example.org")
    january = Mailbox(tracker, http, "2027-01-newsletter", "alice@example.org")
    december.open(FIREFOX)
    clock.advance(30)
    january.open(FIREFOX)
    clock.advance(30)
    january.click(2, FIREFOX)
    assert stored_counts(tracker, "2026-12-newsletter") == {("open", "", 0): 1}
    assert stored_counts(tracker, "2027-01-newsletter") == {
        ("open", "", 0): 1,
        ("click", LINKS[2], 0): 1,
    }


def test_no_address_reaches_clickhouse(served: tuple[Beacon, httpx.Client]) -> None:
    tracker, http = served
    box = Mailbox(tracker, http, CAMPAIGN, "alice@example.org")
    box.open(FIREFOX)
    box.click(1, FIREFOX)
    unsubscribe = tracker.email.unsubscribe_url(CAMPAIGN, "alice@example.org")
    assert box.get(unsubscribe, FIREFOX, "POST").status_code == 200
    tracker.close()
    database = tracker.store.database
    tables = {t for (t,) in tracker.store.query_rows(f"SHOW TABLES FROM `{database}`")}
    assert {"events", "email_unsubscribes"} <= tables
    columns = tracker.store.query_rows(
        "SELECT c.table, c.name FROM system.columns AS c JOIN system.tables AS t "
        "ON c.database = t.database AND c.table = t.name "
        "WHERE c.database = {db:String} AND c.type LIKE '%String%' "
        "AND t.engine NOT IN ('MaterializedView', 'View')",
        parameters={"db": database},
    )
    assert ("events", "link") in columns
    for table, column in columns:
        for secret in ("alice", "example.org", "xmas", "%40"):
            (found,) = tracker.store.query_rows(
                f"SELECT count() FROM `{database}`.`{table}` "
                f"WHERE positionCaseInsensitive(toString(`{column}`), {{s:String}}) > 0",
                parameters={"s": secret},
            )[0]
            assert found == 0, (table, column, secret)


def _bad_click_tokens(email: EmailTracker) -> dict[str, str]:
    ref = email.ref("alice@example.org")
    good = email.signer.click_token(CAMPAIGN, ref, "https://mypharm.fr/promo", 0)
    forger = EmailTokenSigner(["attacker-key-0123456789abcdef"])
    forged = forger.click_token(CAMPAIGN, ref, "https://evil.example/phish", 0)
    old = EmailTokenSigner(["retired-key-0123456789abcdef"])
    return {
        "truncated": good[: len(good) // 2],
        "forged": forged,
        "spliced": forged.split(".")[0] + "." + good.split(".")[1],
        "old-key": old.click_token(CAMPAIGN, ref, "https://mypharm.fr/promo", 0),
        "oversized": good + "A" * MAX_TOKEN_LENGTH,
        "non-ascii": quote("é" + good),
        "open-token": email.signer.open_token(CAMPAIGN, ref),
        "empty-signature": good.split(".")[0] + ".",
        "dots": "...",
    }


def test_bad_click_tokens_never_redirect(served: tuple[Beacon, httpx.Client]) -> None:
    tracker, http = served
    for case, token in _bad_click_tokens(tracker.email).items():
        for method in ("GET", "HEAD"):
            answer = http.request(method, f"/b/c/{token}", headers={"User-Agent": FIREFOX})
            assert (case, method, answer.status_code) == (case, method, 400)
            assert "location" not in answer.headers, case
        page = http.get(f"/b/c/{token}", headers={"Accept-Language": "en"})
        assert "Invalid link" in page.text, case
        assert page.headers["content-type"].startswith("text/html"), case
    assert tracker.email.failures["invalid_token:signature"] >= 5
    health = http.get("/b/health").json()
    assert (
        health["email_invalid_token:signature"] == tracker.email.failures["invalid_token:signature"]
    )
    assert health["email_invalid_token:length"] == 3  # GET, HEAD, GET of the oversized token
    assert stored_counts(tracker, CAMPAIGN) == {}


def test_bad_open_tokens_answer_the_gif(served: tuple[Beacon, httpx.Client]) -> None:
    tracker, http = served
    cases = _bad_click_tokens(tracker.email)
    click = tracker.email.click_url(CAMPAIGN, "alice@example.org", "https://mypharm.fr/")
    cases["open-token"] = click.rsplit("/", 1)[1]  # a genuine click token is no open token
    for case, token in cases.items():
        answer = http.get(f"/b/o/{token}.gif")
        assert (case, answer.status_code) == (case, 400)
        assert answer.headers["content-type"] == "image/gif", case
        assert answer.content.startswith(b"GIF89a"), case
    assert stored_counts(tracker, CAMPAIGN) == {}


@pytest.mark.parametrize(
    ("destination", "location"),
    [
        ("https://pharmacie-étoile.fr/chemin/é?q=ü#haut",
         "https://xn--pharmacie-toile-knb.fr/chemin/%C3%A9?q=%C3%BC#haut"),
        ("https://mypharm.fr/a b?x=1&y=%20", "https://mypharm.fr/a%20b?x=1&y=%20"),
        ("https://例え.jp/パス", "https://xn--r8jz45g.jp/%E3%83%91%E3%82%B9"),
        ("http://MyPharm.fr:8080/Path?Q", "http://MyPharm.fr:8080/Path?Q"),
    ],
    ids=["idn-unicode", "space", "japanese", "ascii-untouched"],
)  # fmt: skip
def test_redirect_keeps_unicode_destinations(
    served: tuple[Beacon, httpx.Client], destination: str, location: str
) -> None:
    tracker, http = served
    url = tracker.email.click_url(CAMPAIGN, "alice@example.org", destination)
    token = tracker.email.verify("click", url.rsplit("/", 1)[1])
    assert token.url == destination
    answer = http.get(url.removeprefix(PUBLIC), headers={"User-Agent": FIREFOX})
    assert answer.status_code == 302
    assert answer.headers["location"] == location
    assert "no-store" in answer.headers["cache-control"]
    assert httpx.URL(location) == httpx.URL(destination)


def test_unsubscribe_page_records_nothing(served: tuple[Beacon, httpx.Client]) -> None:
    tracker, http = served
    url = tracker.email.unsubscribe_url(CAMPAIGN, "alice@example.org").removeprefix(PUBLIC)
    page = http.get(url)
    assert page.status_code == 200
    assert '<html lang="fr">' in page.text
    assert '<form method="post">' in page.text
    assert "Me désabonner" in page.text
    assert "<script" not in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    english = http.get(url, headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert "Unsubscribe me" in english.text
    assert "Me désabonner" in http.get(url + "?lang=fr", headers={"Accept-Language": "en"}).text
    # Link scanners fetch every URL of a message: looking at the page is no opt-out.
    assert stored_counts(tracker, CAMPAIGN) == {}
    assert not tracker.email.is_unsubscribed("alice@example.org")


def test_one_click_unsubscribe(served: tuple[Beacon, httpx.Client]) -> None:
    tracker, http = served
    url = tracker.email.unsubscribe_url(CAMPAIGN, "alice@example.org").removeprefix(PUBLIC)
    done = http.post(
        url,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert done.status_code == 200
    assert "Désinscription enregistrée" in done.text
    assert stored_counts(tracker, CAMPAIGN) == {("unsubscribe", "", 0): 1}
    assert tracker.email.is_unsubscribed("alice@example.org")
    assert tracker.email.is_unsubscribed(" Alice@Example.ORG ")
    assert tracker.email.is_unsubscribed(tracker.email.ref("alice@example.org"))
    assert not tracker.email.is_unsubscribed("bob@example.org")
    (entry,) = tracker.email.unsubscribed()
    assert (entry.recipient, entry.campaign) == (tracker.email.ref("alice@example.org"), CAMPAIGN)
    assert tracker.email.unsubscribed(CAMPAIGN) == [entry]
    assert tracker.email.unsubscribed("another-campaign") == []


def test_resubscribe_undoes_an_older_opt_out(
    served: tuple[Beacon, httpx.Client], clock: WallClock
) -> None:
    tracker, http = served
    email = tracker.email
    for address in ("alice@example.org", "bob@example.org"):
        url = email.unsubscribe_url(CAMPAIGN, address).removeprefix(PUBLIC)
        assert http.post(url).status_code == 200
    clock.advance(3600)
    email.resubscribe("bob@example.org", "2027-01-welcome")
    tracker.close()
    everyone = ["alice@example.org", "bob@example.org", "carol@example.org"]
    assert email.unsubscribed_among(everyone) == {"alice@example.org"}


def test_bad_unsubscribe_token(served: tuple[Beacon, httpx.Client]) -> None:
    tracker, http = served
    token = _bad_click_tokens(tracker.email)["forged"]
    for method in ("GET", "POST"):
        answer = http.request(method, f"/b/u/{token}")
        assert answer.status_code == 400
        assert "Lien non valide" in answer.text
    tracker.close()
    assert tracker.email.unsubscribed() == []


def test_clickhouse_down_still_answers_and_loses_nothing(
    make_tracker: Callable[..., Beacon], clickhouse_url: str, live_server: Any, clock: WallClock
) -> None:
    down = make_tracker("http://127.0.0.1:9/beacon")
    server = live_server(host_app(down))
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=30) as http:
        box = Mailbox(down, http, CAMPAIGN, "alice@example.org")
        assert box.open(FIREFOX).status_code == 200
        clock.advance(30)
        clicked = box.click(1, FIREFOX)
        assert clicked.status_code == 302
        assert (
            clicked.headers["location"]
            == "https://mypharm.fr/promo/no%C3%ABl-2026?code=XMAS&email=alice%40example.org"
        )
        unsubscribe = down.email.unsubscribe_url(CAMPAIGN, "alice@example.org")
        assert box.get(unsubscribe, FIREFOX, "POST").status_code == 200
    down.close(timeout=1.0)

    # The engine is back: a beacon on the same spool replays what the first one answered.
    back = make_tracker(clickhouse_url)
    live_server(host_app(back))
    back.close()
    assert stored_counts(back, CAMPAIGN) == {
        ("open", "", 0): 1,
        ("click", LINKS[1], 0): 1,
        ("unsubscribe", "", 0): 1,
    }
    assert back.email.is_unsubscribed("alice@example.org")


def test_beacon_without_secret_keys_has_no_email(clickhouse_url: str, tmp_path: Any) -> None:
    tracker = Beacon(clickhouse_url, [], SITE, spool_dir=tmp_path / "spool")
    with pytest.raises(ValueError, match="secret_keys"):
        tracker.email  # noqa: B018


def test_base_url_from_environment(
    clickhouse_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BEACON_BASE_URL", "https://news.mypharm.fr/t/")
    tracker = Beacon(clickhouse_url, [KEY], SITE, spool_dir=tmp_path / "spool")
    assert tracker.email.base_url == "https://news.mypharm.fr/t"
    assert tracker.email.click_url(CAMPAIGN, "a@b.fr", "https://x.fr/").startswith(
        "https://news.mypharm.fr/t/c/"
    )
    assert tracker.email.base_url != BASE_URL
