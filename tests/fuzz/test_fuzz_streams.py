"""Fuzz: arbitrary `Converse` request streams against a real loopback server.

Streams are built from the proto descriptors (any oneof member, any field values: random audio
of sizes around the chunk limit, second configs, empty requests, NaN/inf VAD settings, random
client tool schemas, unnamed enum values). Every stream must end, within a bound, with OK or a
well-formed status: a code meant for clients (never UNKNOWN or INTERNAL), a message, and a
``grpc-status-details-bin`` trailer whose `google.rpc.Status` matches the code and carries an
`ErrorInfo` with a stable reason. After each stream the server holds no conversation and no
stream slot.

What the server sent is recorded on the server side too, by wrapping the servicer's
``Converse``: when the server ends a stream while the client is still writing, grpc.aio's
*client* sometimes reports a local ``INTERNAL "Internal error from Core"`` (its failed write
wins the race against the received status; the status is lost). That is a client-library
artefact, counted and reported; the server's own status is then checked instead.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack

import grpc
from google.rpc import error_details_pb2, status_pb2
from hypothesis import given

from sonicwire.server.app import RunningServer
from sonicwire.server.backends.echo import EchoBackend
from sonicwire.server.status import ERROR_DOMAIN
from sonicwire.server.testing.server import running_server
from sonicwire.v1 import voice_service_pb2 as pb
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc
from tests.faults.streams import CORE_ARTEFACT, ServerEnd, record_server_ends

from .strategies import CASES, FUZZ_SETTINGS, request_streams

# A stream of a few requests ends in well under a second, or after the echo of at most a few
# seconds of audio, paced at real time; past this it is a hang.
CASE_TIMEOUT_S = 30.0
# The server finishes its clean-up (backend and tools closed) right after the status is sent.
CLEANUP_TIMEOUT_S = 5.0

CLIENT_CODES = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.FAILED_PRECONDITION,
    # A random resume_session_id + resume_token names no saved conversation.
    grpc.StatusCode.NOT_FOUND,
}
REASON = re.compile(r"[A-Z][A-Z0-9_]*")


async def _requests(stream: Sequence[pb.ConverseRequest]) -> AsyncIterator[pb.ConverseRequest]:
    for request in stream:
        yield request


def _error_info(metadata: grpc.aio.Metadata | None) -> tuple[status_pb2.Status, str, str]:
    """The rich status in the trailers: (Status, ErrorInfo.reason, ErrorInfo.domain)."""
    details = [v for k, v in (metadata or ()) if k == "grpc-status-details-bin"]
    assert len(details) == 1, f"no grpc-status-details-bin trailer: {metadata}"
    status = status_pb2.Status.FromString(details[0])  # type: ignore[arg-type]
    infos = []
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            infos.append(info)
    assert len(infos) == 1, f"expected one ErrorInfo, got {status}"
    return status, infos[0].reason, infos[0].domain


async def _converse(
    stub: pb_grpc.VoiceServiceStub, stream: Sequence[pb.ConverseRequest]
) -> tuple[grpc.StatusCode, str, grpc.aio.Metadata | None, list[pb.ConverseResponse]]:
    call = stub.Converse(_requests(stream))
    responses: list[pb.ConverseResponse] = []
    try:
        async for response in call:
            responses.append(response)
    except grpc.aio.AioRpcError:
        pass  # the status is checked below
    return await call.code(), await call.details() or "", await call.trailing_metadata(), responses


async def _wait_released(server: RunningServer, ends: list[ServerEnd]) -> None:
    """Poll until the handler has ended and released everything (bounded by the caller)."""
    runtime = server.runtime
    while runtime.conversations or runtime.limiter.active or not ends:  # noqa: ASYNC110
        await asyncio.sleep(0.005)


async def _check_stream(
    server: RunningServer,
    stub: pb_grpc.VoiceServiceStub,
    ends: list[ServerEnd],
    stream: list[pb.ConverseRequest],
) -> str:
    try:
        async with asyncio.timeout(CASE_TIMEOUT_S):
            code, details, trailers, responses = await _converse(stub, stream)
    except TimeoutError:
        raise AssertionError(f"stream did not end within {CASE_TIMEOUT_S} s: {stream}") from None
    try:
        async with asyncio.timeout(CLEANUP_TIMEOUT_S):
            await _wait_released(server, ends)
    except TimeoutError:
        raise AssertionError(
            f"leaked: {len(server.runtime.conversations)} conversations, "
            f"{server.runtime.limiter.active} stream slots after {code}: {stream}"
        ) from None

    (end,) = ends
    ends.clear()
    artefact = (code, details) == CORE_ARTEFACT and not trailers
    if artefact:
        # The client lost the status; judge what the server sent.
        assert end.code is not None, f"the server ended with {end} for {stream}"
        assert end.code in CLIENT_CODES, f"server sent {end} for {stream}"
        assert end.details and REASON.fullmatch(end.reason), end
        return "client lost the status (grpc.aio INTERNAL 'Internal error from Core')"
    assert end.code in (code, None if code == grpc.StatusCode.OK else code), (end, code)
    if code == grpc.StatusCode.OK:
        if stream:
            assert stream[0].WhichOneof("request") == "config"
            assert responses and responses[0].WhichOneof("response") == "session_started"
        if any(r.WhichOneof("response") == "audio" for r in responses):
            return "OK, with assistant audio"
        return "OK"
    assert code in CLIENT_CODES, f"{code.name} {details!r} for {stream}"
    assert details, "a status without a message"
    status, reason, domain = _error_info(trailers)
    assert status.code == code.value[0]
    assert status.message == details
    assert REASON.fullmatch(reason), reason
    assert domain == ERROR_DOMAIN
    if stream[0].WhichOneof("request") != "config":
        assert reason == "FIRST_MESSAGE_NOT_CONFIG"
    return f"{code.name}/{reason}"


def test_any_request_stream_ends_cleanly_with_a_well_formed_status() -> None:
    outcomes: dict[str, int] = {}
    with record_server_ends() as ends, asyncio.Runner() as runner:
        stack = AsyncExitStack()
        server = runner.run(stack.enter_async_context(running_server(backend=EchoBackend())))
        channel = runner.run(stack.enter_async_context(grpc.aio.insecure_channel(server.target)))
        stub = pb_grpc.VoiceServiceStub(channel)
        try:

            @FUZZ_SETTINGS
            @given(request_streams())
            def property_(stream: list[pb.ConverseRequest]) -> None:
                CASES["grpc request streams"] += 1
                outcome = runner.run(_check_stream(server, stub, ends, stream))
                outcomes[outcome] = outcomes.get(outcome, 0) + 1

            property_()
        finally:
            runner.run(stack.aclose())
    CASES.update({f"  outcome {k}": v for k, v in outcomes.items()})
    # The generator must reach past the first-message rule: some streams open a session.
    assert outcomes.get("OK", 0) > 0
    assert any(k.startswith("INVALID_ARGUMENT") for k in outcomes)
