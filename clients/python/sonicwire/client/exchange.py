"""Say something to the assistant and collect everything it answers: one whole exchange.

:func:`talk` is what ``sonicwire talk`` and ``SyncClient.talk_file`` run. It sends an optional
typed turn and optional audio (paced like a live microphone), waits for the assistant to
answer each, half-closes, and returns every event plus the reply audio.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sonicwire.v1 import voice_service_pb2 as pb

from .audio import AudioCollector, PcmAudio, silence, stream_audio
from .client import Client
from .config import session_config
from .errors import ConversationClosedError, SonicwireError
from .events import (
    Event,
    Role,
    SessionStarted,
    SpeechActivity,
    StopReason,
    Transcript,
    TurnComplete,
)
from .tools import ClientTool, ToolHandler

__all__ = ["TalkResult", "talk"]


@dataclass(frozen=True, slots=True)
class TalkResult:
    """What came back from :func:`talk`.

    Attributes:
        session: the ``SessionStarted`` event.
        events: every event, in arrival order (``session`` first).
        reply: the assistant's audio, in the session's output format.
        sent_ms: milliseconds of audio sent (trailing silence included).
    """

    session: SessionStarted
    events: tuple[Event, ...] = field(repr=False)
    reply: PcmAudio
    sent_ms: int

    @property
    def transcripts(self) -> tuple[Transcript, ...]:
        """The final transcripts of both sides, in order."""
        return tuple(e for e in self.events if isinstance(e, Transcript) and e.final)

    def text(self, role: Role = Role.ASSISTANT) -> str:
        """The final transcripts of one side, joined by spaces."""
        return " ".join(t.text for t in self.transcripts if t.role is role)


_SIGNAL_PEAK = 500  # about -36 dBFS: anything quieter is not worth waiting for an answer to


def _has_signal(pcm: bytes) -> bool:
    samples = array.array("h")
    samples.frombytes(pcm[: len(pcm) - len(pcm) % 2])
    if sys.byteorder == "big":
        samples.byteswap()
    return bool(samples) and (max(samples) > _SIGNAL_PEAK or min(samples) < -_SIGNAL_PEAK)


def _config_for(config: pb.SessionConfig | None, audio: PcmAudio | None) -> pb.SessionConfig:
    if config is None:
        return session_config(sample_rate_hz=audio.sample_rate_hz if audio else 16000)
    result = pb.SessionConfig()
    result.CopyFrom(config)
    if audio is not None:
        # The audio's own rate wins: sending it at another declared rate would garble it.
        result.input_format.encoding = pb.AUDIO_ENCODING_PCM_S16LE
        result.input_format.sample_rate_hz = audio.sample_rate_hz
        result.input_format.channels = 1
    return result


async def talk(
    client: Client,
    audio: PcmAudio | None = None,
    *,
    text: str | None = None,
    config: pb.SessionConfig | None = None,
    tools: Mapping[str, ClientTool | ToolHandler] | None = None,
    speed: float = 1.0,
    chunk_ms: int = 20,
    trailing_silence_ms: int = 1000,
    reply_timeout: float = 30.0,
    hear_timeout: float = 2.0,
    on_event: Callable[[Event], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> TalkResult:
    """Run one exchange: send ``text`` and/or ``audio``, collect the answers, hang up.

    The typed turn goes first; the audio is streamed once the assistant has answered it.
    After each input the assistant's answer (a ``TurnComplete`` other than for tool use) is
    awaited, at most ``reply_timeout`` seconds: always after text, and after audio once the
    server has reported user speech. Then the stream is half-closed (client tools can be
    answered until then) and read to its end.

    Args:
        client: the client to talk through.
        audio: microphone audio; the session's input rate is set to its rate.
        text: a typed user turn.
        config: the session configuration; defaults to ``session_config()``.
        tools: client-side tools, as for ``Client.converse``.
        speed: 1.0 streams at real time, 0 as fast as possible.
        chunk_ms: audio chunk length.
        trailing_silence_ms: silence sent after the audio so the server's voice activity
            detector sees the end of speech.
        reply_timeout: longest wait for an answer before half-closing.
        hear_timeout: after audio that is not near-silent, longest wait for the server to
            report the user's speech (when it has not yet) before concluding it heard none.
        on_event: called with every event as it arrives.
        on_progress: called with ``(sent_ms, total_ms)`` while audio is sent.

    Returns:
        The events and the reply audio.

    Raises:
        ValueError: neither ``audio`` nor ``text`` given.
        SonicwireError: the typed error the server ended the stream with.
    """
    if audio is None and text is None:
        raise ValueError("talk() needs audio, text or both")
    events: list[Event] = []
    collector = AudioCollector()
    answered = asyncio.Event()
    answered.set()
    heard = asyncio.Event()
    sent_ms = 0

    def expect_answer() -> None:
        answered.clear()

    async def wait_for_answer() -> None:
        if not answered.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(reply_timeout):
                    await answered.wait()

    async with client.converse(_config_for(config, audio), tools=tools) as conversation:

        async def send() -> None:
            nonlocal sent_ms
            if text is not None:
                expect_answer()
                await conversation.send_text(text)
                await wait_for_answer()
            if audio is not None:
                # "heard" is about this audio: the typed turn's own user transcript set it, and
                # a sender faster than the server would then half-close before the server
                # reported (and answered) the speech
                heard.clear()
                rate = audio.sample_rate_hz
                padded = PcmAudio(audio.pcm + silence(trailing_silence_ms, rate), rate)
                sent_ms = await stream_audio(
                    conversation, padded, chunk_ms=chunk_ms, speed=speed, on_progress=on_progress
                )
                if _has_signal(audio.pcm) and not heard.is_set():
                    # The server may lag behind audio sent faster than real time: give it a
                    # moment to report the user's speech before deciding nobody spoke.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(hear_timeout):
                            await heard.wait()
                await wait_for_answer()
            await conversation.end_input()

        async def send_guarded() -> None:
            try:
                await send()
            except SonicwireError:
                # The stream ended under us (ConversationClosedError) or with an error status
                # that the reading side raises with the same detail.
                pass
            except BaseException:
                await conversation.aclose()  # unblock the reader, then report the real cause
                raise

        sender = asyncio.create_task(send_guarded(), name="sonicwire-talk-sender")
        try:
            async for event in conversation:
                events.append(event)
                collector.feed(event)
                match event:
                    case SpeechActivity(started=True) | Transcript(role=Role.USER):
                        expect_answer()
                        heard.set()
                    case TurnComplete(stop_reason=reason) if reason is not StopReason.TOOL_USE:
                        answered.set()
                    case _:
                        pass
                if on_event is not None:
                    on_event(event)
        finally:
            if not sender.done():
                sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConversationClosedError):
                await sender
        session = conversation.session
    return TalkResult(
        session=session, events=tuple(events), reply=collector.audio(), sent_ms=sent_ms
    )
