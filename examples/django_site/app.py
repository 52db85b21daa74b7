"""A single-file Django site behind ``ConsentWSGIMiddleware``.

Settings, URLs and the view live here; the consent layer wraps the WSGI
application, so it sees every response Django sends. Serve it with any WSGI
server, e.g.
``PYTHONPATH=. .venv/bin/granian --interface wsgi examples.django_site.app:application``.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.utils.html import escape

from mypharm_consent import Category, ConsentConfig, ConsentState
from mypharm_consent.wsgi import ConsentWSGIMiddleware

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "demo-only-django-secret-key-change-me"),
        ALLOWED_HOSTS=["127.0.0.1", "localhost", "testserver"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
        INSTALLED_APPS=[],
        USE_TZ=True,
    )

CONSENT = ConsentConfig(
    secret_keys=[os.environ.get("MYPHARM_SECRET_KEY", "demo-only-secret-key-change-me-please")],
    cookie_secure=False,  # plain http on localhost
    categories=[
        Category(
            "analytics",
            label={"fr": "Mesure d'audience", "en": "Analytics"},
            description={
                "fr": "Statistiques de visite anonymes.",
                "en": "Anonymous visit statistics.",
            },
        ),
        Category(
            "marketing",
            label={"fr": "Marketing", "en": "Marketing"},
            description={"fr": "Offres adaptées.", "en": "Relevant offers."},
        ),
    ],
)


def consent_of(request: HttpRequest) -> ConsentState:
    """The visitor's consent, stored in the WSGI environ by the middleware."""
    state: ConsentState = request.META["mypharm_consent"]
    return state


def home(request: HttpRequest) -> HttpResponse:
    """The home page: says whether marketing is allowed, under the banner until a choice."""
    marketing = "oui" if consent_of(request).allows("marketing") else "non"
    return HttpResponse(
        "<!doctype html><html lang='fr'><head><meta charset='utf-8'>"
        "<title>Pharmacie (Django)</title></head><body>"
        "<h1>Pharmacie du Marché</h1>"
        f"<p>Marketing autorisé : <strong>{escape(marketing)}</strong></p>"
        "</body></html>"
    )


urlpatterns = [path("", home)]

application = ConsentWSGIMiddleware(get_wsgi_application(), config=CONSENT)
