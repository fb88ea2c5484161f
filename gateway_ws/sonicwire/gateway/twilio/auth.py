"""Who may open a call: Twilio's request signature, with no I/O.

Twilio signs the WebSocket handshake like a webhook: ``X-Twilio-Signature`` is the base64
HMAC-SHA1, keyed with the account's auth token, of the URL it connected to (the ``url`` of the
TwiML ``<Stream>``, query included; a GET carries no form parameters). Behind a proxy or tunnel
the gateway sees another host than Twilio used, so the public base URL can be configured. Like
Twilio's own validators, the URL is also tried with and without the scheme's default port.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlsplit, urlunsplit

__all__ = ["SIGNATURE_HEADER", "expected_signature", "signature_valid", "signed_urls"]

SIGNATURE_HEADER = "X-Twilio-Signature"
_DEFAULT_PORTS = {"wss": 443, "https": 443, "ws": 80, "http": 80}


def expected_signature(auth_token: str, url: str) -> str:
    """The signature Twilio sends for a WebSocket connection to ``url``."""
    digest = hmac.new(auth_token.encode(), url.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def signed_urls(request_path: str, host: str | None, public_base: str) -> list[str]:
    """The URLs Twilio may have signed for a request to ``request_path`` (path and query).

    Args:
        request_path: the handshake's request target, e.g. ``/twilio?x=1``.
        host: the ``Host`` header.
        public_base: configured ``scheme://host[:port]`` Twilio connects to; empty to use
            ``wss://`` (Twilio only connects over TLS, so a proxy terminates it if the gateway
            does not) and the ``Host`` header.
    """
    if public_base:
        base = urlsplit(public_base.rstrip("/"))
        scheme, netloc, prefix = base.scheme, base.netloc, base.path
    else:
        scheme, netloc, prefix = "wss", host or "", ""
    target = urlsplit(request_path)
    path = prefix + target.path
    urls = [urlunsplit((scheme, netloc, path, target.query, ""))]
    hostname, _, port = netloc.rpartition(":") if ":" in netloc else (netloc, "", "")
    default = _DEFAULT_PORTS.get(scheme)
    if port and default is not None and port == str(default):
        urls.append(urlunsplit((scheme, hostname, path, target.query, "")))
    elif not port and default is not None:
        urls.append(urlunsplit((scheme, f"{netloc}:{default}", path, target.query, "")))
    return urls


def signature_valid(auth_token: str, signature: str | None, urls: list[str]) -> bool:
    """Whether ``signature`` matches any of ``urls`` (constant-time comparison)."""
    if not auth_token or not signature:
        return False
    matches = [
        hmac.compare_digest(expected_signature(auth_token, url), signature.strip()) for url in urls
    ]
    return any(matches)
