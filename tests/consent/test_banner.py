"""Texts, languages, template overrides and the banner hash."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from mypharm_consent import ConfigurationError
from mypharm_consent.banner import (
    BANNER_TEMPLATE,
    PREFERENCES_TEMPLATE,
    BannerRenderer,
    shown_banner,
)
from mypharm_consent.state import ConsentState
from mypharm_consent.templating import environment
from mypharm_consent.texts import DEFAULT_TEXTS, negotiate_language, texts_for

from .conftest import make_config


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "fr"),
        ("", "fr"),
        ("en", "en"),
        ("en-GB,en;q=0.9", "en"),
        ("fr-FR,fr;q=0.9,en;q=0.8", "fr"),
        ("de-DE,de;q=0.9,en;q=0.8,fr;q=0.7", "en"),
        ("fr;q=0.2, en;q=0.5", "en"),
        ("en;q=0, fr;q=0.1", "fr"),
        ("es, it", "fr"),
        ("en;q=nonsense", "fr"),
        ("*", "fr"),
        ("en;q=0.8, " * 100, "en"),
    ],
    ids=repr,
)
def test_language_negotiation(header: str | None, expected: str) -> None:
    assert negotiate_language(header, "fr") == expected


def test_both_languages_have_the_same_keys() -> None:
    assert set(DEFAULT_TEXTS["fr"]) == set(DEFAULT_TEXTS["en"])


def test_texts_overrides_apply_per_language() -> None:
    texts = texts_for(make_config(texts={"en": {"title": "Cookies?"}}))
    assert texts["en"]["title"] == "Cookies?"
    assert texts["fr"]["title"] == DEFAULT_TEXTS["fr"]["title"]


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        ({"de": {"title": "x"}}, "unknown language"),
        ({"fr": {"titel": "x"}}, "unknown key 'titel'"),
        ({"fr": {"title": "  "}}, "non-empty"),
    ],
    ids=["language", "key", "empty"],
)
def test_bad_overrides_fail_at_start_up(texts: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        BannerRenderer(make_config(texts=texts))


def test_banner_hash_identifies_what_was_shown(tmp_path: Path) -> None:
    base = BannerRenderer(make_config())
    fr = base.banner_hash("fr")
    assert fr == BannerRenderer(make_config()).banner_hash("fr")
    assert fr != base.banner_hash("en")
    assert fr != base.banner_hash("fr", PREFERENCES_TEMPLATE)
    reworded = BannerRenderer(make_config(texts={"fr": {"message": "Autre texte."}}))
    assert reworded.banner_hash("fr") != fr
    assert reworded.banner_hash("en") == base.banner_hash("en")
    (tmp_path / BANNER_TEMPLATE).write_text(
        '<div id="mypharm-consent-banner">{{ t.title }}</div>', encoding="utf-8"
    )
    overridden = BannerRenderer(make_config(template_dirs=[tmp_path]))
    assert overridden.banner_hash("fr") != fr
    assert (
        overridden.banner("fr", csrf="t", next_path="/")
        == '<div id="mypharm-consent-banner">Vos choix sur les cookies</div>'
    )


def test_site_templates_come_first_and_autoescape(tmp_path: Path) -> None:
    (tmp_path / "preferences.html").write_text("{{ t.title }} {{ next }}", encoding="utf-8")
    renderer = BannerRenderer(make_config(template_dirs=[tmp_path]))
    page = renderer.preferences_page(
        "fr", ConsentState.undecided(), csrf="t", next_path='/"><script>'
    )
    assert page.startswith("Vos choix sur les cookies /&#34;&gt;&lt;script&gt;")
    env = environment(make_config())
    assert env.autoescape is True
    assert env is environment(make_config())
    assert env.get_template(BANNER_TEMPLATE) is not None


def test_no_inline_script_or_style_anywhere() -> None:
    renderer = BannerRenderer(make_config())
    decided = ConsentState(decided=True, granted=frozenset({"necessary"}), consent_id="x" * 22)
    outputs = [
        renderer.banner("fr", csrf="t", next_path="/"),
        renderer.footer("fr", decided, next_path="/"),
        renderer.preferences_page("en", decided, csrf="t", next_path="/"),
        renderer.error_page("fr", "error_forbidden", next_path="/"),
    ]
    for html in outputs:
        assert "<style" not in html
        assert " style=" not in html
        assert re.search(r"\son[a-z]+=", html) is None
        for tag in html.split("<script")[1:]:
            assert tag.split(">")[0].count(" src=") == 1
            assert tag.split(">", 1)[1].startswith("</script>")


def test_the_reopen_link_can_be_switched_off() -> None:
    renderer = BannerRenderer(make_config(reopen_link=False))
    decided = ConsentState(decided=True, granted=frozenset({"necessary"}), consent_id="x" * 22)
    assert "mypharm-consent-reopen" not in renderer.footer("fr", decided, next_path="/")
    assert "mypharm-consent-reopen" not in renderer.banner("fr", csrf="t", next_path="/")


def test_shown_banner_returns_the_wording_behind_a_hash() -> None:
    renderer = BannerRenderer(make_config(texts={"en": {"title": "Cookie time"}}))
    digest = renderer.banner_hash("en")
    html = shown_banner(digest, "en")
    assert html is not None
    assert "Cookie time" in html
    assert 'name="csrf" value=""' in html
    assert shown_banner(digest, "fr") is None
    assert shown_banner("0" * 32, "en") is None


@pytest.mark.parametrize(
    ("days", "french", "english"),
    [
        (182, "6 mois", "6 months"),
        (396, "13 mois", "13 months"),
        (30, "1 mois", "1 month"),
        (7, "7 jours", "7 days"),
        (1, "1 jour", "1 day"),
    ],
)
def test_the_preferences_page_states_the_real_consent_life(
    days: int, french: str, english: str
) -> None:
    texts = texts_for(make_config(consent_max_age=timedelta(days=days)))
    assert texts["fr"]["preferences_intro"].endswith(f"Votre choix est conservé {french}.")
    assert texts["en"]["preferences_intro"].endswith(f"Your choice is kept for {english}.")
