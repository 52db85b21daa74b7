"""The two ASGI apps compared by ``bench_gating.py``: a Starlette site, bare and with consent.

Served by ``uvicorn benchmarks.gating_apps:bare`` / ``:consent``, and for
the floors of what the consent layer costs: ``:passthrough`` (the site behind
a middleware that only calls the next app: what any pure ASGI middleware
costs at the least), ``:sniffing`` (behind one that reads every response's
type: what any middleware rewriting pages costs at the least) and
``:padded`` (bare, with ``/tagged`` and ``/first-party`` as long as the
consent layer makes them: what the added bytes cost alone). All answer the
same routes:

* ``/tagged``: a 30 KB product page with the usual third-party tags
  (Google Analytics, Meta pixel, a YouTube embed, social links);
* ``/tagged-unique``: the same page with a counter in a comment, so that no
  two answers are alike (nothing can be remembered between requests);
* ``/tagged-personal``: the same page as rendered for one visitor: a new form
  token in a ``<meta>`` of its head, the visitor's name in its header and a
  counter in its footer (three changes, each in text or a value gating
  copies as it is: spliced into the page gated before);
* ``/tagged-nonce``: the same page with a new CSP nonce on each of its
  scripts (in the tags gating reads: gated in full every time);
* ``/first-party``: a 30 KB product page without any third-party tag;
* ``/first-party-unique``: the same with a counter in a comment, as a page
  holding a per-request form token is;
* ``/api/products.json``: a JSON document (not HTML: passed through).
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mypharm_consent import Category, ConsentConfig, ConsentMiddleware

__all__ = [
    "ADDED_BYTES",
    "FIRST_PARTY",
    "PRODUCTS",
    "TAGGED",
    "PassThrough",
    "Sniffing",
    "bare",
    "consent",
    "padded",
    "passthrough",
    "sniffing",
]

_HEAD = """<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Douleurs et fièvre – Pharmacie du Marché</title>
<link rel="stylesheet" href="/static/site.css">
<link rel="icon" href="/static/favicon.png">
{third_party_head}
<script src="/static/site.js" defer></script>
</head>
<body>
<header class="site-header"><a class="logo" href="/">Pharmacie du Marché</a>
<nav aria-label="Rayons"><ul>
<li><a href="/rayons/douleurs">Douleurs et fièvre</a></li>
<li><a href="/rayons/rhume">Rhume et grippe</a></li>
<li><a href="/rayons/digestion">Digestion</a></li>
<li><a href="/rayons/bebe">Bébé et maman</a></li>
<li><a href="/rayons/beaute">Beauté</a></li>
</ul></nav></header>
<main>
<h1>Douleurs et fièvre</h1>
<p class="intro">Demandez conseil à votre pharmacien : il vous oriente vers le traitement adapté.</p>
"""  # noqa: E501

_GA = """<script async src="https://www.googletagmanager.com/gtag/js?id=G-BENCH01"></script>
<script data-consent="analytics" src="/static/gtag-config.js"></script>
<script data-consent="marketing" src="https://connect.facebook.net/fr_FR/fbevents.js"></script>"""

_PRODUCT = """<article class="product" data-sku="{sku}">
<a href="/produits/{sku}" class="product-link"><img src="/images/{sku}.webp" alt="Produit {sku}" width="160" height="160" loading="lazy"></a>
<h2 class="product-name"><a href="/produits/{sku}">Paracétamol {mg} mg, boîte de {count} comprimés</a></h2>
<p class="product-meta">Médicament – Lire attentivement la notice. <span class="price">{price} €</span></p>
<form method="post" action="/panier"><input type="hidden" name="sku" value="{sku}"><button type="submit" class="add">Ajouter au panier</button></form>
</article>
"""  # noqa: E501

_VIDEO = """<section class="advice"><h2>Bien prendre son traitement</h2>
<iframe src="https://www.youtube-nocookie.com/embed/bench123" width="560" height="315" title="Conseils du pharmacien" allowfullscreen></iframe>
</section>
"""  # noqa: E501

_FOOT = """</main>
<footer><p>Pharmacie du Marché, 12 place du Marché, 69000 Lyon.</p>
{social}
<p><a href="/mentions-legales">Mentions légales</a> · <a href="/confidentialite">Confidentialité</a></p>
</footer>
</body>
</html>
"""  # noqa: E501

_SOCIAL = """<p class="social"><a href="https://www.youtube.com/@pharmaciedumarche">YouTube</a> ·
<a href="https://www.facebook.com/pharmaciedumarche">Facebook</a></p>"""


def _page(third_party: bool, size: int = 30_000) -> str:
    head = _HEAD.format(third_party_head=_GA if third_party else "")
    foot = _FOOT.format(social=_SOCIAL if third_party else "")
    products: list[str] = []
    index = 0
    while len(head) + len(foot) + len(_VIDEO) + sum(map(len, products)) < size:
        index += 1
        products.append(
            _PRODUCT.format(
                sku=f"{3400930000000 + index}",
                mg=500 if index % 2 else 1000,
                count=8 * (1 + index % 3),
                price=f"{1 + index % 5},{index % 100:02d}",
            )
        )
        if index == 12:
            products.append(_VIDEO if third_party else "")
    return head + "".join(products) + foot


#: The 30 KB page with third-party tags, and its first-party twin.
TAGGED = _page(third_party=True)
FIRST_PARTY = _page(third_party=False)
PRODUCTS = json.dumps(
    [{"sku": 3400930000000 + i, "name": f"Produit {i}", "price": i % 17} for i in range(200)]
).encode()

_TEXT = {"fr": "Texte", "en": "Text"}
CONFIG = ConsentConfig(
    secret_keys=["a-benchmark-secret-key-of-some-length"],
    cookie_secure=False,
    consent_mode=True,
    categories=[
        Category(
            "analytics",
            label={"fr": "Mesure d'audience", "en": "Analytics"},
            description=_TEXT,
            services=("google-analytics",),
        ),
        Category(
            "marketing",
            label={"fr": "Marketing", "en": "Marketing"},
            description=_TEXT,
            services=("meta-pixel", "youtube"),
        ),
    ],
)


async def _tagged(request: Request) -> Response:
    return HTMLResponse(TAGGED)


_counter = itertools.count()


async def _tagged_unique(request: Request) -> Response:
    return HTMLResponse(TAGGED.replace("</footer>", f"<!-- {next(_counter)} --></footer>"))


_NAMES = ("Camille", "Dominique", "Jean-Baptiste", "Zoé", "Maxime")


async def _tagged_personal(request: Request) -> Response:
    count = next(_counter)
    token = secrets.token_urlsafe(24)
    page = (
        TAGGED.replace(
            '<meta charset="utf-8">',
            f'<meta charset="utf-8">\n<meta name="csrf-token" content="{token}">',
            1,
        )
        .replace("</a>\n<nav", f"</a> <span>Bonjour {_NAMES[count % 5]}</span>\n<nav", 1)
        .replace("</footer>", f"<!-- {count} --></footer>")
    )
    return HTMLResponse(page)


async def _tagged_nonce(request: Request) -> Response:
    return HTMLResponse(TAGGED.replace("<script ", f'<script nonce="{secrets.token_urlsafe(16)}" '))


async def _first_party(request: Request) -> Response:
    return HTMLResponse(FIRST_PARTY)


async def _first_party_unique(request: Request) -> Response:
    return HTMLResponse(FIRST_PARTY.replace("</footer>", f"<!-- {next(_counter)} --></footer>"))


async def _products(request: Request) -> Response:
    return Response(PRODUCTS, media_type="application/json")


#: What the consent layer adds to ``/tagged`` for a first visit (banner, Consent
#: Mode's defaults and scripts in the head, the video's placeholder), in bytes.
ADDED_BYTES = 5_757


def _padded(page: str) -> Callable[[Request], Awaitable[Response]]:
    """A route answering ``page`` with a comment of :data:`ADDED_BYTES` before ``</body>``."""
    # A str, as the other routes answer: Starlette encodes it on every request.
    body = page.replace("</body>", "<!--" + "x" * (ADDED_BYTES - 7) + "--></body>")

    async def padded(request: Request) -> Response:
        return HTMLResponse(body)

    return padded


def _site(*, padded: bool = False) -> Starlette:
    return Starlette(
        routes=[
            Route("/tagged", _padded(TAGGED) if padded else _tagged),
            Route("/tagged-unique", _tagged_unique),
            Route("/tagged-personal", _tagged_personal),
            Route("/tagged-nonce", _tagged_nonce),
            Route("/first-party", _padded(FIRST_PARTY) if padded else _first_party),
            Route("/first-party-unique", _first_party_unique),
            Route("/api/products.json", _products),
        ]
    )


#: The site without the consent layer (the baseline).
bare = _site()
#: The same site behind :class:`~mypharm_consent.ConsentMiddleware`.
consent = _site()
consent.add_middleware(ConsentMiddleware, config=CONFIG)


class PassThrough:
    """A pure ASGI middleware that does nothing but call the next app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


#: The same site behind :class:`PassThrough`: the floor of any middleware's cost.
passthrough = _site()
passthrough.add_middleware(PassThrough)


class Sniffing:
    """A pure ASGI middleware that reads every response's type and hands it on.

    The least any middleware that rewrites HTML pages does: wrap ``send`` and
    read the ``content-type`` of ``http.response.start`` (here, to do nothing
    with it).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.html_responses = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sniffing_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                for name, value in message.get("headers", ()):
                    if name.lower() == b"content-type" and value.startswith(b"text/html"):
                        self.html_responses += 1
            await send(message)

        await self.app(scope, receive, sniffing_send)


#: The same site behind :class:`Sniffing`: the floor of a middleware that must
#: tell HTML responses from the others.
sniffing = _site()
sniffing.add_middleware(Sniffing)


#: The bare site whose ``/tagged`` and ``/first-party`` pages are
#: :data:`ADDED_BYTES` longer: what the bytes the consent layer adds cost alone.
padded = _site(padded=True)
