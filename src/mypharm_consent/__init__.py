"""mypharm-consent: server-rendered cookie consent for ASGI and WSGI sites."""

from mypharm_consent.asgi import ConsentMiddleware
from mypharm_consent.config import NECESSARY, Category, ConsentConfig, Service
from mypharm_consent.decisions import ConsentDecision
from mypharm_consent.exceptions import ConfigurationError, ConsentError
from mypharm_consent.state import ConsentState

__all__ = [
    "NECESSARY",
    "Category",
    "ConfigurationError",
    "ConsentConfig",
    "ConsentDecision",
    "ConsentError",
    "ConsentMiddleware",
    "ConsentState",
    "Service",
]

__version__ = "0.1.0"
