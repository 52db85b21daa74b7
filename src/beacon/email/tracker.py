"""The e-mail side of the beacon: instrument messages, verify and record what comes back.

:class:`EmailTracker` is reachable as ``tracker.email`` on a
:class:`~beacon.Beacon`; it also works on its own in a mailer process that
only needs to instrument messages and ask who unsubscribed::

    email = EmailTracker("https://mypharm.fr/b", secret_keys=[...], site="mypharm.fr")
    html = email.instrument(html, campaign="2026-12-newsletter", recipient="alice@example.org")
    headers = email.headers("2026-12-newsletter", "alice@example.org")
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from beacon.email.classify import DEFAULT_BURST_SECONDS, MachineClassifier, MachineVerdict
from beacon.email.exceptions import InstrumentationError
from beacon.email.instrument import instrument_html
from beacon.email.tokens import EmailToken, EmailTokenSigner, TokenKind, check_campaign
from beacon.email.unsubscribes import (
    UNSUBSCRIBE_COLUMNS,
    UNSUBSCRIBES_TABLE,
    Unsubscribe,
    UnsubscribeRecord,
    unsubscribed_among,
    unsubscribed_list,
)
from beacon.email.urls import link_label
from beacon.events import PixelEvent
from beacon.store import Store
from beacon.useragent import classify

if TYPE_CHECKING:
    from beacon.app import Beacon

__all__ = ["ENV_BASE_URL", "EmailTracker"]

#: Environment variable giving ``base_url`` when the code does not.
ENV_BASE_URL = "BEACON_BASE_URL"

_MAILBOX = re.compile(r"^[^\s@<>()\[\],;:\"]+@[^\s@<>()\[\],;:\"]+$")


def _check_base_url(base_url: str) -> str:
    base = base_url.strip().rstrip("/")
    if not base:
        return ""
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InstrumentationError(
            f"base_url {base_url!r} must be the absolute http(s) URL where the beacon is mounted"
        )
    if parts.query or parts.fragment or not base.isascii() or re.search(r"[\s\"'<>\\]", base):
        raise InstrumentationError(
            f"base_url {base_url!r} must be plain ASCII without query, fragment or quotes"
        )
    return base


def _utc_now() -> datetime:
    return datetime.now(UTC)


class EmailTracker:
    """Instruments e-mail for one site and handles the opens, clicks and unsubscribes.

    ``base_url`` is the public URL where the beacon app is mounted, for
    instance ``https://mypharm.fr/b`` (only a tracker that builds no links may
    leave it empty). ``site`` names the site in events and opt-outs (only a
    tracker that just instruments may leave it empty). ``secret_keys`` sign
    the tokens, newest first; ``recipient_key`` keys recipient references (see
    :mod:`beacon.email.tokens` for rotation). ``unsubscribe_mailto`` adds a
    ``mailto:`` alternative to the ``List-Unsubscribe`` header.

    The receiving side needs somewhere to put what it sees: ``record`` takes
    each :class:`~beacon.events.PixelEvent` (and returns ``False`` if it was
    dropped), ``record_unsubscribe`` each opt-out (raising if it cannot be
    kept); a :class:`~beacon.Beacon` passes its lossless spool. ``store``
    answers :meth:`is_unsubscribed`. ``clock`` returns the current aware
    datetime: it stamps events and times the machine classifier's bursts
    (``burst_seconds``, see :mod:`beacon.email.classify`).
    """

    def __init__(
        self,
        base_url: str,
        secret_keys: Sequence[str | bytes],
        site: str = "",
        *,
        recipient_key: str | bytes | None = None,
        unsubscribe_mailto: str | None = None,
        store: Store | None = None,
        record: Callable[[PixelEvent], bool] | None = None,
        record_unsubscribe: Callable[[UnsubscribeRecord], None] | None = None,
        burst_seconds: float = DEFAULT_BURST_SECONDS,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.base_url = _check_base_url(base_url)
        if not isinstance(site, str) or site != site.strip():
            raise InstrumentationError("site must be a name such as 'mypharm.fr'")
        if unsubscribe_mailto is not None and not _MAILBOX.match(unsubscribe_mailto):
            raise InstrumentationError(f"unsubscribe_mailto {unsubscribe_mailto!r} is no address")
        self.site = site
        self.unsubscribe_mailto = unsubscribe_mailto
        self.signer = EmailTokenSigner(secret_keys, recipient_key=recipient_key)
        self.clock = clock
        self.classifier = MachineClassifier(
            burst_seconds=burst_seconds, clock=lambda: clock().timestamp()
        )
        self.store = store
        self._record = record
        self._record_unsubscribe = record_unsubscribe
        #: Failures counted instead of raised on the request path
        #: (``invalid_token:<reason>``, ``record_failed``, ``unsubscribe_failed``).
        self.failures: Counter[str] = Counter()

    @classmethod
    def for_beacon(cls, beacon: Beacon, base_url: str | None = None) -> EmailTracker:
        """The tracker of ``beacon``: its keys, site, store, clock and lossless spool.

        ``base_url`` defaults to the ``BEACON_BASE_URL`` environment variable.
        The e-mail routes are added to the beacon's app.
        """
        tracker = cls(
            os.environ.get(ENV_BASE_URL, "") if base_url is None else base_url,
            beacon.secret_keys,
            beacon.site,
            store=beacon.store,
            record=beacon.record,
            record_unsubscribe=lambda row: _append(beacon, row),
            clock=beacon.clock,
        )
        from beacon.email.endpoints import email_routes  # it imports this module

        beacon.add_routes(email_routes(tracker))
        return tracker

    # -- sending side -------------------------------------------------------

    def ref(self, recipient: str) -> int:
        """The recipient reference of an address (what tokens and tables hold instead of it)."""
        return self.signer.recipient_ref(recipient)

    def _base(self) -> str:
        if not self.base_url:
            raise InstrumentationError(
                "no base_url: links need the public URL where the beacon is mounted"
            )
        return self.base_url

    def pixel_url(self, campaign: str, recipient: str) -> str:
        """The URL of the open pixel of ``campaign`` for ``recipient``."""
        token = self.signer.open_token(campaign, self.ref(recipient))
        return f"{self._base()}/o/{token}.gif"

    def click_url(self, campaign: str, recipient: str, destination: str, link: int = 0) -> str:
        """The tracked URL that redirects to ``destination`` (an absolute http(s) URL)."""
        token = self.signer.click_token(campaign, self.ref(recipient), destination, link)
        return f"{self._base()}/c/{token}"

    def unsubscribe_url(self, campaign: str, recipient: str) -> str:
        """The one-click unsubscribe URL (a confirmation page on GET, the opt-out on POST)."""
        token = self.signer.unsubscribe_token(campaign, self.ref(recipient))
        return f"{self._base()}/u/{token}"

    def instrument(self, html: str, *, campaign: str, recipient: str) -> str:
        """``html`` with the open pixel, tracked links and the unsubscribe link filled in.

        See :func:`~beacon.email.instrument.instrument_html` for what is
        rewritten. Raises :class:`InstrumentationError` for a ``javascript:``,
        ``data:`` or ``vbscript:`` link, an over-long link or a bad campaign.
        """
        ref = self.ref(recipient)
        signer, base = self.signer, self._base()
        return instrument_html(
            html,
            pixel_url=f"{base}/o/{signer.open_token(campaign, ref)}.gif",
            click_url=lambda url, link: f"{base}/c/{signer.click_token(campaign, ref, url, link)}",
            unsubscribe_url=f"{base}/u/{signer.unsubscribe_token(campaign, ref)}",
        )

    def headers(self, campaign: str, recipient: str) -> dict[str, str]:
        """The ``List-Unsubscribe`` and ``List-Unsubscribe-Post`` headers (RFC 2369, RFC 8058).

        Mail providers (Gmail, Yahoo, Apple Mail) show an "Unsubscribe" button
        that POSTs ``List-Unsubscribe=One-Click`` to the HTTPS URL; with
        ``unsubscribe_mailto`` the header also offers a ``mailto:`` whose
        subject carries the token (pass it to :meth:`verify` to act on it).
        """
        url = self.unsubscribe_url(campaign, recipient)
        value = f"<{url}>"
        if self.unsubscribe_mailto:
            token = url.rsplit("/", 1)[1]
            value += f", <mailto:{self.unsubscribe_mailto}?subject={quote('unsubscribe ' + token)}>"
        return {"List-Unsubscribe": value, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}

    # -- opt-outs -----------------------------------------------------------

    def _store(self) -> Store:
        if not self.site:
            raise InstrumentationError(
                "opt-outs are kept per site: build the tracker with site=..."
            )
        if self.store is None:
            raise InstrumentationError(
                "this EmailTracker has no store: build it with store=... or use Beacon(...).email"
            )
        return self.store

    def is_unsubscribed(self, recipient: str | int) -> bool:
        """Whether ``recipient`` (an address or a reference) has opted out, from any campaign.

        Blocking (a store query); raises :class:`~beacon.exceptions.StoreError`
        when the store cannot answer rather than guessing.
        """
        ref = recipient if isinstance(recipient, int) else self.ref(recipient)
        return bool(unsubscribed_among(self._store(), self.site, [ref]))

    def unsubscribed_among(self, recipients: Iterable[str]) -> set[str]:
        """The addresses of ``recipients`` that have opted out (one query per 10,000)."""
        by_ref: dict[int, list[str]] = {}
        for address in recipients:
            by_ref.setdefault(self.ref(address), []).append(address)
        found = unsubscribed_among(self._store(), self.site, by_ref)
        return {address for ref in found for address in by_ref[ref]}

    def unsubscribed(self, campaign: str | None = None) -> list[Unsubscribe]:
        """Every reference currently opted out (optionally: through ``campaign``)."""
        return unsubscribed_list(self._store(), self.site, campaign)

    def _write_unsubscribe(self, record: UnsubscribeRecord) -> None:
        if self._record_unsubscribe is not None:
            self._record_unsubscribe(record)
        else:
            self._store().raw_insert(
                f"`{self._store().database}`.`{UNSUBSCRIBES_TABLE}`",
                UNSUBSCRIBE_COLUMNS,
                record.to_tsv(),
            )

    def unsubscribe(self, recipient: str, campaign: str) -> None:
        """Record an opt-out that reached the mailer another way (reply, ``mailto:``, support)."""
        check_campaign(campaign)
        self._write_unsubscribe(
            UnsubscribeRecord(self.clock(), self.site, self.ref(recipient), campaign)
        )

    def resubscribe(self, recipient: str, campaign: str) -> None:
        """Undo an opt-out, when the person subscribes again of their own accord."""
        check_campaign(campaign)
        self._write_unsubscribe(
            UnsubscribeRecord(
                self.clock(), self.site, self.ref(recipient), campaign, unsubscribed=False
            )
        )

    # -- receiving side -----------------------------------------------------

    def verify(self, kind: TokenKind, token: str) -> EmailToken:
        """Verify a token of ``kind``; raises :class:`~beacon.email.exceptions.TokenError`."""
        return self.signer.verify(kind, token)

    def _event(
        self, kind: TokenKind, token: EmailToken, user_agent: str, verdict: MachineVerdict
    ) -> PixelEvent:
        agent = classify(user_agent)
        return PixelEvent(
            ts=self.clock(),
            site=self.site,
            kind=kind,
            browser=agent.browser,
            os=agent.os,
            device=agent.device,
            is_bot=agent.is_bot,
            campaign=token.campaign,
            link=link_label(token.url) if token.url else "",
            recipient=token.recipient,
            # An opt-out is a person's decision even when a mail provider's server sends it.
            machine=kind != "unsubscribe" and (verdict.machine or agent.is_bot),
            name=verdict.reason or ("bot" if agent.is_bot and kind != "unsubscribe" else ""),
        )

    def _emit(self, event: PixelEvent) -> bool:
        if self._record is None:
            self.failures["record_failed"] += 1
            return False
        try:
            recorded = self._record(event)
        except Exception:
            recorded = False
        if not recorded:
            self.failures["record_failed"] += 1
        return recorded

    def record_open(self, token: EmailToken, *, user_agent: str, method: str = "GET") -> PixelEvent:
        """Classify and record an open; returns the event (recorded unless the sink failed)."""
        verdict = self.classifier.classify_open(
            campaign=token.campaign, recipient=token.recipient, user_agent=user_agent, method=method
        )
        event = self._event("open", token, user_agent, verdict)
        self._emit(event)
        return event

    def record_click(
        self, token: EmailToken, *, user_agent: str, method: str = "GET"
    ) -> PixelEvent:
        """Classify and record a click; returns the event (recorded unless the sink failed)."""
        verdict = self.classifier.classify_click(
            campaign=token.campaign,
            recipient=token.recipient,
            link=token.link,
            user_agent=user_agent,
            method=method,
        )
        event = self._event("click", token, user_agent, verdict)
        self._emit(event)
        return event

    def record_unsubscribe(self, token: EmailToken, *, user_agent: str) -> None:
        """Durably record the opt-out carried by ``token``, then its event.

        Raises whatever the opt-out sink raises: the caller must not confirm an
        opt-out that was not written.
        """
        self._write_unsubscribe(
            UnsubscribeRecord(self.clock(), self.site, token.recipient, token.campaign)
        )
        self._emit(self._event("unsubscribe", token, user_agent, MachineVerdict(machine=False)))


def _append(beacon: Beacon, row: UnsubscribeRecord) -> None:
    if not beacon.spool(UNSUBSCRIBES_TABLE, UNSUBSCRIBE_COLUMNS).append(row.to_tsv()):
        raise OSError("the spool refused the opt-out (full or not writable)")
