"""Compact signed tokens for e-mail opens, clicks and unsubscribes.

A token is ``<payload>.<signature>``, both URL-safe base64 without padding.
The payload is packed bytes, not JSON, to keep links short:

==========  =====================================================================
bytes       content
==========  =====================================================================
1           format version (high nibble) and, for clicks, the destination's
            scheme prefix that was left out (low nibble: 1 = ``https://``,
            2 = ``http://``, 0 = none)
8           recipient reference (big-endian unsigned 64-bit keyed hash)
1 + n       campaign name, UTF-8, length-prefixed
varint      click only: index of the link in the message (0-based)
rest        click only: destination URL, UTF-8, without the scheme prefix
==========  =====================================================================

The signature is HMAC-SHA256 truncated to 128 bits, made with itsdangerous
with one salt per token kind, so an open token can never be replayed as a
click or unsubscribe token. Keys rotate through the ``secret_keys`` list,
newest first: the newest signs, every listed key verifies, and a token signed
with a key that has been removed fails.

The recipient reference is a 64-bit keyed BLAKE2b hash of the normalized
address: the address itself never leaves the sender's process. Its key is
``recipient_key`` when given, else derived from the *oldest* secret key, so
that adding a new signing key keeps every reference (and every recorded
unsubscribe) valid; pin ``recipient_key`` before removing that oldest key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from itsdangerous import BadData, Signer
from itsdangerous.encoding import base64_decode, base64_encode
from itsdangerous.signer import SigningAlgorithm

from beacon.email.exceptions import InstrumentationError, TokenError
from beacon.email.urls import tracked_destination

__all__ = [
    "MAX_CAMPAIGN_BYTES",
    "MAX_TOKEN_LENGTH",
    "EmailToken",
    "EmailTokenSigner",
    "TokenKind",
    "check_campaign",
    "normalize_address",
]

TokenKind = Literal["open", "click", "unsubscribe"]

#: The longest campaign name, in UTF-8 bytes.
MAX_CAMPAIGN_BYTES = 128

#: Tokens longer than this are refused before any signature check. Every
#: token this module makes fits (the longest campaign and destination give
#: about 2,950 characters).
MAX_TOKEN_LENGTH = 3072

_VERSION = 1
_SCHEME_PREFIXES = {1: "https://", 2: "http://"}
_SIGNATURE_BYTES = 16
_SALTS: dict[TokenKind, bytes] = {
    "open": b"beacon.email.open",
    "click": b"beacon.email.click",
    "unsubscribe": b"beacon.email.unsubscribe",
}
_CAMPAIGN_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f]")


class _KeyCachingSigner(Signer):
    """A :class:`~itsdangerous.Signer` that derives each key once (keys never change here)."""

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        cache: dict[bytes | str | None, bytes] = self.__dict__.setdefault("_derived", {})
        key = cache.get(secret_key)
        if key is None:
            key = cache[secret_key] = super().derive_key(secret_key)
        return key


class _TruncatedHMAC(SigningAlgorithm):
    """HMAC-SHA256 cut to 128 bits: ample against forgery, 21 characters shorter."""

    def get_signature(self, key: bytes, value: bytes) -> bytes:
        return hmac.new(key, value, hashlib.sha256).digest()[:_SIGNATURE_BYTES]


@dataclass(frozen=True, slots=True)
class EmailToken:
    """What a verified token says.

    ``recipient`` is the recipient reference (never the address). ``url``
    (the destination, exactly as written in the message) and ``link`` (the
    0-based position of the link among the message's tracked links) are set
    for click tokens only.
    """

    kind: TokenKind
    campaign: str
    recipient: int
    url: str = ""
    link: int = 0


def normalize_address(address: str) -> str:
    """The canonical form of an e-mail address, used for its recipient reference.

    Surrounding whitespace is dropped, the text is NFC-normalized and
    lower-cased, and a non-ASCII domain takes its IDNA (``xn--``) form, so
    ``" Alice@Exämple.org"`` and ``"alice@xn--exmple-cua.org"`` give the same
    reference. Any other stable subscriber identifier works too; it is only
    lower-cased and trimmed.
    """
    text = unicodedata.normalize("NFC", address.strip()).lower()
    local, at, domain = text.rpartition("@")
    if not at or domain.isascii():
        return text
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return text
    return f"{local}@{domain}"


def _key_bytes(key: str | bytes) -> bytes:
    return key.encode("utf-8") if isinstance(key, str) else key


def check_campaign(campaign: str) -> bytes:
    """``campaign`` as UTF-8 bytes, or :class:`InstrumentationError` if it cannot be a campaign.

    A campaign name is non-empty, at most :data:`MAX_CAMPAIGN_BYTES` bytes,
    without control characters.
    """
    if not isinstance(campaign, str) or not campaign.strip():
        raise InstrumentationError("a campaign needs a non-empty name")
    if _CAMPAIGN_FORBIDDEN.search(campaign):
        raise InstrumentationError(f"campaign {campaign[:40]!r} contains control characters")
    raw = campaign.encode("utf-8")
    if len(raw) > MAX_CAMPAIGN_BYTES:
        raise InstrumentationError(
            f"campaign {campaign[:40]!r}... is over {MAX_CAMPAIGN_BYTES} bytes"
        )
    return raw


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, start: int) -> tuple[int, int]:
    value = shift = 0
    for position in range(start, min(len(data), start + 4)):
        byte = data[position]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position + 1
        shift += 7
    raise TokenError("malformed link index", reason="format")


class EmailTokenSigner:
    """Makes and verifies the tokens of e-mail links, and computes recipient references.

    ``secret_keys`` lists the signing keys newest first (the newest signs,
    all verify). ``recipient_key`` keys the recipient references; by default
    it is derived from the oldest signing key (see the module documentation
    for rotation).
    """

    def __init__(
        self, secret_keys: Sequence[str | bytes], *, recipient_key: str | bytes | None = None
    ) -> None:
        if isinstance(secret_keys, str | bytes) or not secret_keys:
            raise InstrumentationError("secret_keys must be a non-empty list of keys, newest first")
        keys = [_key_bytes(key) for key in secret_keys]
        if any(len(key) < 16 for key in keys):
            raise InstrumentationError("every secret key needs at least 16 bytes")
        if recipient_key is None:
            ref_key = hashlib.blake2b(keys[-1], digest_size=32, person=b"beacon-rcpt-key").digest()
        else:
            ref_key = _key_bytes(recipient_key)
            if len(ref_key) < 16:
                raise InstrumentationError("recipient_key needs at least 16 bytes")
        self._ref_key = ref_key[:64]
        # itsdangerous wants the keys oldest first, newest (signing) last.
        self._signers = {
            kind: _KeyCachingSigner(
                list(reversed(keys)),
                salt=salt,
                key_derivation="hmac",
                digest_method=hashlib.sha256,
                algorithm=_TruncatedHMAC(),
            )
            for kind, salt in _SALTS.items()
        }

    def recipient_ref(self, recipient: str) -> int:
        """The recipient reference of an address: a nonzero unsigned 64-bit keyed hash.

        The same address always gives the same reference under the same
        ``recipient_key``; without the key the address cannot be found from it.
        """
        if not isinstance(recipient, str) or not recipient.strip():
            raise InstrumentationError("a recipient needs a non-empty address or identifier")
        digest = hashlib.blake2b(
            normalize_address(recipient).encode("utf-8"),
            key=self._ref_key,
            digest_size=8,
            person=b"beacon-rcpt",
        ).digest()
        return int.from_bytes(digest, "big") or 1

    def _sign(self, kind: TokenKind, payload: bytes) -> str:
        return self._signers[kind].sign(base64_encode(payload)).decode("ascii")

    @staticmethod
    def _head(campaign: str, recipient: int, scheme_code: int = 0) -> bytes:
        raw = check_campaign(campaign)
        if not 0 < recipient < 1 << 64:
            raise InstrumentationError("a recipient reference is an unsigned 64-bit nonzero int")
        return (
            bytes([_VERSION << 4 | scheme_code])
            + recipient.to_bytes(8, "big")
            + bytes([len(raw)])
            + raw
        )

    def open_token(self, campaign: str, recipient: int) -> str:
        """The token of the open pixel of ``campaign`` sent to reference ``recipient``."""
        return self._sign("open", self._head(campaign, recipient))

    def unsubscribe_token(self, campaign: str, recipient: int) -> str:
        """The token of the unsubscribe link of ``campaign`` sent to reference ``recipient``."""
        return self._sign("unsubscribe", self._head(campaign, recipient))

    def click_token(self, campaign: str, recipient: int, url: str, link: int) -> str:
        """The token of the ``link``-th tracked link, leading to ``url``.

        ``url`` must be an absolute ``http``/``https`` URL (see
        :func:`~beacon.email.urls.tracked_destination`); it is stored as is.
        """
        if tracked_destination(url) != url:
            raise InstrumentationError(f"{url[:60]!r} is not a trackable http(s) destination")
        if not 0 <= link < 1 << 28:
            raise InstrumentationError("a link index is between 0 and 2**28 - 1")
        scheme_code = 0
        for code, prefix in _SCHEME_PREFIXES.items():
            if url.startswith(prefix):
                scheme_code, url = code, url[len(prefix) :]
                break
        payload = self._head(campaign, recipient, scheme_code) + _varint(link) + url.encode()
        return self._sign("click", payload)

    def verify(self, kind: TokenKind, token: str) -> EmailToken:
        """Check ``token`` as a token of ``kind`` and return what it says.

        Raises :class:`TokenError` for anything that is not a token of this
        kind signed with one of the current keys.
        """
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
            raise TokenError(f"token longer than {MAX_TOKEN_LENGTH} characters", reason="length")
        if not token.isascii():
            raise TokenError("token contains non-ASCII characters", reason="charset")
        try:
            payload = base64_decode(self._signers[kind].unsign(token))
        except BadData as exc:
            raise TokenError(f"invalid {kind} token signature", reason="signature") from exc
        return self._unpack(kind, payload)

    @staticmethod
    def _unpack(kind: TokenKind, payload: bytes) -> EmailToken:
        if len(payload) < 11 or payload[0] >> 4 != _VERSION:
            raise TokenError("unknown token format", reason="format")
        scheme_code = payload[0] & 0x0F
        recipient = int.from_bytes(payload[1:9], "big")
        end = 10 + payload[9]
        if end > len(payload) or recipient == 0:
            raise TokenError("malformed token payload", reason="format")
        try:
            campaign = payload[10:end].decode("utf-8")
            if kind != "click":
                if end != len(payload) or scheme_code:
                    raise TokenError("malformed token payload", reason="format")
                return EmailToken(kind=kind, campaign=campaign, recipient=recipient)
            link, start = _read_varint(payload, end)
            url = _SCHEME_PREFIXES.get(scheme_code, "") + payload[start:].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TokenError("token payload is not UTF-8", reason="format") from exc
        # Signed by us, so already checked when made; still never redirect off http(s).
        if not url[:8].lower().startswith(("http://", "https://")):
            raise TokenError("click token carries no http(s) destination", reason="format")
        return EmailToken(kind=kind, campaign=campaign, recipient=recipient, url=url, link=link)
