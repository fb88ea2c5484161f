"""Helpers for tests that talk to a real server on loopback with the generated stubs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from sonicwire.v1 import voice_service_pb2 as pb

FRAME_BYTES = 640  # 20 ms at 16 kHz


def config_request(**fields: object) -> pb.ConverseRequest:
    return pb.ConverseRequest(config=pb.SessionConfig(**fields))  # type: ignore[arg-type]


def audio_requests(pcm: bytes, chunk: int = FRAME_BYTES) -> list[pb.ConverseRequest]:
    return [
        pb.ConverseRequest(audio=pb.AudioInput(audio=pcm[i : i + chunk]))
        for i in range(0, len(pcm), chunk)
    ]


async def request_stream(
    requests: Iterable[pb.ConverseRequest],
) -> AsyncIterator[pb.ConverseRequest]:
    for request in requests:
        yield request


def error_reason(error: grpc.aio.AioRpcError) -> str:
    """The ErrorInfo reason from a failed call's rich status."""
    metadata = error.trailing_metadata() or ()
    for key, value in metadata:
        if key == "grpc-status-details-bin":
            from google.rpc import status_pb2

            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return info.reason
    return ""


__all__ = ["audio_requests", "config_request", "error_reason", "request_stream", "rpc_status"]
