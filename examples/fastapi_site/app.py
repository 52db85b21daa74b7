"""A tiny FastAPI site behind ``ConsentMiddleware``.

Views receive the visitor's consent through the ``get_consent`` dependency.
Run it with ``PYTHONPATH=. .venv/bin/uvicorn examples.fastapi_site.app:app``.
"""

from __future__ import annotations

import os
from typing import Annotated

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse
from markupsafe import escape

from mypharm_consent import Category, ConsentConfig, ConsentMiddleware, ConsentState
from mypharm_consent.fastapi import get_consent

CONSENT = ConsentConfig(
    secret_keys=[os.environ.get("MYPHARM_SECRET_KEY", "demo-only-secret-key-change-me-please")],
    cookie_secure=False,  # plain http on localhost
    privacy_policy_url="/confidentialite",
    categories=[
        Category(
            "analytics",
            label={"fr": "Mesure d'audience", "en": "Analytics"},
            description={
                "fr": "Statistiques de visite anonymes.",
                "en": "Anonymous visit statistics.",
            },
            cookies=("_ga", "_ga_*"),
        ),
        Category(
            "marketing",
            label={"fr": "Marketing", "en": "Marketing"},
            description={"fr": "Offres adaptées.", "en": "Relevant offers."},
        ),
    ],
)

#: What a view declares to receive the visitor's consent.
Consent = Annotated[ConsentState, Depends(get_consent)]

app = FastAPI(title="Pharmacie du Marché")
app.add_middleware(ConsentMiddleware, config=CONSENT)


@app.get("/", response_class=HTMLResponse)
def home(consent: Consent) -> str:
    """The home page: says whether marketing is allowed, under the banner until a choice."""
    marketing = "oui" if consent.allows("marketing") else "non"
    return (
        "<!doctype html><html lang='fr'><head><meta charset='utf-8'>"
        "<title>Pharmacie (FastAPI)</title></head><body>"
        "<h1>Pharmacie du Marché</h1>"
        f"<p>Marketing autorisé : <strong>{escape(marketing)}</strong></p>"
        "</body></html>"
    )


@app.get("/api/consent")
def consent_summary(consent: Consent) -> dict[str, object]:
    """The visitor's consent as JSON, for a single-page front end."""
    return {"decided": consent.decided, "granted": sorted(consent.granted)}
