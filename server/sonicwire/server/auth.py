"""API-key authentication for the VoiceService.

Keys arrive as ``x-api-key: <key>`` or ``authorization: Bearer <key>`` metadata. The check is
written for hostile input: every credential header is looked at, more than one credential is
refused (ambiguous), oversized or undecodable values are refused, and keys are compared in
constant time on bytes with `hmac.compare_digest` against every configured key. Keys are never
logged; a key is identified in logs and limits by a short hash (`key_id`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence

from sonicwire.server.core.errors import AuthenticationError

__all__ = ["ANONYMOUS", "ApiKeyAuthenticator", "key_id", "load_keys"]

ANONYMOUS = "anonymous"
_MAX_VALUE_BYTES = 1024
_BEARER = b"bearer "


def key_id(key: bytes) -> str:
    """A non-reversible short id for a key, for logs and per-key limits."""
    return "key-" + hashlib.sha256(key).hexdigest()[:10]


def load_keys(values: Iterable[str], files: Iterable[str] = ()) -> list[bytes]:
    """Keys from flag/env values (comma-separated) and from files (one key per line, # comments)."""
    keys: list[bytes] = []
    for value in values:
        keys.extend(part.strip().encode() for part in value.split(",") if part.strip())
    for path in files:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                line = line.strip()
                if line and not line.startswith("#"):
                    keys.append(line.encode())
    return keys


def _as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")


class ApiKeyAuthenticator:
    """Checks request metadata against the configured keys; no keys means no auth."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        self._keys = [key for key in keys if key]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def authenticate(self, metadata: Iterable[tuple[str, str | bytes]] | None) -> str:
        """Return the caller's key id. Raises `AuthenticationError` (never anything else)."""
        if not self._keys:
            return ANONYMOUS
        credentials: list[bytes] = []
        for name, value in metadata or ():
            lowered = name.lower()
            if lowered not in ("x-api-key", "authorization"):
                continue
            raw = _as_bytes(value)
            if len(raw) > _MAX_VALUE_BYTES:
                raise AuthenticationError("API_KEY_INVALID", "credential header is too long")
            if lowered == "authorization":
                if raw[: len(_BEARER)].lower() != _BEARER:
                    raise AuthenticationError(
                        "API_KEY_INVALID", "authorization must be 'Bearer <api key>'"
                    )
                raw = raw[len(_BEARER) :]
            credentials.append(raw)
        if not credentials:
            raise AuthenticationError(
                "API_KEY_MISSING", "an API key is required (x-api-key or authorization: Bearer)"
            )
        if len(credentials) > 1:
            raise AuthenticationError("API_KEY_INVALID", "send exactly one API key")
        candidate = credentials[0]
        # Compare against every key, without stopping at a match, so timing reveals nothing.
        matched: bytes | None = None
        for key in self._keys:
            if hmac.compare_digest(candidate, key):
                matched = key
        if matched is None or not candidate:
            raise AuthenticationError("API_KEY_INVALID", "the API key is not valid")
        return key_id(matched)
