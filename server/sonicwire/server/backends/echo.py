"""The `echo` backend: answers each finished user utterance by playing it back.

It exercises the whole stream (VAD endpointing, pacing, barge-in, transcripts, turn ends)
without any model, and it is what the benchmarks use to measure the server's own cost.
Typed text is answered with a transcript only (there is no speech to echo).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from sonicwire.server.backends.base import BackendOptions, VoiceInfo
from sonicwire.server.core import events as ev
from sonicwire.server.core.utterance import UtteranceCollector
from sonicwire.server.dsp.frames import SAMPLE_RATE

__all__ = ["EchoBackend", "EchoSession"]

# Audio is handed to the core in chunks of this many milliseconds, as a streaming TTS would.
_CHUNK_MS = 100


class EchoSession:
    def __init__(self, options: BackendOptions) -> None:
        self._collector = UtteranceCollector(sample_rate=SAMPLE_RATE, pad_ms=options.speech_pad_ms)
        self._events: asyncio.Queue[ev.BackendEvent | None] = asyncio.Queue()
        self._replies = 0
        self._closed = False

    async def send(self, command: ev.BackendCommand) -> None:
        if self._closed:
            return
        if type(command) is ev.SendAudio:  # every 20 ms frame: before the match below
            collector = self._collector
            collector.push_audio(command.pcm)
            if collector.finished:
                self._drain_utterances()
            return
        match command:
            case ev.SendAudio(pcm):
                self._collector.push_audio(pcm)
            case ev.UserSpeechStarted(offset):
                self._collector.speech_started(offset)
            case ev.UserSpeechStopped(offset):
                self._collector.speech_stopped(offset)
                # Stopping speech may need the trailing pad first; finished utterances come
                # out of the collector on a later SendAudio too.
            case ev.SendText(text):
                self._reply_text(text)
            case ev.InputEnded():
                self._collector.flush()
            case ev.SendToolResult() | ev.CancelResponse():
                pass  # nothing is generated incrementally, so there is nothing to cancel
            case ev.EndSession():
                self._collector.flush()
                self._drain_utterances()
                self._closed = True
                self._events.put_nowait(None)  # end of events
                return
        self._drain_utterances()

    def _drain_utterances(self) -> None:
        for utterance in self._collector.take():
            self._replies += 1
            self._events.put_nowait(ev.UserTranscript(f"[utterance {self._replies}]", True))
            step = SAMPLE_RATE * 2 * _CHUNK_MS // 1000
            for start in range(0, len(utterance), step):
                self._events.put_nowait(
                    ev.AssistantAudio(utterance[start : start + step], SAMPLE_RATE)
                )
            self._events.put_nowait(ev.AssistantText(f"(echo of utterance {self._replies})", True))
            self._events.put_nowait(ev.AssistantTurnEnded(ev.StopReason.END_TURN))

    def _reply_text(self, text: str) -> None:
        self._events.put_nowait(ev.AssistantText(f"You said: {text}", True))
        self._events.put_nowait(ev.AssistantTurnEnded(ev.StopReason.END_TURN))

    async def events(self) -> AsyncIterator[ev.BackendEvent]:
        while True:
            item = await self._events.get()
            if item is None:
                return
            yield item

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._events.put_nowait(None)  # end of events


class EchoBackend:
    name = "echo"

    def voices(self) -> list[VoiceInfo]:
        return [VoiceInfo("echo", "und", default=True)]

    async def open(self, options: BackendOptions) -> EchoSession:
        return EchoSession(options)

    async def aclose(self) -> None:
        return None
