"""HTTP side of the gateway: static page, health, and the checks made before a WebSocket
handshake is accepted (Origin allow-list, subprotocol and API key).

Kept free of connection state so each rule can be tested on its own.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from websockets.datastructures import Headers
from websockets.headers import parse_subprotocol
from websockets.http11 import Response
from websockets.typing import Subprotocol

__all__ = [
    "KEY_PREFIX",
    "PAGE_METHODS",
    "SUBPROTOCOL",
    "UPGRADE_METHODS",
    "MalformedKey",
    "StaticFiles",
    "api_key_from_offer",
    "head_response",
    "json_response",
    "method_not_allowed",
    "offered_subprotocols",
    "origin_allowed",
    "select_subprotocol",
    "text_response",
]

SUBPROTOCOL = Subprotocol("sonicwire.v1")
"""The subprotocol the gateway selects; clients offer it next to their key."""

KEY_PREFIX = "key."
"""An offered subprotocol ``key.<token>`` carries the API key (never selected or echoed)."""

_PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; media-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'none'"
)
_COMMON_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-cache"),
)
_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".html": "text/html"}


class MalformedKey(ValueError):
    """The offered subprotocols carry an unusable API key (empty, or more than one)."""


def _response(
    status: HTTPStatus, body: bytes, content_type: str, extra: Iterable[tuple[str, str]] = ()
) -> Response:
    headers = Headers(
        [("Content-Type", content_type), ("Content-Length", str(len(body)))],
    )
    for name, value in (*_COMMON_HEADERS, *extra):
        headers[name] = value
    return Response(status.value, status.phrase, headers, body)


def text_response(status: HTTPStatus, text: str) -> Response:
    """A plain-text response."""
    return _response(status, text.encode() + b"\n", "text/plain; charset=utf-8")


def json_response(status: HTTPStatus, body: Mapping[str, Any]) -> Response:
    """A JSON response."""
    return _response(status, json.dumps(body).encode(), "application/json")


# Methods per kind of path: the page and probes are read-only, WebSocket upgrades are GET.
PAGE_METHODS = ("GET", "HEAD")
UPGRADE_METHODS = ("GET",)


def method_not_allowed(allowed: Sequence[str]) -> Response:
    """405 with the ``Allow`` header (RFC 9110 section 15.5.6)."""
    return _response(
        HTTPStatus.METHOD_NOT_ALLOWED,
        f"method not allowed; use {' or '.join(allowed)}\n".encode(),
        "text/plain; charset=utf-8",
        (("Allow", ", ".join(allowed)),),
    )


def head_response(response: Response) -> Response:
    """``response`` for a HEAD request: the same status and headers (Content-Length of the GET
    body included), no body."""
    return Response(response.status_code, response.reason_phrase, response.headers, b"")


@dataclass(frozen=True, slots=True)
class _File:
    body: bytes
    content_type: str


class StaticFiles:
    """The browser page, read into memory once: only files present at start are served, so a
    request path can never reach outside the directory."""

    def __init__(self, root: str | Path) -> None:
        """Read every regular file under ``root`` (hidden files skipped).

        Raises:
            OSError: ``root`` cannot be read.
        """
        base = Path(root)
        self._files: dict[str, _File] = {}
        for path in sorted(base.rglob("*")):
            relative = path.relative_to(base)
            if not path.is_file() or any(part.startswith(".") for part in relative.parts):
                continue
            suffix = path.suffix.lower()
            kind = _TYPES.get(suffix) or mimetypes.guess_type(path.name)[0]
            kind = kind or "application/octet-stream"
            if kind.startswith("text/"):
                kind += "; charset=utf-8"
            self._files["/" + relative.as_posix()] = _File(path.read_bytes(), kind)
        if "/index.html" in self._files:
            self._files["/"] = self._files["/index.html"]

    @property
    def paths(self) -> list[str]:
        """The URL paths served."""
        return sorted(self._files)

    def response(self, path: str) -> Response | None:
        """The response for ``path``, or ``None`` when no such file exists."""
        found = self._files.get(path)
        if found is None:
            return None
        extra: list[tuple[str, str]] = []
        if found.content_type.startswith("text/html"):
            extra = [
                ("Content-Security-Policy", _PAGE_CSP),
                ("X-Frame-Options", "DENY"),
                ("Permissions-Policy", "microphone=(self)"),
            ]
        return _response(HTTPStatus.OK, found.body, found.content_type, extra)


def origin_allowed(origin: str | None, host: str | None, allowed: Sequence[str]) -> bool:
    """Whether a WebSocket handshake's ``Origin`` is acceptable.

    Args:
        origin: the ``Origin`` header; ``None`` for non-browser clients (always accepted,
            since only browsers can be tricked into cross-site requests).
        host: the ``Host`` header of the request.
        allowed: exact origins to accept (``"*"`` accepts any); empty means "same host":
            an http(s) origin whose ``host[:port]`` equals the ``Host`` header.
    """
    if origin is None:
        return True
    if "*" in allowed:
        return True
    if allowed:
        return origin in allowed
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not host:
        return False
    return parts.netloc.lower() == host.lower()


def offered_subprotocols(headers: Headers) -> list[str]:
    """The subprotocols a handshake offers, in order.

    Raises:
        websockets.exceptions.InvalidHeader: a malformed header (not tokens).
    """
    offered: list[str] = []
    for value in headers.get_all("Sec-WebSocket-Protocol"):
        offered.extend(parse_subprotocol(value))
    return offered


def api_key_from_offer(offered: Sequence[str]) -> str | None:
    """The API key in an offer like ``["sonicwire.v1", "key.<token>"]``.

    Returns:
        The key, or ``None`` when no ``key.`` entry is offered.

    Raises:
        MalformedKey: an empty key, or more than one.
    """
    keys = [item[len(KEY_PREFIX) :] for item in offered if item.startswith(KEY_PREFIX)]
    if not keys:
        return None
    if len(keys) > 1:
        raise MalformedKey("more than one key offered")
    if not keys[0]:
        raise MalformedKey("empty key")
    return keys[0]


def select_subprotocol(connection: object, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    """Select ``sonicwire.v1`` when offered; never anything else (a key is never echoed)."""
    return SUBPROTOCOL if SUBPROTOCOL in offered else None
