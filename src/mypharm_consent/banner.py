"""Rendering of everything the visitor sees: banner, preferences page, error page.

The banner hash identifies the exact banner a visitor answered: it covers the
template source (the site's override if any), the texts, the category labels
and descriptions and the language, so a receipt proves what was shown.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from importlib.resources import files
from typing import Any

from mypharm_consent.config import NECESSARY, ConsentConfig, Language
from mypharm_consent.state import ConsentState
from mypharm_consent.templating import environment
from mypharm_consent.texts import texts_for

__all__ = [
    "BANNER_TEMPLATE",
    "PREFERENCES_TEMPLATE",
    "BannerRenderer",
    "StaticAsset",
    "shown_banner",
]

BANNER_TEMPLATE = "banner.html"
PREFERENCES_TEMPLATE = "preferences.html"
_FOOTER_TEMPLATE = "footer.html"
_ERROR_TEMPLATE = "error.html"
#: Banners this process has identified by hash, for :func:`shown_banner`.
_SHOWN: dict[tuple[str, str], str] = {}
_SHOWN_LIMIT = 256
#: Stands for the form token in cached renders; real tokens always contain a dot.
_CSRF_SLOT = "mpc-form-token-slot"
_LOCK = threading.Lock()


def shown_banner(banner_hash: str, language: str) -> str | None:
    """The HTML of the banner (or preferences form) a hash stands for, if this process knows it.

    It is rendered with a blank form token and ``next="/"``: what the visitor
    read, not what varied per request. Receipts store it once per hash as
    proof of the exact wording.
    """
    with _LOCK:
        return _SHOWN.get((banner_hash, language))


class StaticAsset:
    """A file served under ``{prefix}/static/``, read once at start-up."""

    __slots__ = ("body", "content_type", "etag", "version")

    def __init__(self, body: bytes, content_type: str) -> None:
        self.body = body
        self.content_type = content_type
        self.version = hashlib.sha256(body).hexdigest()[:12]
        self.etag = f'"{self.version}"'


_CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


def _load_assets() -> dict[str, StaticAsset]:
    """Every servable file of the package's ``static/`` directory, by name.

    The set is fixed at start-up: only these names are ever served, so no
    request path can reach another file.
    """
    assets: dict[str, StaticAsset] = {}
    for entry in (files("mypharm_consent") / "static").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in _CONTENT_TYPES:
            assets[entry.name] = StaticAsset(entry.read_bytes(), _CONTENT_TYPES[suffix])
    return assets


class BannerRenderer:
    """Renders the package's templates for one configuration.

    Texts are merged and checked at construction, so a misspelt override
    fails at start-up.
    """

    def __init__(self, config: ConsentConfig) -> None:
        self.config = config
        self.texts = texts_for(config)
        self.assets = _load_assets()
        self._env = environment(config)
        self._hashes: dict[tuple[str, str], str] = {}
        self._banner = lru_cache(maxsize=512)(self._render_banner)
        self._footer = lru_cache(maxsize=512)(self._render_footer)
        prefix = config.prefix
        self._urls = {
            "decide_url": f"{prefix}/decide",
            "preferences_url": f"{prefix}/preferences",
            "css_url": f"{prefix}/static/consent.css?v={self.assets['consent.css'].version}",
            "js_url": f"{prefix}/static/consent.js?v={self.assets['consent.js'].version}",
        }

    def _categories(self, language: Language, granted: frozenset[str]) -> list[dict[str, Any]]:
        return [
            {
                "name": category.name,
                "label": category.label[language],
                "description": category.description[language],
                "required": category.name == NECESSARY,
                "checked": category.name == NECESSARY or category.name in granted,
            }
            for category in self.config.categories
        ]

    def _context(self, language: Language, next_path: str, **extra: Any) -> dict[str, Any]:
        return {
            **self._urls,
            "t": self.texts[language],
            "lang": language,
            "next": next_path,
            "privacy_url": self.config.privacy_policy_url,
            "reopen_link": self.config.reopen_link,
            **extra,
        }

    def banner(self, language: Language, *, csrf: str, next_path: str) -> str:
        """The banner markup injected before ``</body>`` when no decision is known.

        Rendered once per language and page, then only the form token changes.
        """
        return self._banner(language, next_path).replace(_CSRF_SLOT, csrf)

    def _render_banner(self, language: Language, next_path: str) -> str:
        context = self._context(
            language,
            next_path,
            csrf=_CSRF_SLOT,
            decided=False,
            categories=self._categories(language, frozenset()),
        )
        return self._env.get_template(BANNER_TEMPLATE).render(context)

    def footer(self, language: Language, state: ConsentState, *, next_path: str) -> str:
        """What decided visitors get before ``</body>``: the script and the reopen link."""
        return self._footer(language, tuple(sorted(state.granted)), next_path)

    def _render_footer(self, language: Language, granted: tuple[str, ...], next_path: str) -> str:
        context = self._context(language, next_path, decided=True, granted=granted)
        return self._env.get_template(_FOOTER_TEMPLATE).render(context)

    def preferences_page(
        self,
        language: Language,
        state: ConsentState,
        *,
        csrf: str,
        next_path: str,
        history: Mapping[str, Any] | None = None,
    ) -> str:
        """The full preferences page, with the visitor's current choices ticked.

        ``history`` (see :mod:`mypharm_consent.history`) adds the visitor's
        receipts, their download and their erasure.
        """
        decided_at = _format_date(state.decided_at, language) if state.decided else None
        granted = state.granted if state.decided else frozenset()
        context = self._context(
            language,
            next_path,
            csrf=csrf,
            decided_at=decided_at,
            categories=self._categories(language, granted),
            history=history,
        )
        return self._env.get_template(PREFERENCES_TEMPLATE).render(context)

    def error_page(self, language: Language, message_key: str, *, next_path: str) -> str:
        """A short page explaining why a request to the consent endpoints failed."""
        context = self._context(language, next_path, message=self.texts[language][message_key])
        return self._env.get_template(_ERROR_TEMPLATE).render(context)

    def banner_hash(self, language: Language, template: str = BANNER_TEMPLATE) -> str:
        """A stable digest of what the visitor was shown: template, texts, language."""
        key = (language, template)
        cached = self._hashes.get(key)
        if cached is not None:
            return cached
        source, _, _ = self._env.loader.get_source(self._env, template)  # type: ignore[union-attr]
        shown: Mapping[str, Any] = {
            "language": language,
            "template": template,
            "texts": self.texts[language],
            "categories": [
                [c.name, c.label[language], c.description[language]] for c in self.config.categories
            ],
            "privacy_url": self.config.privacy_policy_url,
        }
        digest = hashlib.sha256(source.encode("utf-8"))
        digest.update(json.dumps(shown, sort_keys=True, ensure_ascii=False).encode("utf-8"))
        value = digest.hexdigest()[:32]
        if template == PREFERENCES_TEMPLATE:
            html = self.preferences_page(language, ConsentState.undecided(), csrf="", next_path="/")
        else:
            html = self.banner(language, csrf="", next_path="/")
        with _LOCK:
            if len(_SHOWN) < _SHOWN_LIMIT:
                _SHOWN[(value, language)] = html
        self._hashes[key] = value
        return value


def _format_date(moment: datetime | None, language: Language) -> str | None:
    if moment is None:
        return None
    if language == "fr":
        return moment.strftime("%d/%m/%Y à %H:%M UTC")
    return moment.strftime("%Y-%m-%d at %H:%M UTC")
