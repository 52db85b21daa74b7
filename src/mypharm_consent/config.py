"""Typed, validated configuration of the consent layer.

Everything here is checked once, when the configuration is built, so that a
mistake in a site's settings fails at start-up with a clear message instead of
at request time in front of a visitor.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from mypharm_consent.exceptions import ConfigurationError

if TYPE_CHECKING:
    from mypharm_consent.decisions import ConsentDecision
    from mypharm_consent.receipts import ReceiptProvider

__all__ = [
    "NECESSARY",
    "Category",
    "ConsentConfig",
    "Language",
    "LocalizedText",
    "Service",
]

#: The category that is always granted and cannot be refused.
NECESSARY = "necessary"

Language = Literal["fr", "en"]

#: A text in each supported language, e.g. ``{"fr": "Mesure d'audience", "en": "Analytics"}``.
LocalizedText = Mapping[str, str]

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_HOST_PATTERN = re.compile(
    r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$"
)
_COOKIE_PATTERN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\*?$")
_PREFIX = re.compile(r"^/[A-Za-z0-9._~\-/]*[A-Za-z0-9._~\-]$")

#: The longest consent life the CNIL accepts (13 months, counted as 396 days).
MAX_CONSENT_AGE = timedelta(days=396)
#: The CNIL's recommended consent life: 6 months.
DEFAULT_CONSENT_AGE = timedelta(days=182)


def _check_localized(what: str, text: LocalizedText, languages: Sequence[str]) -> None:
    for language in languages:
        value = text.get(language)
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError(f"{what} needs a non-empty {language!r} text")


@dataclass(frozen=True)
class Service:
    """A third-party service a category covers: where it loads from, what it sets.

    ``hosts`` are host names or ``*.`` wildcard patterns (``*.example.com``
    matches ``example.com`` and every sub-domain). Untagged elements whose URL
    points at one of these hosts are gated with the service's category.
    ``cookies`` are the names (a trailing ``*`` matches a prefix) the service
    sets on the site's own domain; they are expired when consent is refused or
    withdrawn.
    """

    name: str
    hosts: tuple[str, ...] = ()
    cookies: tuple[str, ...] = ()
    label: str = ""
    description: LocalizedText = field(default_factory=dict)
    privacy_url: str | None = None

    def __post_init__(self) -> None:
        if not self.name or not self.name.strip():
            raise ConfigurationError("a service needs a name")
        object.__setattr__(self, "hosts", tuple(h.lower() for h in self.hosts))
        object.__setattr__(self, "cookies", tuple(self.cookies))
        for host in self.hosts:
            if not _HOST_PATTERN.match(host):
                raise ConfigurationError(
                    f"service {self.name!r}: {host!r} is not a host name or '*.' pattern"
                )
        for cookie in self.cookies:
            if not _COOKIE_PATTERN.match(cookie):
                raise ConfigurationError(
                    f"service {self.name!r}: {cookie!r} is not a cookie name or 'prefix*' pattern"
                )
        if not self.label:
            object.__setattr__(self, "label", self.name)


@dataclass(frozen=True)
class Category:
    """A purpose the visitor grants or refuses as a whole.

    ``label`` and ``description`` hold one text per language (``"fr"`` and
    ``"en"`` are required). ``cookies`` lists the cookie names (or ``prefix*``
    patterns) that belong to the category; ``services`` the third-party
    services it covers, as :class:`Service` objects or names from the bundled
    registry (:mod:`mypharm_consent.services`).
    """

    name: str
    label: LocalizedText
    description: LocalizedText
    cookies: tuple[str, ...] = ()
    services: tuple[Service | str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ConfigurationError(
                f"category name {self.name!r} must be 1-32 lowercase letters, digits, '-' or '_'"
                " starting with a letter"
            )
        object.__setattr__(self, "label", dict(self.label))
        object.__setattr__(self, "description", dict(self.description))
        object.__setattr__(self, "cookies", tuple(self.cookies))
        # Registry names are resolved here so that a misspelt one fails at start-up.
        from mypharm_consent.services import resolve

        object.__setattr__(self, "services", resolve(self.services))
        _check_localized(f"category {self.name!r} label", self.label, ("fr", "en"))
        _check_localized(f"category {self.name!r} description", self.description, ("fr", "en"))
        for cookie in self.cookies:
            if not _COOKIE_PATTERN.match(cookie):
                raise ConfigurationError(
                    f"category {self.name!r}: {cookie!r} is not a cookie name or 'prefix*' pattern"
                )


def _default_necessary() -> Category:
    return Category(
        NECESSARY,
        label={"fr": "Strictement nécessaires", "en": "Strictly necessary"},
        description={
            "fr": "Indispensables au fonctionnement du site et à la mémorisation de vos choix. "
            "Ils ne peuvent pas être désactivés.",
            "en": "Required for the site to work and to remember your choices. "
            "They cannot be switched off.",
        },
    )


@dataclass(frozen=True)
class ConsentConfig:
    """Settings of :class:`~mypharm_consent.ConsentMiddleware` and its WSGI twin.

    ``secret_keys`` sign the consent cookie and the form tokens, newest first:
    add a new key in front to rotate, keep the old one until cookies signed
    with it have expired. ``policy_revision`` is the revision of the privacy
    policy; raising it shows the banner to everyone again.
    """

    secret_keys: Sequence[str]
    policy_revision: int = 1
    categories: Sequence[Category] = ()
    cookie_name: str = "mypharm_consent"
    cookie_secure: bool = True
    cookie_domain: str | None = None
    consent_max_age: timedelta = DEFAULT_CONSENT_AGE
    prefix: str = "/_consent"
    default_language: Language = "fr"
    texts: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    template_dirs: Sequence[str | Path] = ()
    privacy_policy_url: str | None = None
    #: Rewrite third-party tags of refused categories so that they stay inert.
    gating: bool = True
    #: Also expire refused cookies on this parent domain (e.g. ``".mypharm.fr"``).
    cleanup_parent_domain: str | None = None
    #: Emit Google Consent Mode v2 signals before any tag.
    consent_mode: bool = False
    #: ``Sec-GPC: 1`` refuses marketing by default (an explicit choice still wins).
    honor_gpc: bool = True
    #: Bodies larger than this are passed through untouched (and logged once).
    html_size_cap: int = 2 * 1024 * 1024
    #: Largest accepted consent form body, in bytes.
    max_form_bytes: int = 8 * 1024
    #: Called with every decision a visitor makes (receipts hook it here).
    on_decision: Callable[[ConsentDecision], None] | None = None
    #: Paths (prefixes) the middleware never touches, e.g. ``("/static", "/b")``.
    exclude_paths: Sequence[str] = ()
    #: Offer a small "Gérer les cookies" link on every page once a choice is made.
    reopen_link: bool = True
    #: Consent Mode v2 signals each category grants (``None``: the default
    #: mapping of :data:`mypharm_consent.gating.DEFAULT_CONSENT_MODE_MAPPING`).
    consent_mode_signals: Mapping[str, Sequence[str]] | None = None
    #: Where the preferences page lists, exports and erases the visitor's
    #: receipts (e.g. :class:`beacon.receipts.ReceiptStore`); ``None`` hides
    #: the history.
    receipts: ReceiptProvider | None = None

    def __post_init__(self) -> None:
        keys = tuple(self.secret_keys) if not isinstance(self.secret_keys, str) else ()
        if not keys:
            raise ConfigurationError("secret_keys must be a non-empty list of strings")
        for key in keys:
            if not isinstance(key, str) or len(key) < 16:
                raise ConfigurationError(
                    "each secret key must be a string of 16 characters or more"
                )
        object.__setattr__(self, "secret_keys", keys)
        if not isinstance(self.policy_revision, int) or self.policy_revision < 1:
            raise ConfigurationError("policy_revision must be a positive integer")
        categories = tuple(self.categories)
        names = [c.name for c in categories]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"category names must be unique, got {names}")
        if NECESSARY not in names:
            categories = (_default_necessary(), *categories)
        object.__setattr__(self, "categories", categories)
        if not re.match(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$", self.cookie_name):
            raise ConfigurationError(f"cookie_name {self.cookie_name!r} is not a valid cookie name")
        if self.consent_max_age <= timedelta(0):
            raise ConfigurationError("consent_max_age must be positive")
        if self.consent_max_age > MAX_CONSENT_AGE:
            raise ConfigurationError(
                "consent_max_age may not exceed 13 months (CNIL guidelines on cookies)"
            )
        if not _PREFIX.match(self.prefix) or "//" in self.prefix:
            raise ConfigurationError(
                f"prefix {self.prefix!r} must be an absolute path without a trailing slash"
            )
        if self.default_language not in ("fr", "en"):
            raise ConfigurationError("default_language must be 'fr' or 'en'")
        if self.html_size_cap < 1024:
            raise ConfigurationError("html_size_cap must be at least 1024 bytes")
        if self.max_form_bytes < 512:
            raise ConfigurationError("max_form_bytes must be at least 512 bytes")
        object.__setattr__(self, "template_dirs", tuple(Path(p) for p in self.template_dirs))
        object.__setattr__(self, "exclude_paths", tuple(self.exclude_paths))
        self._check_gating_settings(categories)
        if self.receipts is not None:
            from mypharm_consent.receipts import ReceiptProvider

            if not isinstance(self.receipts, ReceiptProvider):
                raise ConfigurationError(
                    "receipts must provide history, export, request_erasure, cancel_erasure"
                    " and erasure_status (see mypharm_consent.receipts.ReceiptProvider)"
                )

    def _check_gating_settings(self, categories: tuple[Category, ...]) -> None:
        domain = self.cleanup_parent_domain
        if domain is not None and not _HOST_PATTERN.match(domain.lower().lstrip(".")):
            raise ConfigurationError(
                f"cleanup_parent_domain {domain!r} must be a domain name such as '.example.com'"
            )
        if self.consent_mode_signals is not None:
            from mypharm_consent.gating import CONSENT_MODE_SIGNALS

            names = {c.name for c in categories}
            signals: dict[str, tuple[str, ...]] = {}
            for category, granted in self.consent_mode_signals.items():
                if category not in names:
                    raise ConfigurationError(
                        f"consent_mode_signals: {category!r} is not a declared category"
                    )
                granted = (granted,) if isinstance(granted, str) else tuple(granted)
                for signal in granted:
                    if signal not in CONSENT_MODE_SIGNALS:
                        raise ConfigurationError(
                            f"consent_mode_signals[{category!r}]: unknown signal {signal!r}"
                            f" (one of {', '.join(CONSENT_MODE_SIGNALS)})"
                        )
                signals[category] = granted
            object.__setattr__(self, "consent_mode_signals", signals)

    @property
    def category_names(self) -> tuple[str, ...]:
        """Names of all categories, ``necessary`` first."""
        return tuple(c.name for c in self.categories)

    @property
    def optional_categories(self) -> tuple[Category, ...]:
        """The categories a visitor may refuse (all but ``necessary``)."""
        return tuple(c for c in self.categories if c.name != NECESSARY)

    def category(self, name: str) -> Category | None:
        """The category called ``name``, or ``None``."""
        for category in self.categories:
            if category.name == name:
                return category
        return None
