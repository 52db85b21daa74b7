"""E-mail tracking: token lengths, and the cost of instrumenting, verifying and classifying.

Every figure is measured next to a baseline run in the same process, so the
ratio holds on any machine:

- instrumenting the sample newsletter vs parsing it once with the standard
  library's ``html.parser`` (a lower bound for any tool reading the HTML);
- verifying a click token vs one bare HMAC-SHA256 over the same bytes;
- classifying a click (User-Agent rules + burst window) vs a dict lookup.

    .venv/bin/python benchmarks/bench_email.py [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import statistics
import time
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

from beacon.email.classify import MachineClassifier
from beacon.email.tracker import EmailTracker

ROOT = Path(__file__).resolve().parent.parent
NEWSLETTER = (ROOT / "tests/beacon/email/newsletter.html").read_text(encoding="utf-8")
BASE_URL = "https://mypharm.fr/b"
CAMPAIGN = "2026-12-newsletter"
TYPICAL_URL = "https://mypharm.fr/promo/noel-2026?utm_source=newsletter&utm_medium=email"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def rate(action: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``action``: the median of three timed runs."""
    results = []
    for _ in range(3):
        count, start = 0, time.perf_counter()
        deadline = start + seconds / 3
        while True:
            for _ in range(50):
                action()
            count += 50
            now = time.perf_counter()
            if now >= deadline:
                break
        results.append(count / (now - start))
    return statistics.median(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args()
    email = EmailTracker(BASE_URL, ["k" * 32], "mypharm.fr")
    ref = email.ref("alice@example.org")

    open_url = email.pixel_url(CAMPAIGN, "alice@example.org")
    click_url = email.click_url(CAMPAIGN, "alice@example.org", TYPICAL_URL)
    unsubscribe_url = email.unsubscribe_url(CAMPAIGN, "alice@example.org")
    click_token = click_url.rsplit("/", 1)[1]
    print(f"campaign {CAMPAIGN!r} ({len(CAMPAIGN)} chars), destination {len(TYPICAL_URL)} chars")
    for kind, url in (("open", open_url), ("click", click_url), ("unsubscribe", unsubscribe_url)):
        token = url.rsplit("/", 1)[1].removesuffix(".gif")
        print(f"  {kind:<12} token {len(token):>4} chars   URL {len(url):>4} chars")

    instrument = rate(
        lambda: email.instrument(NEWSLETTER, campaign=CAMPAIGN, recipient="alice@example.org"),
        args.seconds,
    )
    parse = rate(lambda: HTMLParser().feed(NEWSLETTER), args.seconds)
    print(
        f"instrument newsletter ({len(NEWSLETTER)} chars, 6 links): {instrument:,.0f}/s; "
        f"html.parser alone {parse:,.0f}/s; ratio {instrument / parse:.2f}"
    )

    verify = rate(lambda: email.verify("click", click_token), args.seconds)
    key, payload = b"k" * 32, click_token.encode()
    bare = rate(lambda: hmac.new(key, payload, hashlib.sha256).digest(), args.seconds)
    print(
        f"verify click token: {verify:,.0f}/s; bare HMAC {bare:,.0f}/s; ratio {verify / bare:.2f}"
    )

    classifier = MachineClassifier(clock=time.monotonic)
    counter = iter(range(1 << 62))
    classify = rate(
        lambda: classifier.classify_click(
            campaign=CAMPAIGN, recipient=ref + next(counter) % 10_000, link=0, user_agent=CHROME
        ),
        args.seconds,
    )
    table = {CHROME: ""}
    lookup = rate(lambda: table.get(CHROME), args.seconds)
    print(
        f"classify click (cached UA): {classify:,.0f}/s; dict lookup {lookup:,.0f}/s; "
        f"ratio {classify / lookup:.3f}"
    )


if __name__ == "__main__":
    main()
