"""Drive a local-engine session the way the server does, for tests and the benchmark.

The pieces, each usable alone:

- `speak`: test speech in voices other than the engine's own (espeak-ng variants, and flite's
  voices when Debian's ``flite`` is installed), as 16 kHz mono s16le.
- `MicStream` / `mic_commands`: what the session core sends for a microphone stream that
  carries the speech: 20 ms `SendAudio` frames (silence and a low noise floor included) and
  the VAD's `UserSpeechStarted` / `UserSpeechStopped` markers at the times a VAD with
  ``start_secs`` / ``stop_secs`` would send them. The stop marker's offset is where the
  speech ended; it arrives ``stop_secs`` later on the stream, as the front end's VAD does it.
- `ToolBox`: the real built-in tools (``get_date_time``, ``track_order`` on a SQLite store)
  and any extra (plugin) tools, called directly instead of through the server's tool runner.
- `run_turn`: feeds the commands into a session, answers its tool requests from a `ToolBox`,
  and collects one assistant turn, timing end of speech -> first assistant audio.
- `load_reply_recognizer` and `says_time`: check what the assistant's audio says. The
  recogniser's model knows the assistant's reply sentences, so "one oh five" is not heard as
  "won all five" (the general model got 32 of 120 spoken times wrong that way; this one none),
  while a wrong minute or order number is still a different word.
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import subprocess
import time
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from sonicwire.server.backends.base import BackendSession, ToolDescription
from sonicwire.server.backends.local.stt import SpeechRecognizer, Transcript
from sonicwire.server.core import events as ev

__all__ = [
    "ESPEAK_TEST_VOICES",
    "FLITE_TEST_VOICES",
    "MicCommands",
    "MicStream",
    "ToolBox",
    "TurnResult",
    "hears_time",
    "load_reply_recognizer",
    "mic_commands",
    "run_turn",
    "says_time",
    "speak",
    "test_voices",
]

SAMPLE_RATE = 16_000
_FRAME = SAMPLE_RATE * 20 // 1000  # samples per 20 ms frame

#: espeak-ng voices used as test speakers (none of them is the engine's piper voice).
ESPEAK_TEST_VOICES = ("espeak:en-us", "espeak:en-gb", "espeak:en-us+m3", "espeak:en-us+f2")
#: flite's voices (Debian ``flite``), used when it is installed.
FLITE_TEST_VOICES = ("flite:slt", "flite:rms", "flite:awb", "flite:kal16")


def test_voices() -> list[str]:
    """The test speakers available here: espeak-ng's always, flite's when installed."""
    voices = list(ESPEAK_TEST_VOICES) if shutil.which("espeak-ng") else []
    if shutil.which("flite"):
        voices += FLITE_TEST_VOICES
    return voices


def load_reply_recognizer(processes: int = 1) -> SpeechRecognizer:
    """A recogniser for the assistant's replies (see the module docstring); close it after."""
    from sonicwire.server.backends.local.phrases import reply_sentences

    return SpeechRecognizer.load("domain", sentences=reply_sentences(), processes=processes)


def says_time(transcript: str, *moments: datetime) -> bool:
    """Whether ``transcript`` (lower-case words) tells the local time of one of ``moments``
    as the assistant says it: "three forty seven", "nine oh five", "twelve o'clock"."""
    from sonicwire.server.backends.local.dialogue import say_time

    for moment in moments:
        spoken = say_time(moment.time())[1].lower().replace("-", " ")
        if spoken.rsplit(" ", 1)[0] in transcript:  # without AM/PM
            return True
    return False


def hears_time(transcript: Transcript, before: datetime, after: datetime) -> bool:
    """Whether a recognised reply tells the local time between ``before`` and ``after``, as a
    listener checking an answer would accept it: any of the recogniser's readings
    (`Transcript.alternatives` too), a neighbouring minute included.

    Why the slack: the reply recogniser mishears about 1 in 80 spoken times over the phone
    band (measured over 228 times of day: "nine sixteen" -> "nine fifteen", "seven thirty" ->
    "eleven thirty", "twelve o'clock" -> "twelve oh one"); a test should fail on an answer
    that is not the time, not on the checker's hearing of one.
    """
    minute = timedelta(minutes=1)
    moments = (before - minute, before, after, after + minute)
    readings = (transcript.text, *transcript.alternatives)
    return any(says_time(reading, *moments) for reading in readings)


def speak(text: str, voice: str = "espeak:en-us") -> bytes:
    """Synthesise ``text`` with a test voice ("espeak:<variant>" or "flite:<voice>").

    Returns 16 kHz mono s16le with the synthesiser's leading and trailing silence removed.
    Raises `FileNotFoundError` when the synthesiser is not installed.
    """
    engine, _, name = voice.partition(":")
    if engine == "espeak":
        command = ["espeak-ng", "-v", name or "en-us", "-s", "160", "--stdout", text]
    elif engine == "flite":
        command = ["flite", "-voice", name or "slt", "-t", text, "-o", "/dev/stdout"]
    else:
        raise ValueError(f"unknown test voice {voice!r}")
    if shutil.which(command[0]) is None:
        raise FileNotFoundError(f"{command[0]} is not installed")
    wav_bytes = subprocess.run(command, capture_output=True, check=True, timeout=30).stdout
    with wave.open(io.BytesIO(wav_bytes)) as wav:
        rate = wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    if rate != SAMPLE_RATE:
        import soxr

        samples = np.asarray(soxr.resample(samples, rate, SAMPLE_RATE), dtype=np.int16)
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > 300)
    if loud.size:
        samples = samples[loud[0] : loud[-1] + 1]
    return samples.tobytes()


@dataclass(frozen=True)
class MicCommands:
    """Part of a mic stream as backend commands; ``stop_index`` indexes the stop marker
    (-1: none); ``speech_start``/``speech_end`` are stream offsets in samples."""

    commands: list[ev.BackendCommand]
    stop_index: int = -1
    speech_start: int = 0
    speech_end: int = 0


class MicStream:
    """A session's microphone stream, continuous across turns (offsets keep counting).

    Args:
        start_secs, stop_secs: the VAD's: the start marker comes ``start_secs`` after the
            onset, the stop marker ``stop_secs`` after the end of speech.
        noise_dbfs: level of the room's noise floor (white noise), present throughout.
        seed: seeds the noise, so streams are repeatable.
    """

    def __init__(
        self,
        *,
        start_secs: float = 0.2,
        stop_secs: float = 0.5,
        noise_dbfs: float = -60.0,
        seed: int = 0,
    ) -> None:
        self._start_secs = start_secs
        self._stop_secs = stop_secs
        self._noise = 32768 * 10 ** (noise_dbfs / 20)
        self._rng = np.random.default_rng(seed)
        self.position = 0

    def silence(self, ms: int) -> MicCommands:
        """``ms`` of room noise (for instance while the user listens to the answer)."""
        return MicCommands(self._frames(np.zeros(SAMPLE_RATE * ms // 1000)))

    def utterance(self, speech: bytes, *, lead_ms: int = 400, tail_ms: int = 200) -> MicCommands:
        """``lead_ms`` of room noise, ``speech``, then ``stop_secs + tail_ms`` of noise, with
        the VAD markers where the front end would put them (see the module docstring)."""
        voice = np.frombuffer(speech, dtype=np.int16).astype(np.float64)
        lead = SAMPLE_RATE * lead_ms // 1000
        tail = int(SAMPLE_RATE * self._stop_secs) + SAMPLE_RATE * tail_ms // 1000
        signal = np.zeros(lead + voice.size + tail)
        signal[lead : lead + voice.size] = voice
        base = self.position
        start, end = base + lead, base + lead + voice.size
        started_at = start + int(SAMPLE_RATE * self._start_secs)
        stopped_at = end + int(SAMPLE_RATE * self._stop_secs)
        commands: list[ev.BackendCommand] = []
        stop_index = -1
        for index, frame in enumerate(self._frames(signal)):
            commands.append(frame)
            end_of_frame = base + (index + 1) * _FRAME
            if end_of_frame - _FRAME < started_at <= end_of_frame:
                commands.append(ev.UserSpeechStarted(start))
            if end_of_frame - _FRAME < stopped_at <= end_of_frame:
                stop_index = len(commands)
                commands.append(ev.UserSpeechStopped(end))
        return MicCommands(commands, stop_index, start, end)

    def _frames(self, signal: np.ndarray[Any, Any]) -> list[ev.BackendCommand]:
        signal = np.concatenate([signal, np.zeros(-signal.size % _FRAME)])
        signal = signal + self._rng.normal(0.0, self._noise, signal.size)
        pcm = np.clip(np.rint(signal), -32768, 32767).astype(np.int16)
        frames: list[ev.BackendCommand] = []
        for offset in range(0, pcm.size, _FRAME):
            frames.append(ev.SendAudio(pcm[offset : offset + _FRAME].tobytes()))
            self.position += _FRAME
        return frames


def mic_commands(speech: bytes, **settings: Any) -> MicCommands:
    """One utterance on a fresh `MicStream` (``settings`` go to its constructor)."""
    return MicStream(**settings).utterance(speech)


class ToolBox:
    """The built-in tools (and ``extra`` ones, e.g. a plugin), called in-process:
    ``await toolbox.call(name, arguments_json)``."""

    def __init__(
        self,
        orders_db: Path,
        *,
        now: Callable[[], datetime] | None = None,
        extra: Sequence[Any] = (),
    ) -> None:
        from sonicwire.server.tools.builtin import builtin_tools
        from sonicwire.server.tools.orders import OrderStore

        kwargs: dict[str, Any] = {"order_store": OrderStore(orders_db)}
        if now is not None:
            kwargs["now"] = now
        self._tools = {tool.spec.name: tool for tool in [*builtin_tools(**kwargs), *extra]}

    @property
    def descriptions(self) -> list[ToolDescription]:
        """The tools as `BackendOptions.tools` lists them (examples and answers included)."""
        from sonicwire.server.backends.local.toolmodel import describe_spec

        return [describe_spec(t.spec) for t in self._tools.values()]

    async def call(self, call_id: str, name: str, arguments_json: str) -> ev.SendToolResult:
        from sonicwire.server.tools.tool import ToolContext, ToolError

        tool = self._tools.get(name)
        if tool is None:
            error = {"error": {"type": "unknown_tool", "message": name}}
            return ev.SendToolResult(call_id, name, json.dumps(error), ev.ToolStatus.UNKNOWN_TOOL)
        try:
            result = await tool.handler(
                json.loads(arguments_json or "{}"), ToolContext("test", call_id, name, 5.0)
            )
        except ToolError as exc:
            error = {"error": {"type": "tool_error", "message": str(exc)}}
            return ev.SendToolResult(call_id, name, json.dumps(error), ev.ToolStatus.ERROR)
        return ev.SendToolResult(call_id, name, json.dumps(result), ev.ToolStatus.OK)


@dataclass
class TurnResult:
    """One user turn and the assistant's answer, as the session reported them."""

    user_text: str = ""
    assistant_text: list[str] = field(default_factory=list)
    audio: bytearray = field(default_factory=bytearray)
    sample_rate: int = 0
    tool_calls: list[ev.ToolRequested] = field(default_factory=list)
    stop_reason: ev.StopReason | None = None
    events: list[ev.BackendEvent] = field(default_factory=list)
    #: Seconds from the stop marker being sent to the first assistant audio (None: no audio).
    first_audio_s: float | None = None


async def run_turn(
    session: BackendSession,
    commands: Sequence[ev.BackendCommand],
    *,
    toolbox: ToolBox | None = None,
    stop_index: int = -1,
    timeout_s: float = 60.0,
) -> TurnResult:
    """Send ``commands``, answer tool requests, and collect events until the turn ends.

    Timing starts when ``commands[stop_index]`` is sent (the end-of-speech marker).
    """
    result = TurnResult()
    stop_sent: list[float] = []
    events = session.events()

    async def collect() -> None:
        async for event in events:
            result.events.append(event)
            match event:
                case ev.UserTranscript(text, True):
                    result.user_text = text
                case ev.AssistantText(text, True):
                    result.assistant_text.append(text)
                case ev.AssistantAudio(pcm, rate):
                    if result.first_audio_s is None and stop_sent:
                        result.first_audio_s = time.perf_counter() - stop_sent[0]
                    result.audio += pcm
                    result.sample_rate = rate
                case ev.ToolRequested(call_id, name, arguments):
                    result.tool_calls.append(event)
                    if toolbox is not None:
                        await session.send(await toolbox.call(call_id, name, arguments))
                case ev.AssistantTurnEnded(reason):
                    result.stop_reason = reason
                    return

    collector = asyncio.create_task(collect())
    try:
        for index, command in enumerate(commands):
            if index == stop_index:
                stop_sent.append(time.perf_counter())
            await session.send(command)
            await asyncio.sleep(0)  # let the session's tasks run, as a paced driver would
        async with asyncio.timeout(timeout_s):
            await collector
    finally:
        collector.cancel()
        await asyncio.gather(collector, return_exceptions=True)
    return result
