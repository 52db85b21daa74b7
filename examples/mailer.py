"""Send a newsletter with tracked opens and clicks: one instrumented message per recipient.

The mailer needs neither the site nor ClickHouse: the same signing keys as
the site's beacon are enough, so it can run anywhere (a cron job, a queue
worker). For each recipient it instruments the HTML (open pixel, tracked
links, personal unsubscribe link), adds the one-click ``List-Unsubscribe``
headers, writes the message as ``OUT/<recipient reference>.eml`` and prints
the message's tracked URLs, each with what it does (open pixel, click to a
destination, unsubscribe)::

    BEACON_SECRET_KEYS=new-key,old-key PYTHONPATH=. python examples/mailer.py \\
        --campaign 2026-12-newsletter --base-url https://mypharm.fr/b \\
        --out outbox alice@example.org bob@example.org

Sending the ``.eml`` files is the mail server's job (``sendmail -t < file``,
or :mod:`smtplib`); the addresses are only in the ``To`` header of each file,
never in a link.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from email.message import EmailMessage
from email.policy import SMTP
from html import unescape
from pathlib import Path
from typing import Literal

from beacon.email import EmailTracker

__all__ = ["NEWSLETTER", "describe", "main", "message_for", "tracked_urls"]

#: The sample newsletter sent when no ``--html`` file is given.
NEWSLETTER = Path(__file__).resolve().parent / "newsletter.html"
_URL = re.compile(r"""(?:href|src)="(https?://[^"]+)\"""")
#: Header lines may be 998 characters long (RFC 5322): never fold the
#: ``List-Unsubscribe`` URL into encoded words, which mail providers cannot read.
_POLICY = SMTP.clone(max_line_length=998)
_KINDS: dict[str, Literal["open", "click", "unsubscribe"]] = {
    "o": "open",
    "c": "click",
    "u": "unsubscribe",
}


def tracked_urls(html: str, base_url: str) -> list[str]:
    """The URLs of ``html`` that point at the beacon (pixel, clicks, unsubscribe), in order."""
    prefix = base_url.rstrip("/") + "/"
    return [url for url in map(unescape, _URL.findall(html)) if url.startswith(prefix)]


def describe(email: EmailTracker, url: str) -> str:
    """What the tracked ``url`` does, read back from its signed token."""
    kind = _KINDS[url[len(email.base_url) + 1 :].split("/", 1)[0]]
    token = email.verify(kind, url.rsplit("/", 1)[1].removesuffix(".gif"))
    return f"{kind} -> {token.url}" if kind == "click" else kind


def message_for(
    email: EmailTracker,
    html: str,
    *,
    campaign: str,
    recipient: str,
    sender: str,
    subject: str,
) -> EmailMessage:
    """The message for one recipient: instrumented HTML and the unsubscribe headers."""
    message = EmailMessage(policy=_POLICY)
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    for name, value in email.headers(campaign, recipient).items():
        message[name] = value
    message.set_content(email.instrument(html, campaign=campaign, recipient=recipient), "html")
    return message


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("recipients", nargs="+", metavar="ADDRESS")
    parser.add_argument("--campaign", required=True, help="campaign name, e.g. 2026-12-newsletter")
    parser.add_argument("--base-url", default=os.environ.get("BEACON_BASE_URL"), required=False)
    parser.add_argument("--site", default=os.environ.get("BEACON_SITE", ""))
    parser.add_argument("--html", type=Path, default=NEWSLETTER, help="the newsletter's HTML")
    parser.add_argument("--out", type=Path, required=True, help="directory for the .eml files")
    parser.add_argument("--sender", default="La pharmacie <lettre@mypharm.fr>")
    parser.add_argument("--subject", default="La lettre de décembre")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Write one message per recipient and print its tracked links; the exit status."""
    args = _parser().parse_args(argv)
    keys = [key.strip() for key in os.environ.get("BEACON_SECRET_KEYS", "").split(",")]
    if not all(keys) or not args.base_url:
        print("set BEACON_SECRET_KEYS (newest first) and --base-url", file=sys.stderr)
        return 1
    email = EmailTracker(args.base_url, secret_keys=keys, site=args.site)
    html = args.html.read_text(encoding="utf-8")
    args.out.mkdir(parents=True, exist_ok=True)
    for recipient in args.recipients:
        message = message_for(
            email,
            html,
            campaign=args.campaign,
            recipient=recipient,
            sender=args.sender,
            subject=args.subject,
        )
        reference = email.ref(recipient)
        (args.out / f"{reference}.eml").write_bytes(message.as_bytes())
        print(f"recipient {reference}")
        for url in tracked_urls(message.get_content(), args.base_url):
            print(f"  {describe(email, url)}: {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
