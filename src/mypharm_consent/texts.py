"""Every word the visitor reads, in French (the default) and English.

A site replaces any text through ``ConsentConfig.texts``, e.g.
``texts={"fr": {"message": "..."}}``; unknown keys or languages are refused at
start-up so that a typo does not silently leave the default wording.
"""

from __future__ import annotations

from collections.abc import Mapping

from mypharm_consent.config import ConsentConfig, Language
from mypharm_consent.exceptions import ConfigurationError
from mypharm_consent.history import HISTORY_TEXTS

__all__ = ["DEFAULT_TEXTS", "LANGUAGES", "negotiate_language", "texts_for"]

LANGUAGES: tuple[Language, ...] = ("fr", "en")

DEFAULT_TEXTS: Mapping[Language, Mapping[str, str]] = {
    "fr": {
        "title": "Vos choix sur les cookies",
        "message": (
            "Avec votre accord, nous utilisons des cookies pour mesurer l'audience du site, "
            "mémoriser vos préférences et vous proposer des offres adaptées. "
            "Vous pouvez accepter, refuser ou personnaliser vos choix, et les modifier à tout "
            "moment depuis le lien « Gérer les cookies ». Refuser n'empêche pas d'utiliser le site."
        ),
        "accept_all": "Accepter tout",
        "reject_all": "Refuser tout",
        "customize": "Personnaliser",
        "continue_without": "Continuer sans accepter",
        "save": "Enregistrer mes choix",
        "privacy_link": "Politique de confidentialité",
        "always_on": "Toujours actifs",
        "categories_legend": "Catégories de cookies",
        "reopen": "Gérer les cookies",
        "preferences_title": "Gérer mes préférences en matière de cookies",
        "preferences_intro": (
            "Choisissez, catégorie par catégorie, les cookies que vous acceptez. "
            "Vous pouvez retirer votre consentement à tout moment, aussi simplement que vous "
            "l'avez donné. Votre choix est conservé {duration}."
        ),
        "current_choice": "Choix enregistré le {date}.",
        "no_choice_yet": "Vous n'avez encore fait aucun choix.",
        "back": "Revenir au site",
        "error_title": "Votre choix n'a pas pu être enregistré",
        "error_forbidden": (
            "Ce formulaire ne provient pas de ce site ou n'est plus valable. "
            "Par sécurité, votre choix n'a pas été pris en compte."
        ),
        "error_bad_request": "Le formulaire envoyé est incomplet ou invalide.",
        "error_too_large": "Le formulaire envoyé est trop volumineux.",
        "error_unsupported": "Ce type de contenu n'est pas accepté.",
        "error_method": "Cette méthode n'est pas acceptée à cette adresse.",
        "error_not_found": "Cette page n'existe pas.",
        "error_retry": "Faire mon choix à nouveau",
        **HISTORY_TEXTS["fr"],
    },
    "en": {
        "title": "Your cookie choices",
        "message": (
            "With your consent, we use cookies to measure the site's audience, remember your "
            "preferences and show you relevant offers. You can accept, refuse or customise your "
            "choices, and change them at any time from the “Manage cookies” link. Refusing does "
            "not prevent you from using the site."
        ),
        "accept_all": "Accept all",
        "reject_all": "Refuse all",
        "customize": "Customise",
        "continue_without": "Continue without accepting",
        "save": "Save my choices",
        "privacy_link": "Privacy policy",
        "always_on": "Always on",
        "categories_legend": "Cookie categories",
        "reopen": "Manage cookies",
        "preferences_title": "Manage my cookie preferences",
        "preferences_intro": (
            "Choose, category by category, which cookies you accept. You can withdraw your "
            "consent at any time, as easily as you gave it. Your choice is kept for {duration}."
        ),
        "current_choice": "Choice saved on {date}.",
        "no_choice_yet": "You have not made a choice yet.",
        "back": "Back to the site",
        "error_title": "Your choice could not be saved",
        "error_forbidden": (
            "This form does not come from this site or is no longer valid. "
            "For your safety, your choice was not taken into account."
        ),
        "error_bad_request": "The submitted form is incomplete or invalid.",
        "error_too_large": "The submitted form is too large.",
        "error_unsupported": "This content type is not accepted.",
        "error_method": "This method is not allowed here.",
        "error_not_found": "This page does not exist.",
        "error_retry": "Make my choice again",
        **HISTORY_TEXTS["en"],
    },
}


def texts_for(config: ConsentConfig) -> dict[Language, dict[str, str]]:
    """The default texts with the site's overrides applied, per language.

    Raises :class:`~mypharm_consent.ConfigurationError` on an unknown
    language or key, or a non-string or empty text.
    """
    merged: dict[Language, dict[str, str]] = {lang: dict(DEFAULT_TEXTS[lang]) for lang in LANGUAGES}
    for language, overrides in config.texts.items():
        if language not in merged:
            raise ConfigurationError(f"texts: unknown language {language!r} (use 'fr' or 'en')")
        target = merged[language]
        for key, value in overrides.items():
            if key not in target:
                known = ", ".join(sorted(target))
                raise ConfigurationError(f"texts[{language!r}]: unknown key {key!r} ({known})")
            if not isinstance(value, str) or not value.strip():
                raise ConfigurationError(f"texts[{language!r}][{key!r}] must be a non-empty string")
            target[key] = value
    for language, texts in merged.items():
        duration = _duration(config.consent_max_age.days, language)
        for key, value in texts.items():
            texts[key] = value.replace("{duration}", duration)
    return merged


def _duration(days: int, language: Language) -> str:
    """``182`` days -> ``"6 mois"`` / ``"6 months"``; short lives in days."""
    if days < 28:
        unit = ("jour", "jours") if language == "fr" else ("day", "days")
        return f"{days} {unit[days != 1]}"
    months = max(1, round(days / 30.44))
    if language == "fr":
        return f"{months} mois"
    return f"{months} month" + ("s" if months != 1 else "")


def negotiate_language(accept_language: str | None, default: Language) -> Language:
    """The supported language the visitor prefers according to ``Accept-Language``."""
    if not accept_language:
        return default
    best: Language = default
    best_q = 0.0
    for position, item in enumerate(accept_language.split(",")[:32]):
        tag, _, params = item.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in LANGUAGES:
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        # Earlier entries win ties, as browsers list them in preference order.
        q -= position * 1e-6
        if q > best_q:
            best, best_q = primary, q
    return best
