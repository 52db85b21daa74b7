"""Pages and configurations shared by the gating tests (unit and browser)."""

from __future__ import annotations

import itertools
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from mypharm_consent import Category, ConsentConfig, ConsentMiddleware, ConsentState, Service
from mypharm_consent.wsgi import ConsentWSGIMiddleware

TEXT = {"fr": "Texte", "en": "Text"}
SECRET = "a-long-enough-secret-key-for-gating-tests"
#: A made-up advertising partner: its hosts never resolve, so nothing leaves the machine.
ADPARTNER = Service(
    "adpartner", label="AdPartner", hosts=("*.adpartner.example",), cookies=("ap_*",)
)
TRACKER = "x.adpartner.example"


def gating_categories(*extra: Service) -> list[Category]:
    """Analytics (Google Analytics) and marketing (Meta, YouTube, AdPartner...)."""
    return [
        Category(
            "analytics",
            label={"fr": "Mesure d'audience", "en": "Analytics"},
            description=TEXT,
            cookies=("stats_*",),
            services=("google-analytics",),
        ),
        Category(
            "marketing",
            label={"fr": "Marketing", "en": "Marketing"},
            description=TEXT,
            services=("meta-pixel", "youtube", ADPARTNER, *extra),
        ),
    ]


def gating_config(**overrides: object) -> ConsentConfig:
    """The configuration of the gating tests (Consent Mode on unless overridden)."""
    settings: dict[str, object] = {
        "secret_keys": [SECRET],
        "categories": gating_categories(),
        "consent_mode": True,
    }
    settings.update(overrides)
    return ConsentConfig(**settings)  # type: ignore[arg-type]


NOTHING = ConsentState.undecided()
ANALYTICS = ConsentState(decided=True, granted=frozenset({"necessary", "analytics"}))
EVERYTHING = ConsentState(decided=True, granted=frozenset({"necessary", "analytics", "marketing"}))
GPC = ConsentState.undecided(gpc=True)
GPC_THEN_ACCEPTED = ConsentState(
    decided=True, granted=frozenset({"necessary", "analytics", "marketing"}), gpc=True
)

#: (id, page, URLs that must end up gated, text that must stay as written).
ROBUSTNESS: list[tuple[str, str, list[str], list[str]]] = [
    (
        "comment",
        f'<!-- <script src="https://{TRACKER}/c.js"></script> --><p>a</p>',
        [],
        [f'<!-- <script src="https://{TRACKER}/c.js"></script> -->'],
    ),
    (
        "empty-comments",
        f'<!--><img src="https://{TRACKER}/e1.gif"><!---><img src="https://{TRACKER}/e2.gif">',
        [f"https://{TRACKER}/e1.gif", f"https://{TRACKER}/e2.gif"],
        [],
    ),
    (
        "comment-bang-end",
        f'<!-- a --!><img src="https://{TRACKER}/bang.gif">',
        [f"https://{TRACKER}/bang.gif"],
        [],
    ),
    (
        "script-strings",
        "<script>var a = \"<iframe src='https://" + TRACKER + "/f'></iframe>\";"
        ' var b = "</scr" + "ipt>";</script>'
        f'<img src="https://{TRACKER}/after.gif">',
        [f"https://{TRACKER}/after.gif"],
        ["<script>var a = \"<iframe src='https://" + TRACKER + "/f'></iframe>\";"],
    ),
    (
        "script-document-write",
        # Never called: the browser judge must see markup, not a script's doing.
        "<script>function later() { document.write('<img src=\"https://"
        + TRACKER
        + "/dw.gif\">') }</script>",
        [],
        [f'<img src="https://{TRACKER}/dw.gif">'],
    ),
    (
        "script-escaped-states",
        "<script><!-- document.write(\"<script src='https://" + TRACKER + "/dw.js'></script>\");"
        f' --></script><img src="https://{TRACKER}/real.gif">',
        [f"https://{TRACKER}/real.gif"],
        ["<script src='https://" + TRACKER + "/dw.js'></script>\");"],
    ),
    (
        "script-self-closing",
        f'<script src="https://{TRACKER}/sc.js"/><img src="https://{TRACKER}/swallowed.gif">'
        "</script>",
        [f"https://{TRACKER}/sc.js"],
        [f'<img src="https://{TRACKER}/swallowed.gif"></script>'],
    ),
    (
        "style",
        f'<style>/* <img src="https://{TRACKER}/s.gif"> */ a:after {{content: "</p>"}}</style>',
        [],
        [f'<img src="https://{TRACKER}/s.gif">'],
    ),
    (
        "textarea-and-title",
        f'<title><script src="https://{TRACKER}/t.js"></script></title>'
        f'<textarea><img src="https://{TRACKER}/ta.gif"></TEXTAREA >'
        f'<img src="https://{TRACKER}/out.gif">',
        [f"https://{TRACKER}/out.gif"],
        [
            f'<title><script src="https://{TRACKER}/t.js"></script></title>',
            f'<textarea><img src="https://{TRACKER}/ta.gif"></TEXTAREA >',
        ],
    ),
    (
        "uppercase",
        f'<IMG SRC="HTTPS://{TRACKER.upper()}/U.GIF"><SCRIPT SRC="//{TRACKER}/u.js"></SCRIPT>',
        [f"HTTPS://{TRACKER.upper()}/U.GIF", f"//{TRACKER}/u.js"],
        [],
    ),
    (
        "unquoted-and-single-quoted",
        f"<img src=https://{TRACKER}/q.gif alt=x><script src='//{TRACKER}/s.js'></script>",
        [f"https://{TRACKER}/q.gif", f"//{TRACKER}/s.js"],
        [],
    ),
    (
        "valueless-and-duplicate-attributes",
        f'<img ismap src="https://{TRACKER}/d1.gif" src="https://{TRACKER}/d2.gif" hidden>',
        [f"https://{TRACKER}/d1.gif", f"https://{TRACKER}/d2.gif"],
        ["<img"],
    ),
    (
        "tag-like-attribute-value",
        f"<div title=\"<script src='https://{TRACKER}/fake.js'>\">x</div>"
        f"<img src=https://{TRACKER}/z.gif>",
        [f"https://{TRACKER}/z.gif"],
        [f"<div title=\"<script src='https://{TRACKER}/fake.js'>\">x</div>"],
    ),
    (
        "unterminated-quote",
        f'<img alt="oops><img src="https://{TRACKER}/v.gif"><p>after</p>',
        [],
        [f'<img alt="oops><img src="https://{TRACKER}/v.gif">'],
    ),
    (
        "unterminated-tag-at-end",
        f'<p>ok</p><img src="https://{TRACKER}/eof.gif"',
        [],
        [f'<img src="https://{TRACKER}/eof.gif"'],
    ),
    (
        "cdata",
        f'<![CDATA[ <script src="https://{TRACKER}/c.js"></script> ]]>'
        f'<![CDATA[ a > b ]]><img src="https://{TRACKER}/cd.gif">',
        [f"https://{TRACKER}/cd.gif"],
        [f'<![CDATA[ <script src="https://{TRACKER}/c.js">'],
    ),
    (
        "bogus-comments",
        f'<?php echo "<img src=x>" ?></ p><img src="https://{TRACKER}/pi.gif">',
        [f"https://{TRACKER}/pi.gif"],
        ['<?php echo "<img src=x>" ?></ p>'],
    ),
    (
        "look-alike-tag-names",
        f'<scripts src="https://{TRACKER}/no.js"></scripts><imgx src="https://{TRACKER}/n.gif">',
        [],
        [f'<scripts src="https://{TRACKER}/no.js"></scripts>'],
    ),
    (
        "noscript-pixel",
        f'<noscript><img src="https://{TRACKER}/ns.gif" height="1" width="1"></noscript>',
        [f"https://{TRACKER}/ns.gif"],
        ['height="1" width="1"></noscript>'],
    ),
    (
        "iframe-content-is-text",
        f'<iframe src="https://{TRACKER}/f"><img src="https://{TRACKER}/inside.gif"></iframe>',
        [f"https://{TRACKER}/f"],
        [f'<img src="https://{TRACKER}/inside.gif"></iframe>'],
    ),
    (
        "plaintext",
        f'<plaintext><img src="https://{TRACKER}/p.gif">',
        [],
        [f'<plaintext><img src="https://{TRACKER}/p.gif">'],
    ),
    (
        "srcset-and-picture",
        f'<img srcset="/a.png 1x, https://{TRACKER}/2.gif 2x">'
        f'<picture><source srcset="https://{TRACKER}/s.webp"><img src="/local.png"></picture>',
        [f"/a.png 1x, https://{TRACKER}/2.gif 2x", f"https://{TRACKER}/s.webp"],
        ['<img src="/local.png">'],
    ),
    (
        "tagged-container",
        '<video data-consent="marketing" poster="/p.jpg"><source src="/v.mp4">'
        '<track src="/v.vtt"></video><source src="/free.mp4">',
        ["/p.jpg", "/v.mp4", "/v.vtt"],
        ['<source src="/free.mp4">'],
    ),
    (
        "obfuscated-hosts",
        f'<img src="https://x&#46;adpartner&#x2E;example/ent.gif">'
        f'<img src="https://%78.adpartner.example/pct.gif">'
        f'<img src="https:\\\\{TRACKER}\\b.gif">'
        f'<img src=" https://x.adpart\nner.example/nl.gif">'
        f'<img src="https://user@{TRACKER}:8443/port.gif">'
        f'<img src="https://{TRACKER}./dot.gif">',
        [
            "https://x&#46;adpartner&#x2E;example/ent.gif",
            "https://%78.adpartner.example/pct.gif",
            f"https:\\\\{TRACKER}\\b.gif",
            " https://x.adpart\nner.example/nl.gif",
            f"https://user@{TRACKER}:8443/port.gif",
            f"https://{TRACKER}./dot.gif",
        ],
        [],
    ),
    (
        "backslashes-in-a-document",
        f'<html><head></head><body><img src="https:\\\\{TRACKER}\\d.gif"></body></html>',
        [f"https:\\\\{TRACKER}\\d.gif"],
        ["</head><body>"],
    ),
    (
        "look-alike-hosts",
        '<img src="https://adpartner.example.evil.test/a.gif">'
        '<img src="https://notadpartner.example/b.gif">'
        '<img src="/adpartner.example/c.gif">',
        [],
        [
            '<img src="https://adpartner.example.evil.test/a.gif">',
            '<img src="https://notadpartner.example/b.gif">',
            '<img src="/adpartner.example/c.gif">',
        ],
    ),
    (
        "attribute-name-collisions",
        f'<script data-type="x" type="module" src="https://{TRACKER}/m.js"></script>'
        f'<img src="/spinner.gif" data-src="https://{TRACKER}/lazy.gif" class="lazy">'
        f'<img data-src="/mine.gif" src="https://{TRACKER}/c.gif">',
        [f"https://{TRACKER}/m.js", f"https://{TRACKER}/c.gif"],
        ['data-type="x"', f'data-src="https://{TRACKER}/lazy.gif"'],
    ),
    (
        "odd-attribute-names",
        f'<img <src="x" src="https://{TRACKER}/lt.gif"><img alt=\'"\' src=https://{TRACKER}/sq.gif>',
        [f"https://{TRACKER}/lt.gif", f"https://{TRACKER}/sq.gif"],
        ['<src="x"'],
    ),
    (
        "malformed-nesting",
        f'<p><b><i>x</b></i><table><tr><td><img src="https://{TRACKER}/t.gif"></table></p></div>',
        [f"https://{TRACKER}/t.gif"],
        ["<p><b><i>x</b></i><table><tr><td>", "</table></p></div>"],
    ),
]


#: The live server stands in for a third-party host: it is declared as one.
LOOPBACK = Service("loopback-ads", label="Loopback Ads", hosts=("127.0.0.1",), cookies=("lb_*",))

TRACKER_JS = """
window.trackerRuns = (window.trackerRuns || 0) + 1;
window.order = (window.order || []).concat("external");
document.cookie = "lb_id=1; path=/";
"""

NONCE = "bm9uY2UtZm9yLXRlc3Rz"
#: No inline script or style without the nonce, nothing from elsewhere.
STRICT_CSP = (
    f"default-src 'none'; script-src 'self' 'nonce-{NONCE}'; style-src 'self';"
    " img-src 'self'; frame-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'"
)

PAGE = """<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<title>Pharmacie</title>
<script src="{origin}/third-party/tracker.js"></script>
<script data-consent="marketing">window.order = (window.order || []).concat("inline"); window.inlineRuns = (window.inlineRuns || 0) + 1;</script>
<script data-consent="analytics" src="/third-party/stats.js"></script>
</head>
<body>
<h1>Produits</h1>
<img id="pixel" src="{origin}/third-party/pixel.gif" alt="">
<p><iframe id="video" src="{origin}/third-party/embed" width="320" height="180" title="Vidéo"></iframe></p>
</body>
</html>
"""  # noqa: E501

GIF = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)


def loopback_config(**overrides: Any) -> ConsentConfig:
    """The configuration of the loopback sites: the live server is a marketing host."""
    return gating_config(
        cookie_secure=False,
        categories=[
            Category(
                "analytics",
                label={"fr": "Mesure d'audience", "en": "Analytics"},
                description=TEXT,
            ),
            Category(
                "marketing",
                label={"fr": "Marketing", "en": "Marketing"},
                description=TEXT,
                services=(LOOPBACK, ADPARTNER),
            ),
        ],
        **overrides,
    )


def loopback_wsgi_site(**overrides: Any) -> ConsentWSGIMiddleware:
    """The loopback page as a plain WSGI app behind :class:`ConsentWSGIMiddleware`."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = PAGE.format(origin=f"http://{environ['HTTP_HOST']}").encode()
        start_response("200 OK", [("content-type", "text/html; charset=utf-8")])
        return [body]

    return ConsentWSGIMiddleware(app, config=loopback_config(**overrides))


def loopback_site(**overrides: Any) -> Starlette:
    """A page whose third-party tags are served by the site itself, behind the middleware."""
    config = loopback_config(**overrides)

    async def page(request: Request) -> Response:
        origin = f"{request.url.scheme}://{request.url.netloc}"
        return HTMLResponse(PAGE.format(origin=origin))

    async def strict(request: Request) -> Response:
        # The same page under a strict policy: its inline script needs the nonce.
        origin = f"{request.url.scheme}://{request.url.netloc}"
        html = PAGE.format(origin=origin).replace(
            '<script data-consent="marketing">',
            f'<script nonce="{NONCE}" data-consent="marketing">',
        )
        return HTMLResponse(html, headers={"content-security-policy": STRICT_CSP})

    visits = itertools.count(1)

    async def personal(request: Request) -> Response:
        # Different on every request, as a page under a strict policy is: a new
        # nonce (in the policy and on the inline script) and a counter.
        origin = f"{request.url.scheme}://{request.url.netloc}"
        visit = next(visits)
        nonce = f"{visit:04d}{NONCE}"
        html = (
            PAGE.format(origin=origin)
            .replace(
                '<script data-consent="marketing">',
                f'<script nonce="{nonce}" data-consent="marketing">',
            )
            .replace("<body>", f'<body>\n<p id="visit">Visite {visit}</p>', 1)
        )
        return HTMLResponse(
            html, headers={"content-security-policy": STRICT_CSP.replace(NONCE, nonce)}
        )

    async def tracker(request: Request) -> Response:
        return Response(TRACKER_JS, media_type="text/javascript")

    async def stats(request: Request) -> Response:
        return Response(
            "window.statsRuns = (window.statsRuns || 0) + 1;", media_type="text/javascript"
        )

    async def pixel(request: Request) -> Response:
        return Response(GIF, media_type="image/gif")

    async def embed(request: Request) -> Response:
        return HTMLResponse("<!doctype html><p id=inside>Vidéo</p>")

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/strict", strict),
            Route("/personal", personal),
            Route("/third-party/tracker.js", tracker),
            Route("/third-party/stats.js", stats),
            Route("/third-party/pixel.gif", pixel),
            Route("/third-party/embed", embed),
        ]
    )
    app.add_middleware(ConsentMiddleware, config=config)
    return app
