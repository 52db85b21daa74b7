"""FastAPI glue: a dependency that hands a view the visitor's consent.

FastAPI itself is not imported: the dependency only reads the state that
:class:`~mypharm_consent.ConsentMiddleware` stored on the request, so this
module works with any Starlette request and adds no requirement::

    from typing import Annotated

    from fastapi import Depends, FastAPI

    from mypharm_consent import ConsentMiddleware, ConsentState
    from mypharm_consent.fastapi import get_consent

    app = FastAPI()
    app.add_middleware(ConsentMiddleware, config=config)

    Consent = Annotated[ConsentState, Depends(get_consent)]

    @app.get("/")
    def home(consent: Consent) -> dict[str, bool]:
        return {"analytics": consent.allows("analytics")}
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from mypharm_consent.exceptions import ConfigurationError
from mypharm_consent.state import ConsentState

__all__ = ["get_consent"]


def get_consent(request: HTTPConnection) -> ConsentState:
    """The visitor's consent for this request, as set by ``ConsentMiddleware``.

    Use it as a FastAPI dependency (``Depends(get_consent)``) or call it with
    a Starlette request. It raises :class:`~mypharm_consent.ConfigurationError`
    when the middleware is not installed in front of the app, a set-up mistake
    that must not pass for "no consent".
    """
    state = getattr(request.state, "consent", None)
    if not isinstance(state, ConsentState):
        raise ConfigurationError(
            "no consent state on the request: add ConsentMiddleware to the application"
        )
    return state
