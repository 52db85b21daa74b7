"""The HTML pages of the e-mail endpoints: unsubscribe confirmation, done, invalid link.

They work without JavaScript (the confirmation is a plain POST form, the same
request a mail client sends for one-click unsubscribe), come in French and
English (``?lang=`` first, then ``Accept-Language``, French by default) and
are served with a Content-Security-Policy that allows no script at all.
"""

from __future__ import annotations

from typing import Literal

import jinja2

__all__ = ["PAGE_HEADERS", "PageLanguage", "PageState", "page_language", "render_page"]

PageState = Literal["confirm", "done", "invalid", "unavailable"]
PageLanguage = Literal["fr", "en"]

#: Headers sent with every page: never cached, no script, not framed, not indexed.
PAGE_HEADERS: dict[str, str] = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
}

_TEXTS: dict[PageLanguage, dict[PageState, dict[str, str]]] = {
    "fr": {
        "confirm": {
            "title": "Se désabonner",
            "body": "Vous ne recevrez plus les e-mails de {site}. Confirmez-vous ?",
            "button": "Me désabonner",
        },
        "done": {
            "title": "Désinscription enregistrée",
            "body": "Vous ne recevrez plus les e-mails de {site}. Un envoi déjà en cours "
            "peut encore vous parvenir.",
        },
        "invalid": {
            "title": "Lien non valide",
            "body": "Ce lien est incomplet ou n'est plus valide. Copiez-le en entier depuis "
            "l'e-mail, ou utilisez le lien d'un e-mail plus récent de {site}.",
        },
        "unavailable": {
            "title": "Réessayez dans un instant",
            "body": "Votre désinscription des e-mails de {site} n'a pas pu être enregistrée "
            "pour le moment. "
            "Réessayez dans quelques minutes avec le même lien.",
        },
    },
    "en": {
        "confirm": {
            "title": "Unsubscribe",
            "body": "You will no longer receive e-mails from {site}. Do you confirm?",
            "button": "Unsubscribe me",
        },
        "done": {
            "title": "You are unsubscribed",
            "body": "You will no longer receive e-mails from {site}. A mailing already "
            "under way may still reach you.",
        },
        "invalid": {
            "title": "Invalid link",
            "body": "This link is incomplete or no longer valid. Copy it whole from the "
            "e-mail, or use the link of a more recent e-mail from {site}.",
        },
        "unavailable": {
            "title": "Please try again shortly",
            "body": "Your request to stop e-mails from {site} could not be recorded right "
            "now. Please try again in a few minutes with the same link.",
        },
    },
}
_OTHER_LANGUAGE: dict[PageLanguage, str] = {"fr": "English", "en": "Français"}

_environment = jinja2.Environment(
    loader=jinja2.PackageLoader("beacon.email", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


_LANGUAGES: dict[str, PageLanguage] = {"fr": "fr", "en": "en"}


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def page_language(query_lang: str | None, accept_language: str | None) -> PageLanguage:
    """``fr`` or ``en``: the ``lang`` query value if it is one of them, else the
    preferred of them in ``Accept-Language`` (quality values honoured, ties
    to the first listed), else ``fr``."""
    if query_lang in _LANGUAGES:
        return _LANGUAGES[query_lang]
    ranked: list[tuple[float, int, PageLanguage]] = []
    for position, item in enumerate((accept_language or "")[:512].split(",")):
        tag, _, params = item.partition(";")
        language = _LANGUAGES.get(tag.strip().lower().partition("-")[0])
        quality = _quality(params)
        if language is not None and quality > 0:
            ranked.append((-quality, position, language))
    return min(ranked)[2] if ranked else "fr"


def render_page(state: PageState, language: PageLanguage, site: str) -> str:
    """The HTML of one page, in ``language``, naming ``site``."""
    texts = _TEXTS[language][state]
    text = {key: value.format(site=site) for key, value in texts.items()}
    text["other_language"] = _OTHER_LANGUAGE[language]
    return _environment.get_template("email_page.html").render(
        state=state,
        lang=language,
        other_lang="en" if language == "fr" else "fr",
        text=text,
    )
