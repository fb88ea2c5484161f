"""Client-side helpers for the fault-injection tests (real gRPC streams on loopback)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from unittest import mock

import grpc
from google.rpc import error_details_pb2, status_pb2

from sonicwire.server.app import RunningServer
from sonicwire.server.servicer import VoiceServicer
from sonicwire.v1 import voice_service_pb2 as pb
from tests.server.helpers import error_reason

__all__ = [
    "CORE_ARTEFACT",
    "RAW_CONFIG",
    "Outcome",
    "ServerEnd",
    "audio",
    "eventually",
    "read_to_end",
    "read_until",
    "record_server_ends",
    "released",
    "text",
]

# Echo cancellation and noise suppression off: the front end then hands the backend the
# client's audio unchanged, frame for frame, so "nothing was lost" is a byte comparison.
RAW_CONFIG = pb.ConverseRequest(
    config=pb.SessionConfig(
        echo_cancellation=pb.EchoCancellationSettings(disabled=True),
        noise_suppression=pb.NoiseSuppressionSettings(disabled=True),
    )
)


def text(value: str) -> pb.ConverseRequest:
    return pb.ConverseRequest(text=pb.TextInput(text=value))


def audio(data: bytes) -> pb.ConverseRequest:
    return pb.ConverseRequest(audio=pb.AudioInput(audio=data))


async def read_until(
    call: grpc.aio.StreamStreamCall, kind: str, timeout_s: float = 10.0
) -> list[pb.ConverseResponse]:
    """Read responses up to and including the first of ``kind``."""
    seen: list[pb.ConverseResponse] = []
    async with asyncio.timeout(timeout_s):
        while True:
            response = await call.read()
            assert response is not grpc.aio.EOF, f"stream ended before {kind}: {seen}"
            seen.append(response)
            if response.WhichOneof("response") == kind:
                return seen


class Outcome:
    """Everything a client read until the stream ended, and how it ended."""

    def __init__(self) -> None:
        self.responses: list[pb.ConverseResponse] = []
        self.code = grpc.StatusCode.OK
        self.reason = ""
        self.details = ""

    def kinds(self) -> list[str]:
        return [str(r.WhichOneof("response")) for r in self.responses]

    def __repr__(self) -> str:
        return f"Outcome({self.code.name}, {self.reason!r}, {self.details!r}, {self.kinds()})"


async def read_to_end(call: grpc.aio.StreamStreamCall, timeout_s: float = 20.0) -> Outcome:
    """Read until the stream ends; a stream still open after ``timeout_s`` fails the test."""
    outcome = Outcome()
    try:
        async with asyncio.timeout(timeout_s):
            while (response := await call.read()) is not grpc.aio.EOF:
                outcome.responses.append(response)
    except grpc.aio.AioRpcError as error:
        outcome.code = error.code()
        outcome.reason = error_reason(error)
        outcome.details = error.details() or ""
    except TimeoutError:
        call.cancel()
        raise AssertionError(f"the stream was still open after {timeout_s} s: {outcome}") from None
    return outcome


async def eventually(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Wait until ``check()`` holds (polled), failing after ``timeout_s``."""
    try:
        async with asyncio.timeout(timeout_s):
            while not check():  # noqa: ASYNC110 - polling state owned by the server
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"still false after {timeout_s} s: {check}") from None


def released(server: RunningServer) -> bool:
    """No conversation and no stream slot is held any more."""
    return not server.runtime.conversations and server.runtime.limiter.active == 0


# --- what the server really sent ----------------------------------------------------------------

# grpc.aio's *client* reports this local status when one of its writes fails because the server
# already ended the call (grpc/grpc#36066): the server's own status is then lost to the client.
# Voice clients write all the time, so tests that end a stream from the server side while the
# client streams audio check the status the server sent, recorded on the server side.
CORE_ARTEFACT = (grpc.StatusCode.INTERNAL, "Internal error from Core")


@dataclass
class ServerEnd:
    """How one `Converse` handler ended: its exception type (None if it returned) and status."""

    exception: type[BaseException] | None
    code: grpc.StatusCode | None
    details: str | None
    reason: str


def _reason(metadata: Any) -> str:
    for key, value in metadata or ():
        if key == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return str(info.reason)
    return ""


@contextmanager
def record_server_ends() -> Iterator[list[ServerEnd]]:
    """Wrap `VoiceServicer.Converse` (for servers started inside) to record how it ended."""
    ends: list[ServerEnd] = []
    converse = VoiceServicer.Converse

    async def recording(self: VoiceServicer, requests: Any, context: Any) -> None:
        try:
            await converse(self, requests, context)
        except BaseException as error:
            ends.append(
                ServerEnd(
                    type(error),
                    context.code(),
                    context.details(),
                    _reason(context.trailing_metadata()),
                )
            )
            raise
        ends.append(ServerEnd(None, context.code(), context.details(), ""))

    with mock.patch.object(VoiceServicer, "Converse", recording):
        yield ends
