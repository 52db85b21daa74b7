"""The visitor's consent history on the preferences page: list, download, erase.

Active when ``ConsentConfig.receipts`` names a
:class:`~mypharm_consent.receipts.ReceiptProvider`. Three endpoints join the
preferences page, all keyed by the consent id of the visitor's *signed*
cookie, so that only its holder reaches its receipts:

``GET {prefix}/history.json``
    "Download my consent history": the provider's JSON document, as an
    attachment.
``POST {prefix}/erase``
    "Erase my consent history": schedules the erasure of every receipt after
    the provider's grace period (24 hours).
``POST {prefix}/erase/cancel``
    Cancels it while the grace period runs.

The posts carry the same signed form token as the decide endpoint and are
refused cross-site. Without JavaScript they answer ``303`` back to the
preferences page with a short outcome code (``?history=...``) that the page
turns into a sentence; never any text taken from the request. With
``Accept: application/json`` they answer JSON.

Once the erasure has been carried out, the next visit to the preferences page
gives the browser a new consent id (same choices, same expiry), so that later
decisions start a new history.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from mypharm_consent.config import ConsentConfig, Language
from mypharm_consent.cookie import ConsentCookie, CookiePayload, new_consent_id
from mypharm_consent.csrf import CsrfGuard
from mypharm_consent.receipts import (
    ConsentReceipt,
    ErasureAlreadyRequested,
    ErasureDeadlinePassed,
    ErasureNotPending,
    ErasureStatus,
    ReceiptError,
    ReceiptProvider,
    UnknownConsentId,
    iso_utc,
)

__all__ = [
    "HISTORY_TEXTS",
    "OUTCOMES",
    "PAGE_RECEIPTS",
    "ConsentHistory",
    "HistoryAnswer",
    "HistoryRefusal",
    "HistoryView",
]

logger = logging.getLogger("mypharm_consent")

#: Outcome codes of the erase endpoints, and the text key each one shows.
OUTCOMES: Mapping[str, str] = {
    "erasure-requested": "history_erasure_requested",
    "erasure-already": "history_erasure_already",
    "erasure-cancelled": "history_erasure_cancelled",
    "erasure-too-late": "history_erasure_too_late",
    "erasure-not-pending": "history_erasure_not_pending",
    "nothing-to-erase": "history_nothing_to_erase",
    "no-consent": "history_no_consent",
    "unavailable": "history_unavailable",
}

#: The words of the history part of the preferences page (merged into the
#: package's texts, so a site overrides them like any other text).
HISTORY_TEXTS: Mapping[Language, Mapping[str, str]] = {
    "fr": {
        "choices_title": "Vos choix actuels",
        "choice_granted": "Accepté",
        "choice_refused": "Refusé",
        "choice_grant": "Accepter",
        "choice_withdraw": "Retirer mon consentement",
        "history_title": "Historique de vos choix",
        "history_intro": (
            "Chaque choix que vous faites est conservé comme preuve de votre consentement, "
            "avec la date, la version de la politique de confidentialité et le texte affiché. "
            "Aucune adresse IP ni identifiant de navigateur n'y figure."
        ),
        "history_empty": "Aucun choix n'est encore enregistré pour ce navigateur.",
        "history_date": "Date",
        "history_action": "Choix",
        "history_granted": "Acceptés",
        "history_refused": "Refusés",
        "history_revision": "Version de la politique",
        "history_none": "aucun",
        "history_action_accept_all": "Tout accepté",
        "history_action_reject_all": "Tout refusé",
        "history_action_save": "Choix personnalisé",
        "history_action_change": "Choix modifié",
        "history_action_withdraw": "Consentement retiré",
        "history_action_gpc_default": "Refus par le signal GPC du navigateur",
        "history_action_reprompt_answered": "Choix renouvelé",
        "history_download": "Télécharger mon historique de consentement (JSON)",
        "history_erase": "Effacer mon historique de consentement",
        "history_erase_help": (
            "L'effacement a lieu 24 heures après votre demande ; vous pouvez l'annuler d'ici là "
            "depuis cette page. Vos choix actuels restent appliqués."
        ),
        "history_erasure_scheduled": "L'effacement de votre historique est prévu le {date}.",
        "history_erasure_cancel": "Annuler l'effacement",
        "history_erasure_done": "Votre historique de consentement a été effacé.",
        "history_erasure_requested": (
            "Votre demande d'effacement est enregistrée : il aura lieu dans 24 heures."
        ),
        "history_erasure_already": "L'effacement de votre historique est déjà demandé.",
        "history_erasure_cancelled": "L'effacement est annulé : votre historique est conservé.",
        "history_erasure_too_late": (
            "Le délai d'annulation de 24 heures est écoulé : l'effacement ne peut plus être annulé."
        ),
        "history_erasure_not_pending": "Aucun effacement n'est en attente.",
        "history_nothing_to_erase": "Aucun choix n'est enregistré : il n'y a rien à effacer.",
        "history_no_consent": "Aucun choix n'est associé à ce navigateur.",
        "history_unavailable": (
            "Votre historique est momentanément indisponible. Vos choix restent appliqués ; "
            "réessayez dans quelques minutes."
        ),
    },
    "en": {
        "choices_title": "Your current choices",
        "choice_granted": "Accepted",
        "choice_refused": "Refused",
        "choice_grant": "Accept",
        "choice_withdraw": "Withdraw my consent",
        "history_title": "History of your choices",
        "history_intro": (
            "Every choice you make is kept as proof of your consent, with its date, the version "
            "of the privacy policy and the text you were shown. No IP address and no browser "
            "identifier is kept with it."
        ),
        "history_empty": "No choice has been recorded for this browser yet.",
        "history_date": "Date",
        "history_action": "Choice",
        "history_granted": "Accepted",
        "history_refused": "Refused",
        "history_revision": "Policy version",
        "history_none": "none",
        "history_action_accept_all": "Accepted all",
        "history_action_reject_all": "Refused all",
        "history_action_save": "Custom choice",
        "history_action_change": "Choice changed",
        "history_action_withdraw": "Consent withdrawn",
        "history_action_gpc_default": "Refused by the browser's GPC signal",
        "history_action_reprompt_answered": "Choice renewed",
        "history_download": "Download my consent history (JSON)",
        "history_erase": "Erase my consent history",
        "history_erase_help": (
            "Erasure takes place 24 hours after your request; until then you can cancel it "
            "from this page. Your current choices stay in force."
        ),
        "history_erasure_scheduled": "Your history is due to be erased on {date}.",
        "history_erasure_cancel": "Cancel the erasure",
        "history_erasure_done": "Your consent history has been erased.",
        "history_erasure_requested": (
            "Your erasure request is recorded: it will take place in 24 hours."
        ),
        "history_erasure_already": "Erasure of your history has already been requested.",
        "history_erasure_cancelled": "Erasure cancelled: your history is kept.",
        "history_erasure_too_late": (
            "The 24-hour cancellation period is over: the erasure can no longer be cancelled."
        ),
        "history_erasure_not_pending": "No erasure is pending.",
        "history_nothing_to_erase": "No choice is recorded: there is nothing to erase.",
        "history_no_consent": "No choice is associated with this browser.",
        "history_unavailable": (
            "Your history is unavailable for a moment. Your choices still apply; "
            "try again in a few minutes."
        ),
    },
}

_MAX_FORM_FIELDS = 20
#: The most receipts the page lists (newest first); the download holds all.
PAGE_RECEIPTS = 100
_JSON_HEADERS = (
    ("content-type", "application/json; charset=utf-8"),
    ("cache-control", "no-store"),
    ("x-content-type-options", "nosniff"),
    ("vary", "Cookie"),
)


@dataclass
class HistoryAnswer:
    """A complete answer of one of the history endpoints (plain values)."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""


@dataclass(frozen=True)
class HistoryRefusal:
    """A request the history endpoints refuse: the caller renders its error page.

    ``message_key`` names the text explaining why; ``allow`` is the ``Allow``
    header of a ``405``.
    """

    status: int
    message_key: str
    allow: str | None = None


@dataclass
class HistoryView:
    """What the preferences page shows of the history, and the headers it must add."""

    context: dict[str, Any]
    headers: list[tuple[str, str]] = field(default_factory=list)


def _format_time(moment: datetime, language: Language) -> str:
    if language == "fr":
        return moment.strftime("%d/%m/%Y %H:%M UTC")
    return moment.strftime("%Y-%m-%d %H:%M UTC")


class ConsentHistory:
    """The history endpoints and the history part of the preferences page.

    Framework-free like the rest of the core: it takes the request's method,
    path, headers and body as plain values, and returns plain answers.
    """

    def __init__(
        self,
        config: ConsentConfig,
        provider: ReceiptProvider,
        *,
        cookie: ConsentCookie,
        csrf: CsrfGuard,
        texts: Mapping[Language, Mapping[str, str]],
    ) -> None:
        self.config = config
        self.provider = provider
        self.cookie = cookie
        self.csrf = csrf
        self.texts = texts
        prefix = config.prefix
        self.download_path = f"{prefix}/history.json"
        self.erase_path = f"{prefix}/erase"
        self.cancel_path = f"{prefix}/erase/cancel"
        self.preferences_path = f"{prefix}/preferences"

    def owns(self, path: str) -> bool:
        """Whether ``path`` is one of the history endpoints."""
        return path in (self.download_path, self.erase_path, self.cancel_path)

    def reads_body(self, method: str, path: str) -> bool:
        """Whether answering needs the request body (the erase forms)."""
        return method == "POST" and path in (self.erase_path, self.cancel_path)

    # -- endpoints -------------------------------------------------------------

    def handle(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> HistoryAnswer | HistoryRefusal:
        """Answer a request for ``path`` (one that :meth:`owns`).

        ``headers`` maps lower-case names to values. A wrong request gets a
        :class:`HistoryRefusal` for the caller's error page.
        """
        if path == self.download_path:
            if method not in ("GET", "HEAD"):
                return HistoryRefusal(405, "error_method", "GET, HEAD")
            return self._download(method, headers)
        if method != "POST":
            return HistoryRefusal(405, "error_method", "POST")
        if len(body) > self.config.max_form_bytes:
            return HistoryRefusal(413, "error_too_large")
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/x-www-form-urlencoded":
            return HistoryRefusal(415, "error_unsupported")
        try:
            form = dict(
                parse_qsl(
                    body.decode("utf-8"),
                    keep_blank_values=True,
                    max_num_fields=_MAX_FORM_FIELDS,
                    errors="strict",
                )
            )
        except (UnicodeDecodeError, ValueError):
            return HistoryRefusal(400, "error_bad_request")
        refusal = self.csrf.check(headers, headers.get("host"), form.get("csrf"))
        if refusal is not None:
            logger.info("consent history form refused: %s", refusal.reason)
            return HistoryRefusal(403, "error_forbidden")
        payload = self.cookie.read(headers.get("cookie"))
        if payload is None:
            return self._outcome(headers, "no-consent", 403)
        if path == self.erase_path:
            return self._erase(headers, payload.consent_id)
        return self._cancel(headers, payload.consent_id)

    def _download(self, method: str, headers: Mapping[str, str]) -> HistoryAnswer:
        payload = self.cookie.read(headers.get("cookie"))
        if payload is None:
            return self._outcome(headers, "no-consent", 404, json_always=True)
        try:
            body = self.provider.export(payload.consent_id)
        except UnknownConsentId:
            # Nothing stored yet (receipts are written a moment after the choice).
            document = {
                "consent_id": payload.consent_id,
                "receipts": [],
                "erasure": ErasureStatus("none").to_json(),
            }
            body = (json.dumps(document, indent=2) + "\n").encode("utf-8")
        except ReceiptError as exc:
            logger.warning("consent history unavailable: %s", type(exc).__name__)
            return self._outcome(headers, "unavailable", 503, json_always=True)
        answer_headers = [
            *_JSON_HEADERS,
            ("content-disposition", 'attachment; filename="consent-history.json"'),
        ]
        return HistoryAnswer(200, answer_headers, b"" if method == "HEAD" else body)

    def _erase(self, headers: Mapping[str, str], consent_id: str) -> HistoryAnswer:
        try:
            status = self.provider.request_erasure(consent_id)
        except ErasureAlreadyRequested:
            return self._outcome(headers, "erasure-already", 409)
        except UnknownConsentId:
            return self._outcome(headers, "nothing-to-erase", 404)
        except ReceiptError as exc:
            logger.warning("consent history erasure failed: %s", type(exc).__name__)
            return self._outcome(headers, "unavailable", 503)
        return self._outcome(headers, "erasure-requested", 200, status)

    def _cancel(self, headers: Mapping[str, str], consent_id: str) -> HistoryAnswer:
        try:
            status = self.provider.cancel_erasure(consent_id)
        except ErasureDeadlinePassed:
            return self._outcome(headers, "erasure-too-late", 409)
        except ErasureNotPending:
            return self._outcome(headers, "erasure-not-pending", 409)
        except ReceiptError as exc:
            logger.warning("consent history cancellation failed: %s", type(exc).__name__)
            return self._outcome(headers, "unavailable", 503)
        return self._outcome(headers, "erasure-cancelled", 200, status)

    def _outcome(
        self,
        headers: Mapping[str, str],
        code: str,
        status: int,
        erasure: ErasureStatus | None = None,
        *,
        json_always: bool = False,
    ) -> HistoryAnswer:
        """JSON for scripts; for forms, a ``303`` back to the page, which says what happened."""
        if json_always or "application/json" in headers.get("accept", ""):
            answer: dict[str, Any] = {"outcome": code}
            if erasure is not None:
                answer["erasure"] = erasure.to_json()
            return HistoryAnswer(status, list(_JSON_HEADERS), json.dumps(answer).encode("utf-8"))
        location = f"{self.preferences_path}?history={code}#mypharm-consent-history"
        return HistoryAnswer(303, [("location", location), ("cache-control", "no-store")])

    # -- the preferences page ---------------------------------------------------

    def view(self, cookie_header: str | None, query_string: str, language: Language) -> HistoryView:
        """The history part of the preferences page for this visitor.

        Lists the receipts of the cookie's consent id and where its erasure
        stands; after an erasure was carried out, also the ``Set-Cookie``
        giving the browser a new consent id. A provider failure shows a
        short notice instead of the list, never an error page.
        """
        texts = self.texts[language]
        notice = None
        for name, value in parse_qsl(query_string, max_num_fields=_MAX_FORM_FIELDS):
            if name == "history" and value in OUTCOMES:
                notice = texts[OUTCOMES[value]]
        context: dict[str, Any] = {
            "notice": notice,
            "download_url": self.download_path,
            "erase_url": self.erase_path,
            "cancel_url": self.cancel_path,
            "receipts": [],
            "erasure": "none",
            "erasure_due": None,
            "unavailable": False,
        }
        payload = self.cookie.read(cookie_header)
        if payload is None:
            return HistoryView(context)
        try:
            receipts: Sequence[ConsentReceipt] = self.provider.history(
                payload.consent_id, limit=PAGE_RECEIPTS
            )
            erasure = self.provider.erasure_status(payload.consent_id)
        except ReceiptError as exc:
            logger.warning("consent history unavailable: %s", type(exc).__name__)
            context["unavailable"] = True
            return HistoryView(context)
        context["receipts"] = [self._receipt_row(r, language) for r in reversed(receipts)]
        context["erasure"] = erasure.state
        if erasure.due_at is not None:
            context["erasure_due"] = _format_time(erasure.due_at, language)
        headers: list[tuple[str, str]] = []
        if erasure.state == "done":
            headers.append(("set-cookie", self._rotated_cookie(payload)))
        return HistoryView(context, headers)

    def _receipt_row(self, receipt: ConsentReceipt, language: Language) -> dict[str, Any]:
        texts = self.texts[language]
        labels = {c.name: c.label[language] for c in self.config.categories}
        return {
            "time": _format_time(receipt.time, language),
            "iso_time": iso_utc(receipt.time),
            "action": texts.get(f"history_action_{receipt.action}", receipt.action),
            "granted": [labels.get(n, n) for n in receipt.granted],
            "refused": [labels.get(n, n) for n in receipt.refused],
            "revision": receipt.policy_revision,
        }

    def _rotated_cookie(self, payload: CookiePayload) -> str:
        """The same choices under a new consent id, expiring when the old cookie would."""
        if payload.revision != self.config.policy_revision:
            # A choice made under an older policy is not carried over: the banner asks again.
            return self._expired_cookie()
        decided = payload.decided_at.timestamp()
        signer = ConsentCookie(self.config, clock=lambda: decided)
        value = signer.encode(new_consent_id(), payload.granted)
        return signer.set_cookie_header(value)

    def _expired_cookie(self) -> str:
        parts = [
            f"{self.config.cookie_name}=",
            "Max-Age=0",
            "Expires=Thu, 01 Jan 1970 00:00:00 GMT",
            "Path=/",
        ]
        if self.config.cookie_domain:
            parts.append(f"Domain={self.config.cookie_domain}")
        if self.config.cookie_secure:
            parts.append("Secure")
        parts += ["HttpOnly", "SameSite=Lax"]
        return "; ".join(parts)
