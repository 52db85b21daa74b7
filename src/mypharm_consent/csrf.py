"""Protection of the decide endpoint against cross-site form posts.

Two independent checks, both required:

* the browser's own word: a ``Sec-Fetch-Site`` other than ``same-origin`` or
  ``none``, or an ``Origin`` that is not this host, is refused;
* a signed form token: every form the package renders carries one, signed
  with the site's keys under a dedicated salt and valid for a week, so a
  form built elsewhere cannot be posted even by a client that sends neither
  header. The token is bound to no visitor (there is no cookie to bind it
  to), so one token is shared by every form rendered within
  :data:`TOKEN_REUSE_SECONDS`: signing one per page would cost more than the
  rest of the banner.

No cookie is involved: the package sets none before the visitor's choice.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from itsdangerous import BadData, TimestampSigner

from mypharm_consent.config import ConsentConfig
from mypharm_consent.cookie import Clock

__all__ = ["CSRF_SALT", "TOKEN_MAX_AGE", "TOKEN_REUSE_SECONDS", "CsrfGuard", "CsrfRefusal"]

#: Dedicated salt: a consent cookie is never a valid form token and vice versa.
CSRF_SALT = "mypharm-consent.form.v1"
#: How long a rendered form stays usable (a tab left open over a weekend).
TOKEN_MAX_AGE = 7 * 24 * 3600
#: How long one signed token is handed out before a fresh one is signed.
TOKEN_REUSE_SECONDS = 60

_ALLOWED_FETCH_SITES = frozenset({"same-origin", "none"})


@dataclass(frozen=True)
class CsrfRefusal:
    """Why a post was refused (``reason`` is for logs and tests, not visitors)."""

    reason: str
    #: Whether a fresh form would help (an expired token) or not (cross-site).
    stale_form: bool = False


class _Signer(TimestampSigner):
    def __init__(self, secret_keys: list[str], *, clock: Clock) -> None:
        super().__init__(secret_keys, salt=CSRF_SALT, digest_method=hashlib.sha256)
        self._clock = clock
        # A token is signed for every banner shown: derive each key once.
        self._derived = {key: TimestampSigner.derive_key(self, key) for key in self.secret_keys}

    def get_timestamp(self) -> int:
        return int(self._clock())

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        key = self.secret_keys[-1] if secret_key is None else secret_key
        derived = self._derived.get(key if isinstance(key, bytes) else key.encode())
        return derived if derived is not None else super().derive_key(secret_key)


class CsrfGuard:
    """Issues form tokens and checks posts to the decide endpoint."""

    def __init__(self, config: ConsentConfig, *, clock: Clock = time.time) -> None:
        self._clock = clock
        self._signer = _Signer(list(reversed(config.secret_keys)), clock=clock)
        #: The token being handed out and when it was signed.
        self._issued: tuple[float, str] | None = None

    def token(self) -> str:
        """A signed token to put in a rendered form.

        The same token is returned for :data:`TOKEN_REUSE_SECONDS` after it
        was signed (so a form is usable for at least ``TOKEN_MAX_AGE`` minus
        that), then a fresh one; a clock that goes back also gets a fresh one.
        """
        now = self._clock()
        issued = self._issued
        if issued is not None and 0 <= now - issued[0] < TOKEN_REUSE_SECONDS:
            return issued[1]
        token = self._signer.sign(secrets.token_urlsafe(9)).decode("ascii")
        # One tuple, swapped whole: concurrent callers see the old or the new pair.
        self._issued = (now, token)
        return token

    def check(
        self, headers: Mapping[str, str], host: str | None, token: str | None
    ) -> CsrfRefusal | None:
        """``None`` when the post may proceed, otherwise why it may not.

        ``headers`` maps lower-case header names to values; ``host`` is the
        ``Host`` the request was addressed to.
        """
        fetch_site = headers.get("sec-fetch-site")
        if fetch_site is not None and fetch_site.strip().lower() not in _ALLOWED_FETCH_SITES:
            return CsrfRefusal(f"Sec-Fetch-Site is {fetch_site!r}")
        origin = headers.get("origin")
        if origin is not None:
            refusal = _check_origin(origin, host)
            if refusal is not None:
                return refusal
        if not token:
            return CsrfRefusal("the form token is missing", stale_form=True)
        if len(token) > 256 or not token.isascii():
            return CsrfRefusal("the form token is malformed")
        try:
            self._signer.unsign(token, max_age=TOKEN_MAX_AGE)
        except BadData:
            return CsrfRefusal("the form token is invalid or expired", stale_form=True)
        return None


def _check_origin(origin: str, host: str | None) -> CsrfRefusal | None:
    origin = origin.strip()
    if origin == "null":
        return CsrfRefusal("Origin is 'null'")
    try:
        parts = urlsplit(origin)
        origin_host = parts.netloc.lower()
    except ValueError:
        return CsrfRefusal("Origin is malformed")
    if parts.scheme not in ("http", "https") or not origin_host:
        return CsrfRefusal("Origin is malformed")
    if host is None or _strip_default_port(origin_host, parts.scheme) != _strip_default_port(
        host.strip().lower(), parts.scheme
    ):
        return CsrfRefusal(f"Origin {origin!r} is not this site")
    return None


def _strip_default_port(netloc: str, scheme: str) -> str:
    default = ":443" if scheme == "https" else ":80"
    return netloc[: -len(default)] if netloc.endswith(default) else netloc
