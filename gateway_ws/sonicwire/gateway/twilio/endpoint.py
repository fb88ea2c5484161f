"""The ``/twilio`` route's HTTP side: the handshake check before a call's WebSocket opens."""

from __future__ import annotations

import logging
from http import HTTPStatus

from websockets.http11 import Request, Response

from ..config import GatewayConfig
from ..routes import text_response
from .auth import SIGNATURE_HEADER, signature_valid, signed_urls

__all__ = ["TWILIO_PATH", "check_handshake", "is_signed"]

log = logging.getLogger("sonicwire.gateway.twilio")

TWILIO_PATH = "/twilio"
"""Where Twilio's ``<Connect><Stream url="wss://HOST/twilio">`` connects."""


def is_signed(request: Request, config: GatewayConfig) -> bool:
    """Whether the handshake carries a valid ``X-Twilio-Signature`` for the configured token."""
    signature = request.headers.get(SIGNATURE_HEADER)
    if not config.twilio_auth_token or signature is None:
        return False
    urls = signed_urls(request.path, request.headers.get("Host"), config.twilio_public_url)
    return signature_valid(config.twilio_auth_token, signature, urls)


def check_handshake(request: Request, config: GatewayConfig) -> Response | None:
    """Refuse (403) a handshake whose signature is present but wrong; otherwise let it open.

    An unsigned handshake may still authenticate with an ``apiKey`` custom parameter, which
    only arrives in the ``start`` message (`call.TwilioCall` refuses the call then if neither).
    """
    if request.headers.get(SIGNATURE_HEADER) is None:
        return None
    if not config.twilio_auth_token:
        log.warning(
            "twilio: a signed stream arrived but no auth token is configured "
            "(--twilio-auth-token); it must authenticate with an apiKey parameter"
        )
        return None
    if is_signed(request, config):
        return None
    log.warning(
        "twilio: refused a stream with an invalid X-Twilio-Signature (wrong auth token, or a "
        "proxy changed the URL: set --twilio-public-url to the URL in the TwiML)"
    )
    return text_response(HTTPStatus.FORBIDDEN, "invalid X-Twilio-Signature")
