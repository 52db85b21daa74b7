"""Salted, slow password hashes (scrypt from the standard library).

A hash reads ``scrypt$N$r$p$salt$key`` (salt and key in URL-safe base64), so
the cost can be raised later while older hashes keep verifying.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

__all__ = ["MAX_PASSWORD_LENGTH", "MIN_PASSWORD_LENGTH", "hash_password", "verify_password"]

#: Shortest password accepted.
MIN_PASSWORD_LENGTH = 8
#: Longest password accepted (scrypt would accept more, but nobody types this much).
MAX_PASSWORD_LENGTH = 1024

# 2**14 iterations, 16 MiB of memory per hash: about 50 ms on a laptop core.
_N, _R, _P = 2**14, 8, 1
_KEY_LENGTH = 32
_MAX_MEMORY = 64 * 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """A new salted scrypt hash of ``password``."""
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=_KEY_LENGTH, maxmem=_MAX_MEMORY
    )
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches ``encoded``; a malformed hash never matches."""
    try:
        scheme, n, r, p, salt, key = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(key)
        computed = hashlib.scrypt(
            password.encode("utf-8"),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=_MAX_MEMORY,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed, expected)
