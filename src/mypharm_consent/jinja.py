"""Jinja2 integration: ``{% if consent.allows("marketing") %}`` in a site's own templates.

Starlette / FastAPI (``Jinja2Templates``)::

    from mypharm_consent.jinja import consent_context, install
    templates = Jinja2Templates(directory="templates", context_processors=[consent_context])
    install(templates.env)  # optional: the ``allowed`` test

Flask (or any WSGI framework with context processors)::

    from mypharm_consent.jinja import environ_context
    app.context_processor(lambda: environ_context(flask.request.environ))

Any other :class:`jinja2.Environment`, with a function that returns the
current request's state (read from a context variable, a thread local...)::

    from mypharm_consent.jinja import install
    install(env, lambda: current_request().state.consent)

In every case templates see a ``consent`` object with ``allows(name)``,
``granted``, ``decided`` and ``gpc``; :func:`install` also adds an
``allowed`` test: ``{% if "marketing" is allowed %}``. Without the middleware (a page
rendered outside a request, a path excluded from the middleware) the visitor
counts as undecided: only ``necessary`` is allowed, so a template never
emits a third-party tag by mistake.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jinja2

from mypharm_consent.state import ConsentState

__all__ = [
    "ENVIRON_KEY",
    "ConsentProxy",
    "allowed",
    "consent_context",
    "environ_context",
    "install",
]

#: Where the WSGI middleware keeps the state in the WSGI environ.
ENVIRON_KEY = "mypharm_consent"


def _checked(state: object) -> ConsentState:
    return state if isinstance(state, ConsentState) else ConsentState.undecided()


def consent_context(request: Any) -> dict[str, ConsentState]:
    """Starlette ``Jinja2Templates`` context processor: ``{"consent": request.state.consent}``."""
    return {"consent": _checked(getattr(request.state, "consent", None))}


def environ_context(environ: Mapping[str, Any]) -> dict[str, ConsentState]:
    """Template context for a WSGI request: ``{"consent": environ["mypharm_consent"]}``."""
    return {"consent": _checked(environ.get(ENVIRON_KEY))}


class ConsentProxy:
    """Stands for the current request's :class:`ConsentState` in a shared environment.

    Each attribute access calls ``get_state`` again, so one global serves
    every request; a failing or missing getter means "undecided".
    """

    __slots__ = ("_get_state",)

    def __init__(self, get_state: Callable[[], ConsentState | None]) -> None:
        self._get_state = get_state

    @property
    def state(self) -> ConsentState:
        """The current request's state (undecided when unavailable)."""
        try:
            return _checked(self._get_state())
        except (LookupError, RuntimeError, AttributeError):
            # No request in progress (a context variable unset, a framework
            # proxy used outside a request): nothing optional is allowed.
            return ConsentState.undecided()

    def allows(self, category: str) -> bool:
        """Whether ``category`` is granted for the current request."""
        return self.state.allows(category)

    @property
    def granted(self) -> frozenset[str]:
        """The granted categories of the current request."""
        return self.state.granted

    @property
    def decided(self) -> bool:
        """Whether the current visitor has made a valid choice."""
        return self.state.decided

    @property
    def gpc(self) -> bool:
        """Whether the current request carried ``Sec-GPC: 1``."""
        return self.state.gpc


@jinja2.pass_context
def allowed(context: jinja2.runtime.Context, category: object) -> bool:
    """The ``allowed`` test: ``{% if "marketing" is allowed %}``.

    It asks the ``consent`` the template sees (context variable or global).
    """
    consent = context.get("consent")
    if isinstance(consent, ConsentState | ConsentProxy):
        return consent.allows(str(category))
    return ConsentState.undecided().allows(str(category))


def install(
    env: jinja2.Environment, get_state: Callable[[], ConsentState | None] | None = None
) -> jinja2.Environment:
    """Add the ``allowed`` test and, with ``get_state``, the ``consent`` global to ``env``.

    ``get_state`` returns the current request's state, e.g.
    ``lambda: flask.request.environ.get("mypharm_consent")``. A ``consent``
    variable passed in a template's context (by :func:`consent_context`)
    takes precedence over the global, as Jinja2 context variables do; for
    Starlette, ``install(templates.env)`` only adds the test.
    """
    env.tests["allowed"] = allowed
    if get_state is not None:
        env.globals["consent"] = ConsentProxy(get_state)
    return env
