"""The registry of common services and how categories name them."""

from __future__ import annotations

import pytest

from mypharm_consent import Category, ConfigurationError, ConsentConfig, Service
from mypharm_consent.services import REGISTRY, get, resolve, services_of

TEXT = {"fr": "Texte", "en": "Text"}


def category(name: str, services: tuple[Service | str, ...] | str) -> Category:
    return Category(name, label=TEXT, description=TEXT, services=services)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "host"),
    [
        ("google-analytics", "*.google-analytics.com"),
        ("google-tag-manager", "*.googletagmanager.com"),
        ("google-ads", "*.doubleclick.net"),
        ("meta-pixel", "connect.facebook.net"),
        ("youtube", "*.youtube.com"),
        ("youtube", "*.youtube-nocookie.com"),
        ("youtube", "*.ytimg.com"),
        ("vimeo", "*.vimeo.com"),
        ("matomo-cloud", "*.matomo.cloud"),
        ("hotjar", "*.hotjar.com"),
        ("linkedin-insight", "snap.licdn.com"),
        ("microsoft-clarity", "*.clarity.ms"),
        ("tiktok-pixel", "analytics.tiktok.com"),
        ("google-maps", "maps.googleapis.com"),
    ],
)
def test_registry_declares_the_hosts_of_common_services(name: str, host: str) -> None:
    assert host in get(name).hosts


def test_every_registered_service_is_complete() -> None:
    for name, service in REGISTRY.items():
        assert service.name == name
        assert service.hosts, name
        assert service.label != name, name
        assert service.description["fr"], name
        assert service.description["en"], name
        assert (service.privacy_url or "").startswith("https://"), name


def test_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        REGISTRY["mine"] = Service("mine")  # type: ignore[index]


def test_category_resolves_registry_names_at_construction() -> None:
    own = Service("adpartner", hosts=("*.adpartner.example",), cookies=("ap_*",))
    built = category("marketing", ("meta-pixel", own))
    assert built.services == (REGISTRY["meta-pixel"], own)
    assert services_of(built) == (REGISTRY["meta-pixel"], own)


def test_a_lone_name_is_one_service() -> None:
    assert category("marketing", "youtube").services == (REGISTRY["youtube"],)


def test_unknown_name_fails_at_configuration_time_with_a_suggestion() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown service 'youtub'.*did you mean youtube"):
        category("marketing", ("youtub",))


def test_unknown_name_also_fails_through_the_config() -> None:
    with pytest.raises(ConfigurationError, match="unknown service 'nope'"):
        ConsentConfig(secret_keys=["k" * 32], categories=[category("marketing", ("nope",))])


def test_entries_must_be_services_or_names() -> None:
    with pytest.raises(ConfigurationError, match="Service objects or registry names"):
        resolve([42])  # type: ignore[list-item]
