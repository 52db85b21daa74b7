"""Gating a UTF-8 page as bytes (``gate_utf8``) gives the page gating its text gives."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mypharm_consent import ConsentConfig, ConsentState, Service, gating
from mypharm_consent.engine import ConsentEngine
from mypharm_consent.gating import gate_html, gate_utf8

from .gating_pages import (
    ANALYTICS,
    EVERYTHING,
    GPC,
    NOTHING,
    TRACKER,
    gating_categories,
    gating_config,
)
from .test_gating import FRAGMENTS, PAGE, SKIM_FRAGMENTS, TOKEN

#: A service with a non-ASCII name and label, loading from an internationalized host.
VIDEOS = Service(
    "vidéos", label="Vidéos « Exämple »", hosts=("*.xn--exmple-cua.test",), cookies=("vid_*",)
)


def _config(**overrides: object) -> ConsentConfig:
    return gating_config(categories=gating_categories(VIDEOS), **overrides)


CONFIGS = [_config(), _config(consent_mode=False)]

#: Text and tags whose UTF-8 bytes include the ones Latin-1 reads as white
#: space (0x85, 0xA0), letters, and the byte order mark.
NON_ASCII = [
    "é",
    "à",
    "Å",
    "’",
    "€",
    "\xa0",
    "\u2028",
    "🙂",
    "\ufeff",
    "<p title=voilà>",
    '<img alt="Vidéo à la une" src="https://' + TRACKER + '/é.gif">',
    "<img src=https://www.exämple.test/a.gif>",
    "<img src=//cdn.EXÄMPLE.test./b.gif>",
    "<img src=https://www.ex%C3%A4mple.test/c.gif>",
    '<iframe src="https://vidéo.exämple.test/embed/1" title="Vidéo"></iframe>',
    "<iframe src=https://www.youtube.com/embed/é width=560></iframe>",
    '<script data-consent="marketing" data-service="Régie">x="é"</script>',
    '<script type="module" data-consent=analytics src="/é.js"></script>',
    "<video data-consent=marketing poster=/affiche-été.png>",
    "<source srcset='https://www.exämple.test/1x.png 1x, /2x.png 2x'>",
    "<img data-consent='marketing' srcset='/é 1x'>",
    "</é>",
    "<é>",
    "<img sr\xe9c=x>",
    "<ÿ src=https://" + TRACKER + "/y.gif>",
    '<img src="https://' + TRACKER + '/&eacute;.gif">',
]
STATES = [NOTHING, ANALYTICS, EVERYTHING, GPC]


def both(page: str, state: ConsentState, config: ConsentConfig, language: str) -> tuple[str, str]:
    """The page gated as text then encoded, and gated as bytes (form tokens blanked)."""
    as_text = gate_html(page, state, config, language=language, remember=False).encode()
    as_bytes = gate_utf8(page.encode(), state, config, language=language)
    return TOKEN.sub("", as_text.decode()), TOKEN.sub("", as_bytes.decode())


@settings(max_examples=400, deadline=None)
@given(
    st.lists(FRAGMENTS | st.sampled_from(SKIM_FRAGMENTS) | st.sampled_from(NON_ASCII), max_size=30),
    st.sampled_from(STATES),
    st.sampled_from(CONFIGS),
    st.sampled_from(["fr", "en"]),
)
def test_bytes_and_text_give_the_same_page(
    fragments: list[str], state: ConsentState, config: ConsentConfig, language: str
) -> None:
    as_text, as_bytes = both("".join(fragments), state, config, language)
    assert as_bytes == as_text


@settings(max_examples=200, deadline=None)
@given(
    st.text(
        alphabet=st.characters(
            # Python folds these four into ASCII letters when matching
            # without case; browsers, like the byte reading, do not.
            blacklist_characters="\u0130\u0131\u017f\u212a",
            blacklist_categories=("Cs",),
        ),
        max_size=40,
    ),
    st.sampled_from(STATES),
)
def test_bytes_and_text_agree_around_any_character(text: str, state: ConsentState) -> None:
    page = f'<p>{text}</p><img src="https://{TRACKER}/{text}.gif" alt="{text}"><iframe src={text}>'
    as_text, as_bytes = both(page, state, CONFIGS[0], "fr")
    assert as_bytes == as_text


@pytest.mark.parametrize("state", STATES, ids=["nothing", "analytics", "everything", "gpc"])
def test_the_reference_page_is_gated_the_same_as_bytes(state: ConsentState) -> None:
    as_text, as_bytes = both(PAGE, state, CONFIGS[0], "fr")
    assert as_bytes == as_text


def test_an_internationalized_host_is_gated_however_it_is_spelt() -> None:
    page = (
        "<img src=https://www.exämple.test/a.gif>"
        "<img src=https://www.xn--exmple-cua.test/b.gif>"
        "<img src=https://www.ex%C3%A4mple.test/c.gif>"
    )
    output = gate_utf8(page.encode(), NOTHING, CONFIGS[1]).decode()
    assert output.count("data-src=") == 3
    assert " src=" not in output
    assert gate_utf8(page.encode(), EVERYTHING, CONFIGS[1]) == page.encode()


def test_the_placeholder_and_inserted_names_are_utf8() -> None:
    page = '<iframe src="https://www.exämple.test/embed" width="560"></iframe>'
    output = gate_utf8(page.encode(), NOTHING, CONFIGS[1], language="fr")
    text = output.decode("utf-8")
    assert 'data-service="vidéos"' in text
    assert "Vidéos « Exämple »" in text
    assert "Charger" in text or "Afficher" in text


def test_bytes_that_are_not_utf8_are_kept_and_do_not_stop_gating() -> None:
    page = (
        b"<!doctype html><html><head><title>Caf\xe9</title></head><body>\xff\xfe"
        b'<script src="https://' + TRACKER.encode() + b'/t.js"></script>'
        b"<p>cr\xe8me \xc3</p></body></html>"
    )
    output = gate_utf8(page, NOTHING, CONFIGS[1])
    assert b'type="text/plain"' in output
    assert b"data-src=" in output
    for kept in (b"Caf\xe9", b"\xff\xfe", b"cr\xe8me \xc3"):
        assert kept in output
    # Nothing was taken out: the output is the page with insertions only.
    remaining = iter(output)
    assert all(byte in remaining for byte in page)


def test_a_byte_order_mark_is_read_before_the_doctype() -> None:
    page = "\ufeff<!doctype html><p>x</p><img src=https://" + TRACKER + "/a.gif>"
    as_text, as_bytes = both(page, NOTHING, CONFIGS[0], "fr")
    assert as_bytes == as_text
    # Without <head> or a script, Consent Mode goes right after the doctype, behind the mark.
    assert as_bytes.startswith('\ufeff<!doctype html><script type="application/json"')


def test_the_middleware_gates_and_banners_a_page_with_bad_bytes() -> None:
    engine = ConsentEngine(CONFIGS[1])
    body = b"<html><body>\xff<img src=https://" + TRACKER.encode() + b"/p.gif></body></html>"
    rewritten = engine.rewrite_page(
        NOTHING, [(b"content-type", b"text/html; charset=utf-8")], body, target="/"
    )
    assert rewritten is not None
    headers, new_body = rewritten
    assert b"\xff" in new_body
    assert b"data-src=" in new_body
    assert b"mypharm-consent-banner" in new_body
    assert (b"content-length", b"%d" % len(new_body)) in headers


def test_a_tag_judged_as_bytes_is_not_remembered_for_text() -> None:
    # An all-ASCII tag whose insertion is not ASCII: as bytes, the service's
    # name goes in as UTF-8; as text, as characters. Each reading keeps its own.
    config = _config(consent_mode=False)
    gate = gating._gate_for(config)
    tag = '<img src="https://www.xn--exmple-cua.test/a.gif">'
    as_bytes = gate_utf8(tag.encode(), NOTHING, config)
    assert len(gate.verdicts) == 1
    as_text = gate_html(tag, NOTHING, config, remember=False)
    assert len(gate.verdicts) == 2
    assert 'data-service="vidéos"' in as_text
    assert as_bytes == as_text.encode()
