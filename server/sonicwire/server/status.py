"""`SonicwireError` -> gRPC status, in exactly one place.

Every fatal error leaves the server as a gRPC status whose ``grpc-status-details-bin`` trailer
holds a ``google.rpc.Status`` with one ``google.rpc.ErrorInfo`` (domain `ERROR_DOMAIN`, the
error's stable reason), which grpcio-status and every gRPC client library can parse.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from sonicwire.server.core.errors import ErrorCode, SonicwireError

__all__ = [
    "ERROR_DOMAIN",
    "MAX_STATUS_MESSAGE_CHARS",
    "bounded_message",
    "grpc_code",
    "status_trailers",
]

ERROR_DOMAIN = "sonicwire.dev"
# The message travels twice in metadata (grpc-message and the Status detail) and the client's
# metadata limit is 16 KiB by default: a longer one arrives as RESOURCE_EXHAUSTED "Stream
# removed" instead of the reason. Messages are cut well below that.
MAX_STATUS_MESSAGE_CHARS = 1024

_GRPC_CODES: dict[ErrorCode, grpc.StatusCode] = {
    ErrorCode.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    ErrorCode.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    ErrorCode.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorCode.DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
    ErrorCode.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorCode.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorCode.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorCode.ABORTED: grpc.StatusCode.ABORTED,
    ErrorCode.INTERNAL: grpc.StatusCode.INTERNAL,
}


def grpc_code(error: SonicwireError) -> grpc.StatusCode:
    return _GRPC_CODES[error.code]


def bounded_message(error: SonicwireError) -> str:
    """``error.message``, cut to `MAX_STATUS_MESSAGE_CHARS`."""
    message = error.message
    if len(message) <= MAX_STATUS_MESSAGE_CHARS:
        return message
    return message[: MAX_STATUS_MESSAGE_CHARS - 3] + "..."


def status_trailers(error: SonicwireError) -> tuple[tuple[str, bytes], ...]:
    """Trailing metadata carrying the rich status for ``error``."""
    code = grpc_code(error)
    info = error_details_pb2.ErrorInfo(
        reason=error.reason, domain=ERROR_DOMAIN, metadata=dict(error.metadata)
    )
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(
        code=getattr(code_pb2, code.name), message=bounded_message(error), details=[detail]
    )
    return (("grpc-status-details-bin", status.SerializeToString()),)
