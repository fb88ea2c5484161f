"""The Sonicwire WebSocket gateway: a browser page and a WebSocket shim over ``Converse``.

Modules: ``protocol`` (the JSON wire format, pure: re-exports ``inbound`` parsing, ``outbound``
rendering and ``errors``, the close codes and reasons), ``state`` (message-order rules, pure),
``limits`` (rate limiting, pure), ``config`` (flags and ``SONICWIRE_GATEWAY_*`` variables),
``upstream`` (the gRPC side, through the client SDK), ``outbox`` (bounded sending),
``connection`` (one socket), ``routes`` (HTTP, Origin and key checks), ``app`` (``Gateway``),
``cli`` (``sonicwire gateway``), ``up`` (``sonicwire up``). The page is in ``static/``.
"""

from .app import Gateway, run_gateway
from .config import GatewayConfig

__all__ = ["Gateway", "GatewayConfig", "run_gateway"]
