"""Server-side gating: exact output per consent state, robustness, Consent Mode, placeholders."""

from __future__ import annotations

import json
import logging
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mypharm_consent import Category, ConfigurationError, ConsentConfig, ConsentState, gating
from mypharm_consent.csrf import CsrfGuard
from mypharm_consent.gating import (
    DEFAULT_CONSENT_MODE_MAPPING,
    consent_mode_defaults,
    gate_html,
    url_host,
)
from mypharm_consent.gating import asset_version as version

from .conftest import decide
from .gating_pages import (
    ANALYTICS,
    EVERYTHING,
    GPC,
    GPC_THEN_ACCEPTED,
    NOTHING,
    ROBUSTNESS,
    TEXT,
    TRACKER,
    gating_config,
    loopback_site,
    loopback_wsgi_site,
)
from .sites import client_for

CONFIG = gating_config()

PAGE = """<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<title>Pharmacie</title>
<script src="/static/site.js"></script>
<script async src="https://www.googletagmanager.com/gtag/js?id=G-TEST"></script>
<script data-consent="analytics">window.dataLayer = window.dataLayer || [];</script>
<script type="module" data-consent="marketing" src="/static/ads.js"></script>
<link rel="preconnect" href="https://cdn.adpartner.example">
</head>
<body>
<img src="/logo.png" alt="Logo">
<img src="//px.adpartner.example/p.gif" alt="">
<iframe src="https://www.youtube-nocookie.com/embed/xyz" width="560" height="315" title="Vidéo"></iframe>
<noscript><img src="https://www.facebook.com/tr?id=1&amp;ev=PageView" height="1" width="1"></noscript>
</body>
</html>
"""  # noqa: E501

SIGNALS = (
    '"signals":{"ad_personalization":["marketing"],"ad_storage":["marketing"],'
    '"ad_user_data":["marketing"],"analytics_storage":["analytics"],'
    '"functionality_storage":[],"personalization_storage":[],'
    '"security_storage":["necessary"]}'
)


def consent_mode(analytics: str, marketing: str, gpc: bool) -> str:
    return (
        '<script type="application/json" id="mypharm-consent-mode">'
        f'{{"default":{{"ad_personalization":"{marketing}","ad_storage":"{marketing}",'
        f'"ad_user_data":"{marketing}","analytics_storage":"{analytics}",'
        '"functionality_storage":"denied","personalization_storage":"denied",'
        f'"security_storage":"granted"}},"gpc":{json.dumps(gpc)},{SIGNALS}}}</script>'
        f'<script src="/_consent/static/consent-mode.js?v={version("consent-mode.js")}"></script>'
    )


def gate_assets(granted: str) -> str:
    return (
        f'<link rel="stylesheet" href="/_consent/static/gate.css?v={version("gate.css")}">'
        f'<script src="/_consent/static/gate.js?v={version("gate.js")}" defer'
        f' data-prefix="/_consent" data-granted="{granted}" data-csrf="TOKEN"'
        ' data-lang="fr"></script>'
    )


def placeholder(gpc: bool) -> str:
    hidden = "" if gpc else " hidden"
    return (
        '<span class="mypharm-gate" id="mypharm-gate-1" role="group"'
        ' aria-labelledby="mypharm-gate-1-title" aria-describedby="mypharm-gate-1-message"'
        ' lang="fr" data-consent-gate="marketing" data-service-label="YouTube">'
        '<span class="mypharm-gate__title" id="mypharm-gate-1-title">'
        "Contenu de YouTube bloqué</span> "
        '<span class="mypharm-gate__message" id="mypharm-gate-1-message">'
        "Ce contenu est fourni par YouTube (www.youtube-nocookie.com), qui peut déposer des"
        " cookies. Il relève de la catégorie « Marketing », que vous n&#39;avez pas acceptée."
        "</span> "
        f'<span class="mypharm-gate__gpc" data-gate-gpc{hidden}>Votre navigateur demande de ne'
        " pas partager vos données (Global Privacy Control) : ce contenu ne se chargera que si"
        " vous le demandez.</span> "
        '<span class="mypharm-gate__actions">'
        '<button type="button" class="mypharm-gate__button" data-gate-load hidden>'
        "Charger ce contenu</button> "
        '<button type="button" class="mypharm-gate__button" data-gate-allow hidden>'
        "Toujours autoriser YouTube</button> "
        '<a class="mypharm-gate__link" href="/_consent/preferences">Gérer mes préférences</a>'
        "</span> "
        '<span class="mypharm-gate__error" data-gate-error role="alert" hidden>'
        "Votre choix n&#39;a pas pu être enregistré. Réessayez.</span>"
        '<iframe hidden data-consent="marketing" data-service="youtube"'
        ' data-src="https://www.youtube-nocookie.com/embed/xyz" width="560" height="315"'
        ' title="Vidéo"></iframe></span>'
    )


def gated_page(head: str, analytics_gated: bool, gpc: bool) -> str:
    if analytics_gated:
        analytics = (
            '<script type="text/plain" data-consent="analytics" data-service="google-analytics"'
            ' async data-src="https://www.googletagmanager.com/gtag/js?id=G-TEST"></script>\n'
            '<script type="text/plain" data-consent="analytics">'
            "window.dataLayer = window.dataLayer || [];</script>\n"
        )
    else:
        analytics = (
            '<script async src="https://www.googletagmanager.com/gtag/js?id=G-TEST"></script>\n'
            '<script data-consent="analytics">window.dataLayer = window.dataLayer || [];'
            "</script>\n"
        )
    return (
        "<!doctype html>\n"
        '<html lang="fr">\n'
        f"<head>{head}\n"
        '<meta charset="utf-8">\n'
        "<title>Pharmacie</title>\n"
        '<script src="/static/site.js"></script>\n'
        f"{analytics}"
        '<script type="text/plain" data-type="module" data-consent="marketing"'
        ' data-src="/static/ads.js"></script>\n'
        '<link data-consent="marketing" data-service="adpartner" rel="preconnect"'
        ' data-href="https://cdn.adpartner.example">\n'
        "</head>\n"
        "<body>\n"
        '<img src="/logo.png" alt="Logo">\n'
        '<img data-consent="marketing" data-service="adpartner"'
        ' data-src="//px.adpartner.example/p.gif" alt="">\n'
        f"{placeholder(gpc)}\n"
        '<noscript><img data-consent="marketing" data-service="meta-pixel"'
        ' data-src="https://www.facebook.com/tr?id=1&amp;ev=PageView" height="1" width="1">'
        "</noscript>\n"
        "</body>\n"
        "</html>\n"
    )


EVERYTHING_PAGE = PAGE.replace(
    "<head>", "<head>" + consent_mode("granted", "granted", gpc=False), 1
)

EXACT = [
    pytest.param(
        NOTHING,
        gated_page(
            consent_mode("denied", "denied", gpc=False) + gate_assets("necessary"),
            analytics_gated=True,
            gpc=False,
        ),
        id="no-consent",
    ),
    pytest.param(
        ANALYTICS,
        gated_page(
            consent_mode("granted", "denied", gpc=False) + gate_assets("analytics necessary"),
            analytics_gated=False,
            gpc=False,
        ),
        id="analytics-only",
    ),
    pytest.param(EVERYTHING, EVERYTHING_PAGE, id="everything"),
    pytest.param(
        GPC,
        gated_page(
            consent_mode("denied", "denied", gpc=True) + gate_assets("necessary"),
            analytics_gated=True,
            gpc=True,
        ),
        id="gpc",
    ),
    pytest.param(
        GPC_THEN_ACCEPTED,
        EVERYTHING_PAGE.replace('"gpc":false', '"gpc":true'),
        id="gpc-then-explicit-accept",
    ),
]

TOKEN = re.compile(r'data-csrf="([^"]+)"')


@pytest.mark.parametrize(("state", "expected"), EXACT)
def test_exact_output_per_consent_state(state: ConsentState, expected: str) -> None:
    output = gate_html(PAGE, state, CONFIG)
    tokens = TOKEN.findall(output)
    for token in tokens:
        # The form token is fresh on every page; it must be a genuine one.
        assert CsrfGuard(CONFIG).check({}, None, token) is None
    assert TOKEN.sub('data-csrf="TOKEN"', output) == expected


def test_everything_granted_without_consent_mode_is_byte_identical() -> None:
    config = gating_config(consent_mode=False)
    assert gate_html(PAGE, EVERYTHING, config) is PAGE


def test_the_same_page_for_the_same_choice_is_rewritten_once() -> None:
    first = gate_html(PAGE, NOTHING, CONFIG)
    assert gate_html(PAGE, ConsentState.undecided(), CONFIG) is first
    assert gate_html(PAGE, GPC, CONFIG) != first
    assert gate_html(PAGE, NOTHING, CONFIG, language="en") != first
    unique = PAGE.replace("</body>", "<!-- 2 --></body>")
    expected = TOKEN.sub("", first.replace("</body>", "<!-- 2 --></body>"))
    assert TOKEN.sub("", gate_html(unique, NOTHING, CONFIG)) == expected


def test_gating_switched_off_leaves_tags_alone() -> None:
    config = gating_config(gating=False, consent_mode=False)
    assert gate_html(PAGE, NOTHING, config) is PAGE


def test_placeholder_language_follows_the_argument_then_the_default() -> None:
    english = gate_html(PAGE, NOTHING, CONFIG, language="en")
    assert "Load this content" in english
    assert "Always allow YouTube" in english
    assert "YouTube content blocked" in english
    assert 'data-lang="en"' in english
    assert "Charger ce contenu" in gate_html(PAGE, NOTHING, CONFIG, language="de")
    config = gating_config(default_language="en")
    assert "Load this content" in gate_html(PAGE, NOTHING, config)


# -- robustness ---------------------------------------------------------------

GATED_PREFIX = re.compile(
    r"(?i)data-(?:consent-)?(?:src|href|srcset|imagesrcset|poster|srcdoc)[\t\n\f\r ]*="
    r"[\t\n\f\r ]*[\"']?$"
)
# Everything gating may add: attributes and prefixes inside a tag, the head
# scripts, and the placeholder around an iframe.
ADDED = [
    re.compile(pattern, re.DOTALL)
    for pattern in (
        ' type="text/plain"',
        ' data-consent="[a-z ]+"',
        ' data-service="[a-z -]+"',
        " hidden",
        "data-consent-",
        "data-",
        '<script type="application/json" id="mypharm-consent-mode">[^<]*</script>',
        r'<script src="/_consent/static/[a-z.-]+\?v=\w+"[^<>]*></script>',
        r'<link rel="stylesheet" href="/_consent/static/gate\.css\?v=\w+">',
        '<span class="mypharm-gate" .*?(?=<iframe hidden)',
        "</span>",
    )
]


def assert_only_insertions(page: str, output: str) -> None:
    """``output`` is ``page`` with only our insertions: nothing removed, nothing altered."""
    seen: set[tuple[int, int]] = set()
    pending = [(0, 0)]
    while pending:
        i, j = pending.pop()
        if (i, j) in seen:
            continue
        seen.add((i, j))
        if i == len(page) and j == len(output):
            return
        for added in ADDED:
            found = added.match(output, j)
            if found and found.end() > j:
                pending.append((i, found.end()))
        if i < len(page) and j < len(output) and page[i] == output[j]:
            pending.append((i + 1, j + 1))
    pytest.fail(f"the output is not the page plus insertions:\n{page!r}\n{output!r}")


@pytest.mark.parametrize(
    ("page", "gated", "kept"), [pytest.param(*case[1:], id=case[0]) for case in ROBUSTNESS]
)
def test_robustness_no_gated_tag_survives_and_other_bytes_stay(
    page: str, gated: list[str], kept: list[str]
) -> None:
    config = gating_config(consent_mode=False)
    output = gate_html(page, NOTHING, config)
    for url in gated:
        positions = [m.start() for m in re.finditer(re.escape(url), output)]
        assert positions, url
        for position in positions:
            assert GATED_PREFIX.search(output[:position]), (url, output)
    for text in kept:
        assert text in output
    assert_only_insertions(page, output)
    assert gate_html(page, EVERYTHING, config) == page


@pytest.mark.parametrize(
    "page",
    [
        pytest.param("<a " * 50_000, id="unterminated-tags"),
        pytest.param("<!--" * 50_000, id="unterminated-comments"),
        pytest.param("<script><!--<script>" * 20_000, id="script-escapes"),
        pytest.param("<img src='" * 50_000, id="unterminated-quotes"),
        pytest.param('<img a="' + "x" * 200_000, id="long-attribute"),
        pytest.param("<p " + "a=b " * 50_000 + ">", id="many-attributes"),
        pytest.param("<video data-consent=marketing>" * 20_000, id="deep-containers"),
        pytest.param(
            "<div a=" + "<script data-consent=x " * 20_000 + ">", id="landmarks-inside-a-tag"
        ),
        pytest.param("<p>" + "data-consent //x.adpartner.example " * 20_000, id="many-mentions"),
    ],
)
def test_pathological_pages_are_handled(page: str) -> None:
    assert gate_html(page, NOTHING, gating_config(consent_mode=False)) == page


def test_large_page_is_gated_to_the_end() -> None:
    body = "<div class='product'><a href='/p/1'>Doliprane</a><img src='/i/1.png'></div>\n" * 15_000
    page = f'<html><head></head><body>{body}<img src="https://{TRACKER}/end.gif"></body></html>'
    output = gate_html(page, NOTHING, gating_config(consent_mode=False))
    assert f'data-src="https://{TRACKER}/end.gif"' in output
    assert output.count("<img src='/i/1.png'>") == 15_000


SKIM_FRAGMENTS = [
    "<head>",
    "<!doctype html>",
    "<![CDATA[",
    "<?x ",
    "</ x>",
    "<a href='https://www.youtube.com/c'>",
    '<div title="a>b">',
    "<Script>",
    "<img src=//" + TRACKER + "/k.gif>",
    "<picture data-consent=marketing>",
    "</picture>",
    "<img src=/p.png>",
    "<b <script>",
    'x="',
    "<!-->",
    "<noscript><img src=https://" + TRACKER + "/n.gif></noscript>",
    '<p class="x">',
    "l'ordonnance ",
    '"cité" ',
    '<img alt="l\'a" src="https://' + TRACKER + '/q.gif">',
    "<a title=x>y</a>",
    "<video src=https://" + TRACKER + "/v.mp4>",
    "</video>",
    "<track src=/t.vtt>",
    "<img src=https:\\\\" + TRACKER + "\\b.gif>",
]

FRAGMENTS = st.sampled_from(
    [
        "<p>",
        "</p>",
        "<!--",
        "-->",
        "<script>",
        "</script>",
        "<style>",
        "</style>",
        "<textarea>",
        "</textarea>",
        "<noscript>",
        "</noscript>",
        f'<img src="https://{TRACKER}/h.gif">',
        f"<script src=//{TRACKER}/h.js>",
        f'<iframe src="https://{TRACKER}/h">',
        "</iframe>",
        '<img data-consent="marketing" src="/m.gif">',
        '"',
        "'",
        ">",
        "<",
        "<!",
        "<![CDATA[",
        "]]>",
        "<video data-consent='marketing'>",
        "</video>",
        "<source src=/s.mp4>",
        "text ",
        "<SCRIPT>",
        "<title>",
        "</title>",
        "<plaintext>",
    ]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(FRAGMENTS, max_size=25))
def test_any_soup_only_gets_insertions(fragments: list[str]) -> None:
    page = "".join(fragments)
    config = gating_config(consent_mode=False)
    output = gate_html(page, NOTHING, config)
    assert_only_insertions(page, output)
    assert gate_html(page, EVERYTHING, config) == page


def read_both_ways(page: str, state: ConsentState, config: ConsentConfig) -> tuple[str, str]:
    """The page gated by the quick read and by the full read (form tokens blanked)."""
    gate = gating._gate_for(config)
    language = config.default_language
    outputs = [
        gating._gate(page, state.granted, state.gpc, gate, language, fast=fast)
        for fast in (True, False)
    ]
    return TOKEN.sub("", outputs[0]), TOKEN.sub("", outputs[1])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(FRAGMENTS | st.sampled_from(SKIM_FRAGMENTS), max_size=30),
    st.sampled_from([NOTHING, ANALYTICS, EVERYTHING, GPC]),
)
def test_the_quick_read_and_the_full_read_agree(fragments: list[str], state: ConsentState) -> None:
    page = "".join(fragments)
    quick, full = read_both_ways(page, state, CONFIG)
    assert quick == full


@pytest.mark.parametrize("case", [pytest.param(case, id=case[0]) for case in ROBUSTNESS])
def test_the_quick_read_and_the_full_read_agree_on_the_robustness_table(
    case: tuple[str, str, list[str], list[str]],
) -> None:
    quick, full = read_both_ways(case[1], NOTHING, CONFIG)
    assert quick == full


# -- tagging rules ------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "state", "gated"),
    [
        pytest.param('data-consent="analytics marketing"', ANALYTICS, True, id="all-needed"),
        pytest.param('data-consent="analytics marketing"', EVERYTHING, False, id="all-granted"),
        pytest.param('data-consent="necessary"', NOTHING, False, id="necessary"),
        pytest.param('data-consent="  "', NOTHING, False, id="empty-is-untagged"),
        pytest.param('DATA-CONSENT="marketing"', NOTHING, True, id="uppercase-attribute"),
        pytest.param("data-consent=marketing", NOTHING, True, id="unquoted"),
    ],
)
def test_data_consent_lists_every_needed_category(
    tag: str, state: ConsentState, gated: bool
) -> None:
    page = f"<script {tag} src=/a.js></script>"
    output = gate_html(page, state, gating_config(consent_mode=False))
    assert ("data-src=/a.js" in output) is gated
    assert (output == page) is not gated


def test_undeclared_category_stays_inert_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = gating_config(consent_mode=False)
    page = '<img data-consent="marketting" src="/x.gif">'
    with caplog.at_level(logging.WARNING, logger="mypharm_consent"):
        assert "data-src" in gate_html(page, EVERYTHING, config)
        gate_html(page, EVERYTHING, config)
    assert [r.getMessage() for r in caplog.records].count(
        "data-consent names the undeclared category 'marketting': the element stays inert"
    ) == 1


def test_explicit_tag_wins_over_host_matching() -> None:
    page = '<script data-consent="analytics" src="https://connect.facebook.net/en_US/fbevents.js"></script>'
    assert gate_html(page, ANALYTICS, gating_config(consent_mode=False)) == page


def test_host_shared_by_two_categories_needs_both() -> None:
    config = gating_config(
        consent_mode=False,
        categories=[
            Category("analytics", label=TEXT, description=TEXT, services=("google-analytics",)),
            Category("marketing", label=TEXT, description=TEXT, services=("google-tag-manager",)),
        ],
    )
    page = '<script src="https://www.googletagmanager.com/gtm.js?id=GTM-1"></script>'
    output = gate_html(page, ANALYTICS, config)
    assert 'data-consent="analytics marketing"' in output
    assert 'data-service="google-analytics google-tag-manager"' in output
    assert gate_html(page, EVERYTHING, config) == page


def test_script_types_are_kept_for_activation() -> None:
    config = gating_config(consent_mode=False)
    cases = [
        (
            '<script data-consent="marketing">a()</script>',
            '<script type="text/plain" data-consent="marketing">a()</script>',
        ),
        (
            '<script type="text/javascript" data-consent="marketing">a()</script>',
            '<script type="text/plain" data-type="text/javascript" data-consent="marketing">'
            "a()</script>",
        ),
        (
            "<script type=module type=x data-consent=marketing>a()</script>",
            '<script type="text/plain" data-type=module type=x data-consent=marketing>a()</script>',
        ),
        (
            '<script type="text/plain" data-consent="marketing" data-src="/pre.js"></script>',
            '<script type="text/plain" data-consent="marketing" data-src="/pre.js"></script>',
        ),
    ]
    for page, expected in cases:
        assert gate_html(page, NOTHING, config) == expected


def test_hidden_iframes_get_no_placeholder() -> None:
    config = gating_config(consent_mode=False)
    for attributes in (
        'height="0" width="0" style="display:none;visibility:hidden"',
        "hidden",
        'width="1" height="1"',
        'data-consent-placeholder="off"',
    ):
        page = (
            '<iframe src="https://www.googletagmanager.com/ns.html" data-consent="marketing"'
            f" {attributes}></iframe>"
        )
        output = gate_html(page, NOTHING, config)
        assert "mypharm-gate" not in output
        assert 'data-src="https://www.googletagmanager.com/ns.html"' in output


def test_placeholder_names_the_declared_service_or_the_host() -> None:
    config = gating_config(consent_mode=False)
    tagged = gate_html(
        '<iframe data-consent="marketing" data-service="Calameo" src="https://v.calameo.com/x"></iframe>',
        NOTHING,
        config,
    )
    assert "Toujours autoriser Calameo" in tagged
    assert "fourni par Calameo (v.calameo.com)" in tagged
    untitled = gate_html(
        '<iframe data-consent="marketing" src="https://v.calameo.com/x"></iframe>', NOTHING, config
    )
    assert "Toujours autoriser v.calameo.com" in untitled


def test_pre_gated_markup_brings_gate_js_even_when_granted() -> None:
    page = (
        "<html><head></head><body>"
        '<script type="text/plain" data-consent="analytics" data-src="/a.js"></script>'
        "</body></html>"
    )
    output = gate_html(page, ANALYTICS, gating_config(consent_mode=False))
    assert output.startswith('<html><head><script src="/_consent/static/gate.js?v=')
    assert output.endswith(page[len("<html><head>") :])


# -- head injection -----------------------------------------------------------


@pytest.mark.parametrize(
    ("page", "before"),
    [
        pytest.param("<!DOCTYPE html><HEAD lang=fr><title>t</title>", "<title>", id="head"),
        pytest.param(
            "<!doctype html><title>t</title><script src=/a.js></script>",
            "<script src=/a.js>",
            id="before-script",
        ),
        pytest.param("<!doctype html>\n<p>hello</p>", "\n<p>hello</p>", id="after-doctype"),
        pytest.param("<!-- c --><html><p>x</p>", "<html>", id="before-html"),
        pytest.param("<body><p>x</p></body>", "<body>", id="body-only"),
    ],
)
def test_head_scripts_go_first_in_head_or_before_the_first_script(page: str, before: str) -> None:
    output = gate_html(page, NOTHING, CONFIG)
    block = output.index('<script type="application/json" id="mypharm-consent-mode">')
    assert output.index(before, block) > block
    assert output.count("mypharm-consent-mode") == 1
    assert_only_insertions(page, output)


def test_fragments_get_no_head_scripts() -> None:
    fragment = "<li>Paracétamol</li>"
    assert gate_html(fragment, NOTHING, CONFIG) == fragment


def test_head_inside_noscript_or_comment_is_not_the_head() -> None:
    page = "<!doctype html><!-- <head> --><noscript><head></noscript><head><title>t</title>"
    output = gate_html(page, NOTHING, CONFIG)
    assert output.startswith(
        "<!doctype html><!-- <head> --><noscript><head></noscript><head>"
        '<script type="application/json" id="mypharm-consent-mode">'
    )


# -- Consent Mode -------------------------------------------------------------


def test_consent_mode_defaults_follow_the_mapping() -> None:
    assert consent_mode_defaults(ANALYTICS, CONFIG) == {
        "ad_storage": "denied",
        "analytics_storage": "granted",
        "ad_user_data": "denied",
        "ad_personalization": "denied",
        "functionality_storage": "denied",
        "personalization_storage": "denied",
        "security_storage": "granted",
    }
    assert DEFAULT_CONSENT_MODE_MAPPING["marketing"] == (
        "ad_storage",
        "ad_user_data",
        "ad_personalization",
    )


def test_consent_mode_mapping_is_configurable_and_checked() -> None:
    config = gating_config(
        consent_mode_signals={"analytics": ["analytics_storage", "functionality_storage"]}
    )
    defaults = consent_mode_defaults(ANALYTICS, config)
    assert defaults["functionality_storage"] == "granted"
    assert defaults["ad_storage"] == "denied"
    assert defaults["security_storage"] == "denied"
    with pytest.raises(ConfigurationError, match="unknown signal 'ad_strage'"):
        gating_config(consent_mode_signals={"marketing": ["ad_strage"]})
    with pytest.raises(ConfigurationError, match="'ads' is not a declared category"):
        gating_config(consent_mode_signals={"ads": ["ad_storage"]})


def test_consent_mode_block_is_json_read_by_the_external_script() -> None:
    output = gate_html("<head><title>t</title>", GPC, CONFIG)
    opening = '<script type="application/json" id="mypharm-consent-mode">'
    content = output[output.index(opening) + len(opening) : output.index("</script>")]
    payload = json.loads(content)
    assert payload["default"] == consent_mode_defaults(GPC, CONFIG)
    assert payload["gpc"] is True
    assert payload["signals"]["ad_storage"] == ["marketing"]
    script = output.index('<script src="/_consent/static/consent-mode.js?v=')
    assert output.index(opening) < script < output.index("<title>")
    assert " defer" not in output[script : output.index("</script>", script)]


# -- URL hosts ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://WWW.Example.COM/a", "www.example.com"),
        ("//cdn.example.com/x.js", "cdn.example.com"),
        ("http://user:pw@example.com:8080/", "example.com"),
        ("https:\\\\example.com\\x", "example.com"),
        ("https:example.com/x", "example.com"),
        ("  https://ex\tam\nple.com/  ", "example.com"),
        ("https://%65xample.com/", "example.com"),
        ("https://example.com./", "example.com"),
        ("https://bücher.example/", "xn--bcher-kva.example"),
        ("/relative/path", None),
        ("relative.js", None),
        ("data:image/gif;base64,R0lGOD", None),
        ("javascript:alert(1)", None),
        ("https://", None),
    ],
)
def test_url_host_reads_urls_like_a_browser(url: str, host: str | None) -> None:
    assert url_host(url) == host


# -- through the middleware ---------------------------------------------------


@pytest.mark.parametrize("adapter", ["asgi", "wsgi"])
def test_middleware_serves_gated_pages_until_consent(adapter: str) -> None:
    app = loopback_site() if adapter == "asgi" else loopback_wsgi_site()
    # The page names its own origin in third-party URLs: make it the declared one.
    loopback = {"host": "127.0.0.1"}
    with client_for(adapter, app) as client:
        first = client.get("/", headers=loopback).text
        assert '<script type="text/plain" data-consent="marketing" data-service="loopback-ads"' in (
            first
        )
        assert 'id="mypharm-consent-banner"' in first
        assert "/_consent/static/gate.js?v=" in first
        assert decide(client, "accept_all").status_code == 303
        accepted = client.get("/", headers=loopback).text
        assert '<script src="http://127.0.0.1/third-party/tracker.js"></script>' in accepted
        assert "mypharm-gate" not in accepted
        assert "/_consent/static/gate.js" not in accepted
        assert client.get("/_consent/static/gate.js").status_code == 200
        assert client.get("/_consent/static/consent-mode.js").status_code == 200
        assert client.get("/_consent/static/gate.css").status_code == 200


def gate_afresh(page: str, state: ConsentState, gate: gating._Gate) -> str:
    """``page`` gated through ``gate`` (and what it remembers), form tokens blanked."""
    output = gating._gate(page, state.granted, state.gpc, gate, CONFIG.default_language)
    return TOKEN.sub("", output)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(FRAGMENTS | st.sampled_from(SKIM_FRAGMENTS), max_size=20), max_size=4),
    st.lists(st.sampled_from([NOTHING, ANALYTICS, EVERYTHING, GPC]), min_size=4, max_size=4),
)
def test_remembered_verdicts_give_the_output_of_a_first_reading(
    pages: list[list[str]], states: list[ConsentState]
) -> None:
    # One configuration reads a series of pages, choices alternating, as a
    # server does; each output must be what a configuration that never saw
    # a tag before makes of the page.
    shared = gating._Gate(CONFIG)
    for fragments, state in zip(pages, states, strict=False):
        page = "".join(fragments)
        assert gate_afresh(page, state, shared) == gate_afresh(page, state, gating._Gate(CONFIG))


def test_remembered_placeholders_and_head_markup_follow_language_choice_and_reading() -> None:
    # One configuration serves the same page in both languages, to several
    # choices, as text and as UTF-8 read byte for byte: each answer must be
    # what a configuration that never made a placeholder before makes.
    shared = gating._Gate(CONFIG)
    page = PAGE.replace(
        "</body>", PAGE[PAGE.index("<iframe") : PAGE.index("<noscript")] + "</body>"
    )
    for language in ("fr", "en", "fr"):
        for state in (NOTHING, GPC, ANALYTICS, EVERYTHING):
            for raw in (False, True):
                html = page.encode().decode("latin-1") if raw else page
                outputs = [
                    gating._gate(html, state.granted, state.gpc, gate, language, raw=raw)
                    for gate in (shared, gating._Gate(CONFIG))
                ]
                assert TOKEN.sub("", outputs[0]) == TOKEN.sub("", outputs[1])
    assert 0 < len(shared.placeholders) <= gating._REMEMBERED_MARKUPS
    assert 0 < len(shared.head_markups) <= gating._REMEMBERED_MARKUPS


def test_a_tag_judged_inside_a_gated_container_is_not_remembered_for_elsewhere() -> None:
    source = '<source src="https://www.google-analytics.com/a.mp4">'
    inside = f'<video data-consent="marketing">{source}</video>'
    gate = gating._Gate(CONFIG)
    # Inside the marketing video, the source inherits marketing: gated.
    assert "data-src=" in gate_afresh(inside, ANALYTICS, gate)
    # On its own it is analytics, granted: left exactly as written.
    assert gate_afresh(source, ANALYTICS, gate) == source
    assert gate_afresh(inside, ANALYTICS, gate) == gate_afresh(
        inside, ANALYTICS, gating._Gate(CONFIG)
    )


def test_verdicts_are_remembered_per_choice_and_bounded() -> None:
    gate = gating._Gate(CONFIG)
    tag = f'<img src="https://{TRACKER}/p.gif">'
    assert "data-src=" in gate_afresh(tag, NOTHING, gate)
    assert gate_afresh(tag, EVERYTHING, gate) == tag
    assert {key[1] for key in gate.verdicts} == {NOTHING.granted, EVERYTHING.granted}
    for index in range(gating._REMEMBERED_VERDICTS + 10):
        gate_afresh(f'<img src="https://{TRACKER}/{index}.gif">', NOTHING, gate)
    assert len(gate.verdicts) <= gating._REMEMBERED_VERDICTS


def test_authorities_are_judged_once_and_bounded() -> None:
    gate = gating._Gate(CONFIG)
    page = f'<img src="https://{TRACKER}/p.gif"><a href="https://cdn.example/x">x</a>'
    assert "data-src=" in gate_afresh(page, NOTHING, gate)
    assert gate.tokens[TRACKER] is True
    assert gate.tokens["cdn.example"] is False
    # Remembered, the answer is the same page after page.
    assert gate_afresh(page, NOTHING, gate) == gate_afresh(page, NOTHING, gating._Gate(CONFIG))
    for index in range(gating._REMEMBERED_TOKENS + 10):
        gate_afresh(f'<img src="https://host{index}.example/p.gif">', NOTHING, gate)
    assert len(gate.tokens) <= gating._REMEMBERED_TOKENS
    long_host = "a" * (gating._REMEMBERED_TOKEN_CHARS + 1) + ".example"
    gate_afresh(f'<img src="https://{long_host}/p.gif">', NOTHING, gate)
    assert long_host not in gate.tokens


GTM = "www.googletagmanager.com"


@pytest.mark.parametrize(
    "tag",
    [
        f'<script src="https:///{GTM}/gtag/js"></script>',
        f'<img src="https:{GTM}/p.gif">',
        f'<img src="https:/{GTM}/p.gif">',
        f'<img src="https:/\\{GTM}/p.gif">',
        f'<img src="https:\\\\{GTM}/p.gif">',
        f'<img src="\\\\{GTM}/p.gif">',
        f'<img src="/\\{GTM}/p.gif">',
        f'<img src="/\n/{GTM}/p.gif">',
        f'<img src="https:\t//{GTM}/p.gif">',
        f'<img src="&sol;&sol;{GTM}/p.gif">',
        f'<img src="https&colon;&#47;&#x2F;{GTM}/p.gif">',
        '<img DaTa-CoNsEnT="analytics" src="/p.gif">',
        '<img Data-consent="analytics" src="/p.gif">',
    ],
    ids=[
        "three-slashes",
        "no-slash",
        "one-slash",
        "slash-backslash",
        "two-backslashes",
        "protocol-relative-backslashes",
        "protocol-relative-mixed",
        "newline-between-slashes",
        "tab-after-colon",
        "encoded-slashes",
        "encoded-colon-and-slashes",
        "mixed-case-tag",
        "capital-first-letter-tag",
    ],
)
def test_every_spelling_a_browser_reads_as_a_declared_host_or_a_tag_is_gated(tag: str) -> None:
    page = f"<!doctype html><html><head></head><body><p>Produits</p>{tag}</body></html>"
    quick, full = read_both_ways(page, NOTHING, CONFIG)
    assert quick == full
    gated = quick.partition("<body>")[2]
    assert 'data-src="' in gated
    assert ' src="' not in gated
