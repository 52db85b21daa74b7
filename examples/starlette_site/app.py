"""The demo site served by ``make demo``: a small pharmacy behind the consent middleware.

Run it with ``make demo`` and open http://127.0.0.1:8000. The app is a plain
list of routes plus the middleware:

- ``/b``: the anonymous first-party beacon (page views, e-mail tracking), its
  store taken from ``BEACON_CLICKHOUSE_URL`` or the embedded engine under
  ``.data/clickhouse``;
- ``/stats``: the statistics dashboard, over clearly labelled demo data made on
  the first run, with a demo account printed at start-up;
- every consent decision leaves a receipt, shown on the preferences page.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from beacon import Beacon
from beacon.dashboard import create_dashboard
from beacon.demo import seed_demo
from beacon.receipts import ErasurePurger, ReceiptRecorder, ReceiptStore
from mypharm_consent import Category, ConsentConfig, ConsentMiddleware

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")

# A real site reads its keys from its secrets store; newest key first.
SECRET_KEYS = [os.environ.get("MYPHARM_SECRET_KEY", "demo-only-secret-key-change-me-please")]

tracker = Beacon(
    secret_keys=SECRET_KEYS,
    site="pharmacie-du-marche.example",
    base_url=os.environ.get("BEACON_BASE_URL", "http://127.0.0.1:8000/b"),
)
receipts = ReceiptStore(tracker.store)

CONSENT = ConsentConfig(
    secret_keys=SECRET_KEYS,
    on_decision=ReceiptRecorder(tracker),
    receipts=receipts,
    policy_revision=1,
    cookie_secure=False,  # the demo is served over plain http on localhost
    privacy_policy_url="/confidentialite",
    exclude_paths=("/assets",),
    categories=[
        Category(
            "preferences",
            label={"fr": "Préférences", "en": "Preferences"},
            description={
                "fr": "Mémorisent vos réglages (pharmacie favorite, affichage) "
                "d'une visite à l'autre.",
                "en": "Remember your settings (favourite pharmacy, display) between visits.",
            },
            cookies=("pref_*",),
        ),
        Category(
            "analytics",
            label={"fr": "Mesure d'audience", "en": "Analytics"},
            description={
                "fr": "Nous aident à comprendre quelles pages sont consultées, de façon anonyme, "
                "pour améliorer le site.",
                "en": "Help us understand, anonymously, which pages are read, to improve the site.",
            },
            cookies=("_ga", "_ga_*"),
        ),
        Category(
            "marketing",
            label={"fr": "Marketing", "en": "Marketing"},
            description={
                "fr": "Permettent de vous proposer des offres adaptées et de mesurer l'efficacité "
                "de nos campagnes.",
                "en": "Let us show you relevant offers and measure how well our campaigns work.",
            },
            cookies=("_fbp",),
            services=("youtube",),
        ),
    ],
)

PRODUCTS = [
    ("Paracétamol 500 mg", "Douleurs et fièvre, boîte de 16 comprimés.", "2,18 €"),
    ("Sérum physiologique", "30 unidoses de 5 ml pour le nez et les yeux.", "3,90 €"),
    ("Crème solaire SPF 50+", "Peaux sensibles, très haute protection, 50 ml.", "14,50 €"),
    ("Vitamine C 1000 mg", "20 comprimés effervescents, goût orange.", "5,20 €"),
    ("Pansements assortis", "Boîte de 40, résistants à l'eau.", "4,75 €"),
    ("Thermomètre flexible", "Mesure en 10 secondes, embout souple.", "8,90 €"),
]


def _page(request: Request, name: str, **context: object) -> Response:
    consent = request.state.consent
    return templates.TemplateResponse(
        request, name, {"consent": consent, "path": request.url.path, **context}
    )


async def home(request: Request) -> Response:
    return _page(request, "home.html", featured=PRODUCTS[:3])


async def products(request: Request) -> Response:
    return _page(request, "products.html", products=PRODUCTS)


async def contact(request: Request) -> Response:
    sent = False
    if request.method == "POST":
        # The demo keeps nothing: it only shows what a real form would confirm.
        await request.body()
        sent = True
    return _page(request, "contact.html", sent=sent)


async def privacy(request: Request) -> Response:
    return _page(request, "privacy.html")


routes: list[BaseRoute] = [
    Route("/", home),
    Route("/produits", products),
    Route("/contact", contact, methods=["GET", "POST"]),
    Route("/confidentialite", privacy),
    Mount("/assets", StaticFiles(directory=HERE / "assets"), name="assets"),
    Mount("/b", app=tracker.app),
    Mount(
        "/stats",
        app=create_dashboard(
            tracker.store, secret_keys=SECRET_KEYS, secure_cookies=False, demo=True
        ),
    ),
]

middleware = [Middleware(ConsentMiddleware, config=CONSENT)]


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with tracker.lifespan():
        account = await anyio.to_thread.run_sync(seed_demo, tracker.store)
        print(
            "Statistics (demo data): http://127.0.0.1:"
            f"{os.environ.get('PORT', '8000')}/stats  login {account.name!r}"
            f" password {account.password!r}",
            flush=True,
        )
        with ErasurePurger(receipts).running():
            yield


app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
