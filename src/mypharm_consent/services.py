"""A registry of common third-party services a site can opt into by name.

A category lists the services it covers either as :class:`Service` objects or
as names from this registry::

    Category("analytics", label=..., description=..., services=("google-analytics", "hotjar"))
    Category("marketing", label=..., description=..., services=("meta-pixel", "youtube"))

Each registered service declares the hosts it loads from (so untagged
``<script>``, ``<img>``, ``<iframe>``... pointing there are gated with the
category) and the cookies it sets on the site's own domain (so they are
expired when the category is refused or withdrawn). Names are resolved when
the :class:`~mypharm_consent.config.Category` is built: an unknown name raises
:class:`~mypharm_consent.exceptions.ConfigurationError` at start-up.

A service missing here is declared inline with :class:`Service`; a registered
one can be adapted with :func:`dataclasses.replace`, e.g.
``replace(get("google-analytics"), cookies=("_ga*", "my_cookie"))``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from mypharm_consent.config import Category, Service
from mypharm_consent.exceptions import ConfigurationError

__all__ = ["REGISTRY", "get", "resolve", "services_of"]


def _service(
    name: str,
    label: str,
    hosts: tuple[str, ...],
    cookies: tuple[str, ...],
    fr: str,
    en: str,
    privacy_url: str,
) -> Service:
    return Service(
        name=name,
        label=label,
        hosts=hosts,
        cookies=cookies,
        description={"fr": fr, "en": en},
        privacy_url=privacy_url,
    )


_SERVICES = (
    _service(
        "google-analytics",
        "Google Analytics",
        (
            "*.google-analytics.com",
            "*.analytics.google.com",
            # gtag.js, the loader of Google Analytics 4, is served from here.
            "www.googletagmanager.com",
        ),
        ("_ga*", "_gid", "__utm*"),
        "Mesure d'audience de Google.",
        "Audience measurement by Google.",
        "https://policies.google.com/privacy",
    ),
    _service(
        "google-tag-manager",
        "Google Tag Manager",
        ("*.googletagmanager.com",),
        (),
        "Gestionnaire de balises de Google, qui charge d'autres services.",
        "Google's tag manager, which loads other services.",
        "https://policies.google.com/privacy",
    ),
    _service(
        "google-ads",
        "Google Ads",
        (
            "*.googleadservices.com",
            "*.doubleclick.net",
            "*.googlesyndication.com",
            "pagead2.googlesyndication.com",
        ),
        ("_gcl_*",),
        "Mesure des conversions et publicité ciblée de Google.",
        "Conversion tracking and targeted advertising by Google.",
        "https://policies.google.com/technologies/ads",
    ),
    _service(
        "google-maps",
        "Google Maps",
        ("maps.googleapis.com", "maps.gstatic.com", "maps.google.com", "maps.google.fr"),
        (),
        "Cartes interactives de Google.",
        "Interactive maps by Google.",
        "https://policies.google.com/privacy",
    ),
    _service(
        "google-fonts",
        "Google Fonts",
        ("fonts.googleapis.com", "fonts.gstatic.com"),
        (),
        "Polices de caractères hébergées par Google.",
        "Web fonts hosted by Google.",
        "https://policies.google.com/privacy",
    ),
    _service(
        "meta-pixel",
        "Meta Pixel",
        ("connect.facebook.net", "www.facebook.com"),
        ("_fbp", "_fbc"),
        "Mesure des conversions et publicité ciblée de Meta (Facebook, Instagram).",
        "Conversion tracking and targeted advertising by Meta (Facebook, Instagram).",
        "https://www.facebook.com/privacy/policy/",
    ),
    _service(
        "youtube",
        "YouTube",
        ("*.youtube.com", "*.youtube-nocookie.com", "*.ytimg.com", "youtu.be"),
        (),
        "Vidéos hébergées par YouTube (Google).",
        "Videos hosted by YouTube (Google).",
        "https://policies.google.com/privacy",
    ),
    _service(
        "vimeo",
        "Vimeo",
        ("*.vimeo.com", "*.vimeocdn.com"),
        (),
        "Vidéos hébergées par Vimeo.",
        "Videos hosted by Vimeo.",
        "https://vimeo.com/privacy",
    ),
    _service(
        "matomo-cloud",
        "Matomo Cloud",
        ("*.matomo.cloud", "*.innocraft.cloud"),
        ("_pk_*", "mtm_*"),
        "Mesure d'audience Matomo hébergée par InnoCraft.",
        "Matomo audience measurement hosted by InnoCraft.",
        "https://matomo.org/privacy-policy/",
    ),
    _service(
        "hotjar",
        "Hotjar",
        ("*.hotjar.com", "*.hotjar.io"),
        ("_hj*",),
        "Cartes de chaleur et enregistrements de sessions.",
        "Heatmaps and session recordings.",
        "https://www.hotjar.com/legal/policies/privacy/",
    ),
    _service(
        "linkedin-insight",
        "LinkedIn Insight Tag",
        ("snap.licdn.com", "px.ads.linkedin.com"),
        ("li_fat_id", "li_gc"),
        "Mesure des conversions et publicité ciblée de LinkedIn.",
        "Conversion tracking and targeted advertising by LinkedIn.",
        "https://www.linkedin.com/legal/privacy-policy",
    ),
    _service(
        "microsoft-clarity",
        "Microsoft Clarity",
        ("*.clarity.ms",),
        ("_clck", "_clsk"),
        "Cartes de chaleur et enregistrements de sessions de Microsoft.",
        "Heatmaps and session recordings by Microsoft.",
        "https://privacy.microsoft.com/privacystatement",
    ),
    _service(
        "microsoft-ads",
        "Microsoft Advertising",
        ("bat.bing.com",),
        ("_uetsid", "_uetvid"),
        "Mesure des conversions et publicité ciblée de Microsoft (Bing).",
        "Conversion tracking and targeted advertising by Microsoft (Bing).",
        "https://privacy.microsoft.com/privacystatement",
    ),
    _service(
        "tiktok-pixel",
        "TikTok Pixel",
        ("analytics.tiktok.com",),
        ("_ttp", "_tt_enable_cookie"),
        "Mesure des conversions et publicité ciblée de TikTok.",
        "Conversion tracking and targeted advertising by TikTok.",
        "https://www.tiktok.com/legal/privacy-policy",
    ),
    _service(
        "pinterest-tag",
        "Pinterest Tag",
        ("s.pinimg.com", "ct.pinterest.com"),
        ("_pin_unauth", "_pinterest_*"),
        "Mesure des conversions et publicité ciblée de Pinterest.",
        "Conversion tracking and targeted advertising by Pinterest.",
        "https://policy.pinterest.com/privacy-policy",
    ),
)

#: Every registered service by name (read-only).
REGISTRY: Mapping[str, Service] = MappingProxyType({s.name: s for s in _SERVICES})


def get(name: str) -> Service:
    """The registered service called ``name``.

    Raises :class:`~mypharm_consent.exceptions.ConfigurationError` naming the
    closest registered names when there is no such service.
    """
    service = REGISTRY.get(name)
    if service is None:
        close = difflib.get_close_matches(name, list(REGISTRY), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigurationError(
            f"unknown service {name!r}{hint}; registered services: {', '.join(sorted(REGISTRY))};"
            " declare any other with mypharm_consent.Service(name, hosts=..., cookies=...)"
        )
    return service


def resolve(services: Iterable[Service | str]) -> tuple[Service, ...]:
    """``services`` with every registry name replaced by its :class:`Service`.

    A lone name is accepted for a one-service tuple (``services="youtube"``).
    """
    if isinstance(services, str):
        services = (services,)
    resolved: list[Service] = []
    for entry in services:
        if isinstance(entry, Service):
            resolved.append(entry)
        elif isinstance(entry, str):
            resolved.append(get(entry))
        else:
            raise ConfigurationError(
                f"a category's services must be Service objects or registry names, got {entry!r}"
            )
    return tuple(resolved)


def services_of(category: Category) -> tuple[Service, ...]:
    """The services ``category`` covers, as :class:`Service` objects."""
    return resolve(category.services)
