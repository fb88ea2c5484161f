"""The conversation driver's per-message paths (issue 21, the gap to the floor): the input task
sends the commands its message produced itself, the timer is a loop callback, and the audio
conversions take a fast path. Each keeps the behaviour it replaced: order, limits, bytes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from sonicwire.server import convert
from sonicwire.server.conversation import Budget, Conversation
from sonicwire.server.core import events as ev
from sonicwire.server.core.errors import SonicwireError
from sonicwire.server.core.session import Session
from sonicwire.server.core.settings import SessionSettings
from sonicwire.server.dsp.pipeline import FrontEndSettings
from sonicwire.v1 import voice_service_pb2 as pb

FRAME = 640  # 20 ms at 16 kHz


def quiet_settings() -> SessionSettings:
    # No DSP that could change the audio: the frames the backend gets are the client's.
    front = FrontEndSettings(echo_cancellation=False, noise_suppression=False)
    return SessionSettings(front_end=front, barge_in=False)


class RecordingSession:
    """A backend session that records every command; ``send`` suspends ``delay_s`` for audio
    (a backend whose writer is behind), or forever once ``stuck`` is set."""

    def __init__(self, delay_s: float = 0.0, *, stuck_after: int | None = None) -> None:
        self.commands: list[ev.BackendCommand] = []
        self.delay_s = delay_s
        self.stuck_after = stuck_after
        self.events_q: asyncio.Queue[ev.BackendEvent | None] = asyncio.Queue()
        self.closed = False

    async def send(self, command: ev.BackendCommand) -> None:
        self.commands.append(command)
        audio = sum(isinstance(c, ev.SendAudio) for c in self.commands)
        if isinstance(command, ev.SendAudio):
            if self.stuck_after is not None and audio > self.stuck_after:
                await asyncio.Event().wait()  # never returns
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            # A backend event arrives while the input is being sent: its flush queues no
            # command of its own, but runs the sender path concurrently with the input's.
            if audio % 10 == 0:
                self.events_q.put_nowait(ev.UserTranscript("x", False))
        if isinstance(command, ev.EndSession):
            self.events_q.put_nowait(None)

    async def events(self) -> AsyncIterator[ev.BackendEvent]:
        while (event := await self.events_q.get()) is not None:
            yield event

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            self.events_q.put_nowait(None)


def frames(count: int) -> list[bytes]:
    # Distinct frames (a counter in the first two bytes), so the order is checkable.
    return [i.to_bytes(2, "little") + bytes(FRAME - 2) for i in range(count)]


async def paced(chunks: list[bytes], pause_s: float = 0.0) -> AsyncIterator[ev.ClientEvent]:
    for chunk in chunks:
        yield ev.AudioReceived(chunk)
        await asyncio.sleep(pause_s)


@pytest.mark.parametrize("delay_s", [0.0, 0.002])
async def test_commands_reach_the_backend_once_each_in_order(delay_s: float) -> None:
    backend = RecordingSession(delay_s)
    conversation = Conversation(Session("s", quiet_settings()), backend)
    sent = frames(120)
    async for _ in conversation.outputs(paced(sent)):
        pass
    audio = [c.pcm for c in backend.commands if isinstance(c, ev.SendAudio)]
    assert audio == sent  # every frame once, in the client's order
    kinds = [type(c).__name__ for c in backend.commands if not isinstance(c, ev.SendAudio)]
    assert kinds[-2:] == ["InputEnded", "EndSession"]  # after all the audio, EndSession last
    assert backend.closed


async def test_a_burst_that_never_suspends_still_lets_the_backend_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 300 frames offered with no await in between and a backend that never suspends: the
    # input task yields to the loop now and then, so backend events are handled meanwhile.
    backend = RecordingSession()
    conversation = Conversation(Session("s", quiet_settings()), backend)
    handled_during_input: list[int] = []
    original = Session.receive_backend

    def receive_backend(self: Session, event: ev.BackendEvent, now: float) -> None:
        sent = sum(isinstance(c, ev.SendAudio) for c in backend.commands)
        handled_during_input.append(sent)
        original(self, event, now)

    # on the class: a compiled Session (sonicwire.server.native) refuses instance attributes;
    # the driver calls it from Python, so it finds this one
    monkeypatch.setattr(Session, "receive_backend", receive_backend)
    async for _ in conversation.outputs(paced(frames(300))):
        pass
    assert handled_during_input, "no backend event was handled"
    assert min(handled_during_input) < 300  # some were handled before the input ended


async def test_a_backend_that_stops_taking_input_ends_the_stream_as_backend_timeout() -> None:
    # The input task waits in send; that time is neither the client's silence (no
    # IDLE_TIMEOUT) nor endless: after the stall timeout the stream ends, blaming the backend.
    backend = RecordingSession(stuck_after=5)
    conversation = Conversation(
        Session("s", quiet_settings()),
        backend,
        idle_timeout_s=0.2,
        budget=Budget(stall_timeout_s=0.6),
    )
    started = asyncio.get_running_loop().time()
    with pytest.raises(SonicwireError) as caught:
        async for _ in conversation.outputs(paced(frames(50), 0.01)):
            pass
    assert caught.value.reason == "BACKEND_TIMEOUT"
    assert asyncio.get_running_loop().time() - started >= 0.6
    assert backend.closed


async def test_idle_timeout_still_fires_from_the_timer() -> None:
    async def silent_then_nothing() -> AsyncIterator[ev.ClientEvent]:
        yield ev.AudioReceived(bytes(FRAME))
        await asyncio.Event().wait()

    conversation = Conversation(
        Session("s", quiet_settings()), RecordingSession(), idle_timeout_s=0.2
    )
    with pytest.raises(SonicwireError) as caught:
        async for _ in conversation.outputs(silent_then_nothing()):
            pass
    assert caught.value.reason == "IDLE_TIMEOUT"


@pytest.mark.parametrize(
    "output",
    [
        ev.AudioOut(b"\x01\x02" * 320, "turn-1", 1234),
        ev.AudioOut(b"", "", 0),  # empty fields: the oneof is still set
    ],
)
def test_audio_response_fast_path_is_the_same_message(output: ev.AudioOut) -> None:
    expected = pb.ConverseResponse(
        audio=pb.AudioOutput(audio=output.audio, turn_id=output.turn_id, offset_ms=output.offset_ms)
    )
    response = convert.response_from_output(output)
    assert response == expected
    assert response.WhichOneof("response") == "audio"
    assert response.SerializeToString() == expected.SerializeToString()


def test_audio_request_fast_path_and_the_other_kinds() -> None:
    audio = convert.event_from_request(pb.ConverseRequest(audio=pb.AudioInput(audio=b"ab")))
    assert audio == ev.AudioReceived(b"ab")
    text = convert.event_from_request(pb.ConverseRequest(text=pb.TextInput(text="hi")))
    assert text == ev.TextReceived("hi")
    with pytest.raises(SonicwireError) as caught:
        convert.event_from_request(pb.ConverseRequest())
    assert caught.value.reason == "REQUEST_EMPTY"
