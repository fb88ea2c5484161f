"""The HTTP transport for Bedrock's bidirectional stream: the SDK's CRT client, plus a trust store.

The SDK's default transport (aiohttp) cannot stream both ways, so Nova Sonic needs
``smithy_http.aio.crt.AWSCRTHTTPClient``. That class has no TLS option, so a custom CA bundle
(``AWS_CA_BUNDLE``: corporate proxies, private endpoints, the local fake endpoint) needs the
small subclass below, which builds its TLS context with the bundle as the trust store.

The native event-loop group (one CRT I/O thread) is process-wide: `make_transport` creates a
cheap transport per Bedrock stream on top of it, so closing a stream's transport closes exactly
that stream's connection.
"""

from __future__ import annotations

import threading
from typing import Any

from awscrt import io as crt_io
from smithy_http.aio.crt import AWSCRTHTTPClient, AWSCRTHTTPClientConfig, _AWSCRTEventLoop

__all__ = ["TrustStoreCRTHTTPClient", "make_transport", "shared_event_loop"]

_event_loop: _AWSCRTEventLoop | None = None
_event_loop_lock = threading.Lock()


def shared_event_loop() -> _AWSCRTEventLoop:
    """The process-wide CRT event-loop group and its bootstrap (created on first use)."""
    global _event_loop
    with _event_loop_lock:
        if _event_loop is None:
            _event_loop = _AWSCRTEventLoop()
        return _event_loop


class TrustStoreCRTHTTPClient(AWSCRTHTTPClient):
    """`AWSCRTHTTPClient` that trusts the CAs in ``ca_bundle`` (a PEM file) instead of the
    system store. Raises `FileNotFoundError` when the file does not exist."""

    def __init__(
        self,
        ca_bundle: str,
        eventloop: _AWSCRTEventLoop | None = None,
        client_config: AWSCRTHTTPClientConfig | None = None,
    ) -> None:
        super().__init__(eventloop=eventloop, client_config=client_config)
        with open(ca_bundle, "rb"):
            pass  # fail here, clearly, rather than inside the native TLS handshake
        options = crt_io.TlsContextOptions()
        options.override_default_trust_store_from_path(ca_filepath=ca_bundle)
        self._tls_ctx = crt_io.ClientTlsContext(options)
        self.ca_bundle = ca_bundle

    def __deepcopy__(self, memo: Any) -> TrustStoreCRTHTTPClient:
        # Config resolution deep-copies the transport; the base class would rebuild a plain
        # client and silently drop the trust store.
        return self


def make_transport(ca_bundle: str | None = None) -> AWSCRTHTTPClient:
    """A new CRT transport on the shared event loop, trusting ``ca_bundle`` if given."""
    loop = shared_event_loop()
    config = AWSCRTHTTPClientConfig(force_http_2=True)
    if ca_bundle:
        return TrustStoreCRTHTTPClient(ca_bundle, eventloop=loop, client_config=config)
    return AWSCRTHTTPClient(eventloop=loop, client_config=config)
