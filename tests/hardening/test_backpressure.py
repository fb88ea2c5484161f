"""Issue 14, items 2 and 3: a stream whose work is behind stops reading its input (HTTP/2 flow
control pushes back), loses nothing, and typed text / tool results are rate limited, and so
are audio chunks shorter than 10 ms (red-team session, 2026-12-07)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from sonicwire.server.backends.base import BackendOptions, VoiceInfo
from sonicwire.server.conversation import Budget, Conversation
from sonicwire.server.core import events as ev
from sonicwire.server.core.errors import LimitExceeded
from sonicwire.server.core.session import Session
from sonicwire.server.core.settings import SessionSettings
from sonicwire.server.dsp.pipeline import FrontEndSettings
from sonicwire.server.limits import InputLimits, InputPolicy
from sonicwire.server.testing.server import running_server
from sonicwire.v1 import voice_service_pb2 as pb
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc
from tests.faults.streams import CORE_ARTEFACT, record_server_ends
from tests.server.helpers import config_request, error_reason, request_stream

FRAME = 640  # 20 ms at 16 kHz


class InstantEchoSession:
    """Answers every audio command at once with the same audio: a backend that produces reply
    audio as fast as the client sends input (the flood of item 2)."""

    def __init__(self) -> None:
        self.events_q: asyncio.Queue[ev.BackendEvent | None] = asyncio.Queue()
        self.closed = False
        self.sent = 0

    async def send(self, command: ev.BackendCommand) -> None:
        if isinstance(command, ev.SendAudio) and not self.closed:
            self.sent += len(command.pcm)
            self.events_q.put_nowait(ev.AssistantAudio(command.pcm, 16_000))
        elif isinstance(command, ev.EndSession | ev.InputEnded) and not self.closed:
            self.events_q.put_nowait(ev.AssistantTurnEnded(ev.StopReason.END_TURN))
            if isinstance(command, ev.EndSession):
                self.events_q.put_nowait(None)

    async def events(self) -> AsyncIterator[ev.BackendEvent]:
        while (event := await self.events_q.get()) is not None:
            yield event

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            self.events_q.put_nowait(None)


class InstantEchoBackend:
    name = "instant-echo"

    def __init__(self) -> None:
        self.sessions: list[InstantEchoSession] = []

    def voices(self) -> list[VoiceInfo]:
        return [VoiceInfo("echo", "und", default=True)]

    async def open(self, options: BackendOptions) -> InstantEchoSession:
        self.sessions.append(InstantEchoSession())
        return self.sessions[-1]

    async def aclose(self) -> None:
        return None


def quiet_settings() -> SessionSettings:
    # No DSP that could change the audio: what goes in must come back out, byte for byte.
    front = FrontEndSettings(echo_cancellation=False, noise_suppression=False)
    return SessionSettings(front_end=front, barge_in=False)


async def test_input_is_paused_while_reply_audio_is_over_budget_and_nothing_is_lost() -> None:
    budget = Budget(pending_output_bytes=32_000)  # 0.5 s of reply (echo reference + output)
    backend = InstantEchoSession()
    conversation = Conversation(Session("s", quiet_settings()), backend, budget=budget)
    total = 150 * FRAME  # 3 s of audio, offered as fast as the conversation takes it
    read = 0
    worst_pending = 0

    async def inputs() -> AsyncIterator[ev.ClientEvent]:
        nonlocal read, worst_pending
        for _ in range(total // FRAME):
            worst_pending = max(worst_pending, conversation.session.pending_output_bytes)
            read += FRAME
            yield ev.AudioReceived(bytes(FRAME))

    received = 0
    reads_at_first_output = None
    async for output in conversation.outputs(inputs()):
        if isinstance(output, ev.AudioOut):
            if reads_at_first_output is None:
                reads_at_first_output = read
            received += len(output.audio)
    assert received == total  # nothing lost
    assert read == total
    # The input was never read while the unreleased reply was over budget (plus one frame's
    # reply in flight): without backpressure all 3 s would have been read at once.
    assert worst_pending <= budget.pending_output_bytes + 2 * FRAME
    assert backend.closed


async def test_client_that_does_not_read_is_paused_then_too_slow() -> None:
    budget = Budget(pending_outputs=4, stall_timeout_s=0.5)
    conversation = Conversation(Session("s", quiet_settings()), InstantEchoSession(), budget=budget)
    read = 0

    async def inputs() -> AsyncIterator[ev.ClientEvent]:
        nonlocal read
        while True:
            read += 1
            yield ev.AudioReceived(bytes(FRAME))
            await asyncio.sleep(0)

    stream = conversation.outputs(inputs())
    await anext(stream)  # then stop reading, as a client that never reads
    await asyncio.sleep(1.0)
    with pytest.raises(Exception) as caught:
        async for _ in stream:
            pass
    assert getattr(caught.value, "reason", "") == "CLIENT_TOO_SLOW"
    # Paused: a few seconds of pacing at most were read, not an unbounded flood.
    assert read < 200


async def test_runtime_closes_backend_session_when_the_stream_never_iterates() -> None:
    backend = InstantEchoBackend()
    async with running_server(backend=backend) as server:
        runtime = server.runtime
        with pytest.raises(RuntimeError):
            async with runtime.conversation(pb.SessionConfig(), "caller"):
                raise RuntimeError("send_initial_metadata failed")
    assert backend.sessions and backend.sessions[0].closed


async def write_until_refused(
    stub: pb_grpc.VoiceServiceStub, requests: list[pb.ConverseRequest], pause_s: float = 0.002
) -> tuple[grpc.StatusCode, str]:
    """Write like a flooding client (``pause_s`` between messages) while reading the replies;
    the status the server sent. A server that takes every request ends the stream OK, which
    fails the caller's ``pytest.raises`` rather than hanging."""
    call = stub.Converse()

    async def write() -> None:
        for request in requests:
            await call.write(request)
            if pause_s:
                await asyncio.sleep(pause_s)
        await call.done_writing()

    writer = asyncio.create_task(write())
    try:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for _ in call:
                pass
    finally:
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
    return caught.value.code(), error_reason(caught.value)


async def test_text_flood_is_rate_limited() -> None:
    texts = [pb.ConverseRequest(text=pb.TextInput(text="x" * 4000)) for _ in range(300)]
    with record_server_ends() as ends:
        async with running_server(backend="echo") as server:
            async with grpc.aio.insecure_channel(server.target) as channel:
                stub = pb_grpc.VoiceServiceStub(channel)
                code, reason = await write_until_refused(stub, [config_request(), *texts])
    # The flooding client's own write can race the refusal and turn the status it sees into
    # grpc.aio's local INTERNAL (grpc#36066); what the server sent is recorded server-side.
    if (code, reason) == (CORE_ARTEFACT[0], ""):
        code, reason = ends[-1].code, ends[-1].reason
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert reason == "TEXT_RATE_EXCEEDED"


async def test_tool_result_size_and_rate() -> None:
    big = pb.ConverseRequest(tool_result=pb.ToolResult(tool_call_id="c", content="x" * 70_000))
    many = [pb.ConverseRequest(tool_result=pb.ToolResult(tool_call_id="c")) for _ in range(200)]
    reasons = []
    with record_server_ends() as ends:
        async with running_server(backend="echo", max_message_bytes=1 << 20) as server:
            async with grpc.aio.insecure_channel(server.target) as channel:
                stub = pb_grpc.VoiceServiceStub(channel)
                for requests in ([config_request(), big], [config_request(), *many]):
                    code, reason = await write_until_refused(stub, requests)
                    # As above: a client-side INTERNAL (grpc#36066) is judged server-side.
                    if (code, reason) == (CORE_ARTEFACT[0], ""):
                        reason = ends[-1].reason
                    reasons.append(reason)
    assert reasons == ["TOOL_RESULT_TOO_LARGE", "TOOL_RESULT_RATE_EXCEEDED"]


async def test_tiny_audio_chunk_flood_is_rate_limited() -> None:
    """The red team's 'left' finding: 1 ms audio chunks as fast as a client can send them each
    cost the server what a 20 ms frame does, with no limit. Now past the audio rate (small
    here, so that a slow machine's client still outruns it) the stream ends
    RESOURCE_EXHAUSTED / AUDIO_RATE_EXCEEDED, over gRPC as the other rate limits do."""
    tiny = pb.ConverseRequest(audio=pb.AudioInput(audio=bytes(32)))  # 1 ms at 16 kHz
    with record_server_ends() as ends:
        async with running_server(backend="echo", audio_rate_per_s=50.0, audio_burst=100) as server:
            async with grpc.aio.insecure_channel(server.target) as channel:
                stub = pb_grpc.VoiceServiceStub(channel)
                requests = [config_request(), *[tiny] * 2000]
                code, reason = await write_until_refused(stub, requests, pause_s=0)
    if (code, reason) == (CORE_ARTEFACT[0], ""):  # grpc#36066, as above: judged server-side
        code, reason = ends[-1].code, ends[-1].reason
    assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "AUDIO_RATE_EXCEEDED")


def test_the_audio_rate_is_set_by_flag_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from sonicwire.server.config import parse_server_args

    monkeypatch.setenv("SONICWIRE_AUDIO_BURST", "7")
    config = parse_server_args(["--audio-rate", "30"])
    assert (config.audio_rate_per_s, config.audio_burst) == (30.0, 7)
    monkeypatch.delenv("SONICWIRE_AUDIO_BURST")
    defaults = parse_server_args([])
    assert (defaults.audio_rate_per_s, defaults.audio_burst) == (500.0, 4000)


def _admitted_until_refused(
    chunk_bytes: int, per_second: float, seconds: float, input_rate_hz: int = 16_000
) -> tuple[int, str]:
    """Chunks `InputPolicy`'s defaults admit from a client sending ``chunk_bytes`` of decoded
    PCM ``per_second`` times a second for ``seconds`` (simulated time), and the refusal."""
    policy = InputPolicy(InputLimits(), 0.0, input_rate_hz)
    chunk = ev.AudioReceived(bytes(chunk_bytes))
    count = int(per_second * seconds)
    for index in range(count):
        try:
            policy.check(chunk, index / per_second)
        except LimitExceeded as error:
            return index, error.reason
    return count, ""


@pytest.mark.parametrize(
    ("chunk_bytes", "per_second", "input_rate_hz"),
    [
        (640, 50, 16_000),  # 20 ms frames (the SDKs, the gateway's page)
        (320, 100, 16_000),  # 10 ms frames (WebRTC-style)
        (320, 50, 8_000),  # 20 ms of telephone audio (G.711 decoded; the Twilio edge)
        (256, 375, 48_000),  # a 128-sample audio callback at 48 kHz sent as it comes
        (640, 20_000, 16_000),  # an upload of 20 ms chunks as fast as it is read (--speed 0)
    ],
    ids=["20ms", "10ms", "8kHz-20ms", "48kHz-128-samples", "upload"],
)
def test_real_clients_never_meet_the_default_audio_rate(
    chunk_bytes: int, per_second: float, input_rate_hz: int
) -> None:
    seconds = 600.0 if per_second < 1000 else 60.0
    admitted = _admitted_until_refused(chunk_bytes, per_second, seconds, input_rate_hz)
    assert admitted == (int(per_second * seconds), "")


@pytest.mark.parametrize("held_s", [3.0, 10.0], ids=["3s", "10s"])
def test_a_resume_or_stall_resending_held_chunks_at_once_passes_the_default_audio_rate(
    held_s: float,
) -> None:
    # The 48 kHz client above after a resume (the Python SDK replays up to AutoResume.buffer_ms,
    # 10 s, one message per chunk it sent) or a network stall: its held chunks arrive at once,
    # then it goes on at 375 a second. A burst of 1,000 refused it after 1,111 chunks.
    policy = InputPolicy(InputLimits(), 0.0, 48_000)
    chunk = ev.AudioReceived(bytes(256))
    held = int(375 * held_s)
    for _ in range(held):
        policy.check(chunk, 0.0)
    for index in range(375 * 600):
        policy.check(chunk, index / 375)


def test_a_1ms_chunk_flood_meets_the_default_audio_rate() -> None:
    limits = InputLimits()
    admitted, reason = _admitted_until_refused(32, 5_000, 60.0)
    assert reason == "AUDIO_RATE_EXCEEDED"
    elapsed = admitted / 5_000
    assert admitted <= limits.audio_burst + limits.audio_rate_per_s * elapsed + 1
    # At real time (1,000 a second) it is refused too, after the burst has run out (~2 s).
    assert _admitted_until_refused(32, 1_000, 60.0)[1] == "AUDIO_RATE_EXCEEDED"


@pytest.mark.parametrize("barge_in", [True, False], ids=["barge-in", "no-barge-in"])
async def test_upload_faster_than_real_time_is_paced_and_loses_nothing(barge_in: bool) -> None:
    """Item 2 / `sonicwire talk --speed 0`: three spoken questions sent as fast as the client
    can; flow control paces the upload, every question is answered in full (none of them
    barges into the answer to the one before), and nothing is dropped."""
    from tests.conftest import ALSA_SAMPLES, read_wav_mono16

    speech, rate = read_wav_mono16(ALSA_SAMPLES / "Front_Center.wav")
    # 6 s between questions: more than the answer (~1.5 s, from ~0.8 s after the question)
    # plus the 3 s an upload may run ahead of real time while the assistant answers, with
    # room for a loaded machine answering late (the front end hears a user on this echo-free
    # line at once, so a question arriving mid-answer would rightly barge in).
    pause = bytes(6 * rate * 2)
    upload = (speech + pause) * 3
    chunk = rate // 5  # 100 ms
    config = config_request(
        input_format=pb.AudioFormat(sample_rate_hz=rate),
        barge_in=pb.BargeInSettings(disabled=not barge_in),
    )
    requests = [config] + [
        pb.ConverseRequest(audio=pb.AudioInput(audio=upload[i : i + chunk]))
        for i in range(0, len(upload), chunk)
    ]
    async with running_server(backend="echo") as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = pb_grpc.VoiceServiceStub(channel)
            turns = []
            interruptions = 0
            audio_by_turn: dict[str, int] = {}
            async for response in stub.Converse(request_stream(requests)):
                kind = response.WhichOneof("response")
                if kind == "turn_complete":
                    turns.append(response.turn_complete.stop_reason)
                elif kind == "interruption":
                    interruptions += 1
                elif kind == "audio":
                    turn = response.audio.turn_id
                    audio_by_turn[turn] = audio_by_turn.get(turn, 0) + len(response.audio.audio)
    assert interruptions == 0
    assert turns == [pb.STOP_REASON_END_TURN] * 3
    # Each answer echoes at least the spoken question.
    assert len(audio_by_turn) == 3
    spoken = len(speech) * 16_000 // rate  # the answers come at the default 16 kHz
    assert all(size >= spoken for size in audio_by_turn.values()), audio_by_turn
