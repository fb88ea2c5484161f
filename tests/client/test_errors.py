"""Mapping of gRPC statuses (with google.rpc.ErrorInfo details) to typed errors."""

from __future__ import annotations

import grpc
import pytest
from grpc import aio

from sonicwire.client import (
    CallCancelledError,
    DeadlineExceededError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    ServerError,
    SonicwireError,
    UnauthenticatedError,
    UnavailableError,
)
from sonicwire.client.errors import FailedPreconditionError, error_from_rpc, error_from_status

from .fake_server import rich_status
from .fake_stub import rpc_error


def test_invalid_argument_with_error_info_becomes_typed_error() -> None:
    error = error_from_rpc(
        rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "AUDIO_FORMAT_UNSUPPORTED", "44100 Hz")
    )
    assert isinstance(error, InvalidArgumentError)
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert error.reason == "AUDIO_FORMAT_UNSUPPORTED"
    assert error.message == "44100 Hz"
    assert error.domain == "sonicwire.dev"
    assert dict(error.metadata) == {"k": "v"}
    assert str(error) == "INVALID_ARGUMENT AUDIO_FORMAT_UNSUPPORTED: 44100 Hz"


def test_status_without_details_has_empty_reason() -> None:
    error = error_from_rpc(rpc_error(grpc.StatusCode.UNAVAILABLE, message="no route"))
    assert isinstance(error, UnavailableError)
    assert error.reason == "" and error.message == "no route"
    assert str(error) == "UNAVAILABLE: no route"


def test_reason_survives_a_rewritten_message() -> None:
    # A proxy changed the plain message: rpc_status.from_call refuses, the reason still counts.
    trailers = aio.Metadata(
        *rich_status(grpc.StatusCode.UNAUTHENTICATED, "BAD_KEY", "a").trailing_metadata
    )
    error = error_from_rpc(
        aio.AioRpcError(grpc.StatusCode.UNAUTHENTICATED, aio.Metadata(), trailers, "b")
    )
    assert isinstance(error, UnauthenticatedError)
    assert (error.reason, error.message) == ("BAD_KEY", "b")


def test_garbage_details_do_not_hide_the_status() -> None:
    trailers = aio.Metadata(("grpc-status-details-bin", b"\xff\xff not a proto"))
    error = error_from_status(grpc.StatusCode.INTERNAL, "oops", trailers)
    assert isinstance(error, ServerError) and error.reason == ""


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidArgumentError),
        (grpc.StatusCode.UNAUTHENTICATED, UnauthenticatedError),
        (grpc.StatusCode.PERMISSION_DENIED, PermissionDeniedError),
        (grpc.StatusCode.NOT_FOUND, NotFoundError),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, ResourceExhaustedError),
        (grpc.StatusCode.FAILED_PRECONDITION, FailedPreconditionError),
        (grpc.StatusCode.DEADLINE_EXCEEDED, DeadlineExceededError),
        (grpc.StatusCode.UNAVAILABLE, UnavailableError),
        (grpc.StatusCode.CANCELLED, CallCancelledError),
        (grpc.StatusCode.INTERNAL, ServerError),
        (grpc.StatusCode.UNKNOWN, ServerError),
    ],
)
def test_every_code_maps_to_one_class(code: grpc.StatusCode, cls: type[SonicwireError]) -> None:
    error = error_from_status(code, "m")
    assert type(error) is cls
    assert isinstance(error, SonicwireError) and error.code is code
