"""``examples/mailer.py`` writes one message per recipient whose links work on the beacon."""

from __future__ import annotations

import email
import email.policy
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from beacon import Beacon
from tests.consent.sites import SyncASGITransport

ROOT = Path(__file__).resolve().parents[2]
KEYS = "newest-mailer-key-0123456789,older-mailer-key-0123456789"
BASE_URL = "https://mypharm.fr/b"
RECIPIENTS = ["alice@example.org", "Bob@Example.org"]


def run_mailer(out: Path, *args: str, keys: str = KEYS) -> subprocess.CompletedProcess[str]:
    """The mailer run the way its docstring and the e-mail guide say."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BEACON_")}
    return subprocess.run(
        [sys.executable, "-W", "error", str(ROOT / "examples" / "mailer.py"), *args],
        env={**env, "PYTHONPATH": str(ROOT), "BEACON_SECRET_KEYS": keys},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=out.parent,
    )


@pytest.fixture
def beacon_client(clickhouse_url: str, tmp_path: Path) -> Iterator[httpx.Client]:
    """The site's beacon app, built from the same keys as the mailer (paths relative to ``/b``)."""
    tracker = Beacon(
        clickhouse_url,
        KEYS.split(","),
        "mypharm.fr",
        base_url=BASE_URL,
        spool_dir=tmp_path / "spool",
    )
    with httpx.Client(
        transport=SyncASGITransport(tracker.app), base_url="https://mypharm.fr"
    ) as client:
        yield client
    tracker.close(timeout=2.0)


def test_one_message_per_recipient_with_every_link_tracked(
    tmp_path: Path, beacon_client: httpx.Client
) -> None:
    out = tmp_path / "outbox"
    done = run_mailer(
        out,
        "--campaign",
        "2026-12-newsletter",
        "--base-url",
        BASE_URL,
        "--out",
        str(out),
        *RECIPIENTS,
    )
    assert done.returncode == 0, done.stderr
    files = sorted(out.glob("*.eml"))
    assert len(files) == len(RECIPIENTS)
    printed = done.stdout.splitlines()
    assert sum(line.startswith("recipient ") for line in printed) == len(RECIPIENTS)
    assert not any("@" in line for line in printed), "an address was printed"
    for path in files:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert message["To"] in RECIPIENTS
        html = message.get_content()
        assert "example.org" not in html.lower(), "an address leaked into the message"
        assert "mailto:contact@mypharm.fr" in html, "a mailto link was touched"
        assert 'href="https://mypharm.fr/mentions-legales"' in html, "data-no-track ignored"
        unsubscribe = message["List-Unsubscribe"]
        assert unsubscribe.startswith(f"<{BASE_URL}/u/"), unsubscribe
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert unsubscribe.strip("<>") in html, "the body's unsubscribe link is another one"

    clicks = [line.split(": ", 1) for line in printed if line.strip().startswith("click -> ")]
    assert len(clicks) == 2 * len(RECIPIENTS)
    for described, url in clicks:
        destination = described.strip().removeprefix("click -> ")
        landing = beacon_client.get(url.removeprefix(BASE_URL))
        assert landing.status_code == 302
        assert landing.headers["location"] == destination
    opens = [line.split(": ", 1)[1] for line in printed if line.strip().startswith("open: ")]
    assert len(opens) == len(RECIPIENTS)
    pixel = beacon_client.get(opens[0].removeprefix(BASE_URL))
    assert pixel.status_code == 200
    assert pixel.content.startswith(b"GIF89a")


def test_links_signed_with_other_keys_are_refused_by_the_beacon(
    tmp_path: Path, beacon_client: httpx.Client
) -> None:
    out = tmp_path / "outbox"
    done = run_mailer(
        out,
        "--campaign",
        "c",
        "--base-url",
        BASE_URL,
        "--out",
        str(out),
        RECIPIENTS[0],
        keys="a-key-the-site-does-not-know-1234",
    )
    assert done.returncode == 0, done.stderr
    url = next(line.split(": ", 1)[1] for line in done.stdout.splitlines() if "click -> " in line)
    refused = beacon_client.get(url.removeprefix(BASE_URL))
    assert refused.status_code == 400
    assert "location" not in refused.headers


def test_without_keys_the_mailer_refuses_to_run(tmp_path: Path) -> None:
    out = tmp_path / "outbox"
    done = run_mailer(out, "--campaign", "c", "--out", str(out), RECIPIENTS[0], keys="")
    assert done.returncode == 1
    assert "BEACON_SECRET_KEYS" in done.stderr
    assert not out.exists() or not any(out.iterdir())
