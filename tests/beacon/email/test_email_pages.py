"""The pages of the e-mail endpoints: language choice and content."""

from __future__ import annotations

import pytest

import beacon.email
from beacon.email.pages import page_language, render_page


@pytest.mark.parametrize(
    ("query", "header", "expected"),
    [
        (None, None, "fr"),
        (None, "", "fr"),
        (None, "en-US,en;q=0.9,fr;q=0.8", "en"),
        (None, "de-DE, fr;q=0.5, en;q=0.4", "fr"),
        (None, "fr;q=0.2, en;q=0.9", "en"),
        (None, "en;q=0, fr;q=0.1", "fr"),
        (None, "en;q=abc, fr;q=0.5", "fr"),
        (None, "es, de", "fr"),
        (None, "EN-gb", "en"),
        (None, "x" * 5000 + ",en", "fr"),
        ("en", "fr", "en"),
        ("fr", "en", "fr"),
        ("de", "en", "en"),
    ],
)
def test_page_language(query: str | None, header: str | None, expected: str) -> None:
    assert page_language(query, header) == expected


@pytest.mark.parametrize("state", ["confirm", "done", "invalid", "unavailable"])
@pytest.mark.parametrize("language", ["fr", "en"])
def test_pages_name_the_site_and_link_the_other_language(state: str, language: str) -> None:
    html = render_page(state, language, "mypharm.fr & co")  # type: ignore[arg-type]
    assert f'<html lang="{language}">' in html
    assert "mypharm.fr &amp; co" in html
    other = "en" if language == "fr" else "fr"
    assert f'href="?lang={other}"' in html
    assert ("<form" in html) == (state == "confirm")
    assert "<script" not in html


def test_exported_names() -> None:
    assert sorted(beacon.email.__all__) == sorted(
        [
            "MAX_TOKEN_LENGTH", "TRANSPARENT_GIF", "EmailToken", "EmailTokenSigner",
            "EmailTracker", "EmailTrackingError", "InstrumentationError", "MachineClassifier",
            "MachineVerdict", "TokenError", "Unsubscribe", "UnsubscribeRecord", "email_routes",
            "instrument_html", "normalize_address",
        ]
    )  # fmt: skip
    for name in beacon.email.__all__:
        assert getattr(beacon.email, name) is not None
