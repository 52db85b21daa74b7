"""``beacon email``: instrument on the command line, list and check opt-outs."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from beacon.cli import main
from beacon.email.tracker import EmailTracker
from beacon.migrations import migrate
from beacon.store import open_store

from .email_fixtures import BASE_URL, KEY, NEWSLETTER, PIXEL, SITE, TRACKED_LINK

CAMPAIGN = "2026-12-newsletter"
OLDER_KEY = "older-key-0123456789abcdef"
EMAIL = EmailTracker(BASE_URL, [KEY, OLDER_KEY], SITE)


@pytest.fixture(autouse=True)
def settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BEACON_SECRET_KEYS", f"{KEY}, {OLDER_KEY}")
    monkeypatch.setenv("BEACON_BASE_URL", BASE_URL)
    monkeypatch.setenv("BEACON_SITE", SITE)
    monkeypatch.delenv("BEACON_RECIPIENT_KEY", raising=False)


def _beacon(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    script = "import sys; from beacon.cli import main; sys.exit(main())"
    return subprocess.run(
        [sys.executable, "-c", script, *args], input=stdin, capture_output=True, check=False
    )


def test_instrument_reads_stdin_writes_stdout() -> None:
    done = _beacon(
        "email", "instrument", "--campaign", CAMPAIGN, "--recipient", "alice@example.org",
        stdin=NEWSLETTER.encode("utf-8"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode("utf-8")
    assert len(TRACKED_LINK.findall(out)) == 6
    pixel = PIXEL.search(out)
    assert pixel is not None
    token = EMAIL.verify("open", pixel.group(0).rsplit("/", 1)[1].removesuffix(".gif"))
    assert (token.campaign, token.recipient) == (CAMPAIGN, EMAIL.ref("alice@example.org"))
    assert "alice@example.org" not in out


def test_instrument_refuses_javascript_links() -> None:
    done = _beacon(
        "email", "instrument", "--campaign", CAMPAIGN, "--recipient", "a@b.fr",
        stdin=b'<a href="javascript:alert(1)">x</a>',
    )  # fmt: skip
    assert done.returncode == 1
    assert b"refusing to send a javascript: link" in done.stderr
    assert done.stdout == b""


def test_instrument_refuses_non_utf8() -> None:
    done = _beacon(
        "email", "instrument", "--campaign", CAMPAIGN, "--recipient", "a@b.fr",
        stdin="<p>é</p>".encode("latin-1"),
    )  # fmt: skip
    assert done.returncode == 1
    assert b"not UTF-8" in done.stderr


def test_headers_and_ref(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["email", "headers", "--campaign", CAMPAIGN, "--recipient", "a@b.fr"]) == 0
    lines = capsys.readouterr().out.splitlines()
    unsubscribe = EMAIL.unsubscribe_url(CAMPAIGN, "a@b.fr")
    assert lines == [
        f"List-Unsubscribe: <{unsubscribe}>",
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
    ]
    assert main(["email", "ref", "a@b.fr", "C@D.fr"]) == 0
    assert capsys.readouterr().out.split() == [str(EMAIL.ref("a@b.fr")), str(EMAIL.ref("c@d.fr"))]


def test_ref_from_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("a@b.fr\n\n  e@f.fr \n"))
    assert main(["email", "ref", "-"]) == 0
    assert capsys.readouterr().out.split() == [str(EMAIL.ref("a@b.fr")), str(EMAIL.ref("e@f.fr"))]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("BEACON_SECRET_KEYS", "", "no secret keys"),
        ("BEACON_SECRET_KEYS", "short", "at least 16 bytes"),
        ("BEACON_BASE_URL", "", "no base_url"),
        ("BEACON_BASE_URL", "mypharm.fr/b", "base_url"),
    ],
    ids=["no-keys", "short-key", "no-base-url", "bad-base-url"],
)
def test_missing_settings_are_clear(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str,
    message: str,
) -> None:
    monkeypatch.setenv(variable, value)
    assert main(["email", "headers", "--campaign", CAMPAIGN, "--recipient", "a@b.fr"]) == 1
    assert message in capsys.readouterr().err


def test_options_override_environment(capsys: pytest.CaptureFixture[str]) -> None:
    other = "another-key-0123456789abcdef"
    assert main(["email", "ref", "--secret-keys", other, "a@b.fr"]) == 0
    assert capsys.readouterr().out.strip() == str(EmailTracker("", [other]).ref("a@b.fr"))
    pinned = "recipient-key-0123456789abcdef"
    assert main(["email", "ref", "--recipient-key", pinned, "a@b.fr"]) == 0
    expected = EmailTracker("", [other], recipient_key=pinned).ref("a@b.fr")
    assert capsys.readouterr().out.strip() == str(expected)


def test_opt_outs_on_the_command_line(
    clickhouse_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = open_store(clickhouse_url)
    migrate(store)
    url = ["--url", clickhouse_url]
    assert main(["email", "unsubscribe", *url, "--campaign", CAMPAIGN, "alice@example.org"]) == 0
    assert main(["email", "unsubscribe", *url, "--campaign", "other", "bob@example.org"]) == 0
    capsys.readouterr()

    assert main(["email", "unsubscribed", *url]) == 0
    refs = capsys.readouterr().out.split()
    assert sorted(refs) == sorted(
        str(EMAIL.ref(a)) for a in ("alice@example.org", "bob@example.org")
    )

    assert main(["email", "unsubscribed", *url, "--campaign", CAMPAIGN, "--long"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    ref, campaign, when = line.split("\t")
    assert (ref, campaign) == (str(EMAIL.ref("alice@example.org")), CAMPAIGN)
    assert when.startswith("20")

    mailing_list = tmp_path / "list.txt"
    mailing_list.write_text("carol@example.org\nAlice@Example.org\nbob@example.org\n")
    assert main(["email", "unsubscribed", *url, "--addresses", str(mailing_list)]) == 0
    assert capsys.readouterr().out.splitlines() == ["Alice@Example.org", "bob@example.org"]

    assert main(["email", "resubscribe", *url, "--campaign", "other", "bob@example.org"]) == 0
    capsys.readouterr()
    assert main(["email", "unsubscribed", *url, "--addresses", str(mailing_list)]) == 0
    assert capsys.readouterr().out.splitlines() == ["Alice@Example.org"]
    store.close()


def test_store_down_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["email", "unsubscribed", "--url", "http://127.0.0.1:9/beacon"]) == 2
    assert "did not answer" in capsys.readouterr().err


def test_opt_outs_need_a_site(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BEACON_SITE")
    assert main(["email", "unsubscribed", "--url", "http://127.0.0.1:9/beacon"]) == 1
    assert "no site" in capsys.readouterr().err
