"""A tiny Flask (WSGI) site behind ``ConsentWSGIMiddleware``.

Run it with ``PYTHONPATH=. .venv/bin/flask --app examples.flask_site.app run``.
"""

from __future__ import annotations

import os

from flask import Flask, request
from markupsafe import escape

from mypharm_consent import Category, ConsentConfig, ConsentState
from mypharm_consent.wsgi import ConsentWSGIMiddleware

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

app = Flask(__name__)
app.wsgi_app = ConsentWSGIMiddleware(app.wsgi_app, config=CONSENT)  # type: ignore[method-assign]


def _consent() -> ConsentState:
    state: ConsentState = request.environ["mypharm_consent"]
    return state


@app.get("/")
def home() -> str:
    consent = _consent()
    marketing = "oui" if consent.allows("marketing") else "non"
    return (
        "<!doctype html><html lang='fr'><head><meta charset='utf-8'>"
        "<title>Pharmacie (Flask)</title></head><body>"
        "<h1>Pharmacie du Marché</h1>"
        f"<p>Marketing autorisé : <strong>{escape(marketing)}</strong></p>"
        "</body></html>"
    )
