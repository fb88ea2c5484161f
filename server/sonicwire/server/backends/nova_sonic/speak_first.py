"""Nova 1 speaks first: a short spoken cue, because Nova 1 takes no typed turn.

Nova 2 is prompted to open the conversation with a hidden typed USER turn (``connection``).
Nova 1 only hears audio, so peers (pipecat's ``trigger_assistant_response``) add an instruction
to the system prompt ("when you hear 'ready', start speaking") and play a recorded "ready" into
the stream after a little silence. Sonicwire does the same:

- `cue_instruction` is appended to the system prompt of a speak-first Nova 1 conversation;
- `load_cue` reads the cue (``data/ready.wav``: "ready" in espeak-ng's en-us voice at 16 kHz,
  made by ``scripts/make_nova_cue.py``; any mono 16-bit WAV may replace it) at the rate Nova
  hears the user;
- `CuePlayer` hands out `LEAD_MS` of silence (peers found Nova misses the first moments of a
  stream) then the cue, one 20 ms frame per tick; the session sends those frames instead of
  the microphone's until the cue is over, so the two never interleave in the one audio block;
- `CueTranscripts` hides Nova's USER transcription of the cue (the client never sees
  "Ready." as something the user said, and the history does not keep it).

No I/O but reading the WAV file; `CuePlayer.play` paces the frames on the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import wave
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

from sonicwire.server.codecs.downsample import DELAY_SAMPLES, Downsampler2x
from sonicwire.server.core import events as ev

__all__ = [
    "FRAME_MS",
    "LEAD_MS",
    "CuePlayer",
    "CueTranscripts",
    "cached_cue",
    "cue_instruction",
    "load_cue",
]

#: Silence before the cue: pipecat found Nova does not hear the first moments of a stream.
LEAD_MS = 500
#: One frame of the cue per tick, as a microphone would deliver it.
FRAME_MS = 20
_CUE_RATE = 16_000


def cue_instruction(prompt: str) -> str:
    """The system-prompt paragraph that makes the cue a signal, with ``prompt`` (what to do
    first, e.g. greet the user) as what the signal asks for."""
    return (
        "At the start of the conversation you will hear the single word 'ready'. The system "
        "says it, not the user: it is your signal to speak first. When you hear it, do this: "
        f"{prompt.strip()} Do not answer, repeat or mention the word 'ready' itself."
    )


def load_cue(rate: int, path: str | Path | None = None) -> bytes:
    """The cue as mono s16le at ``rate`` (16000, or 8000 for a telephone call).

    ``path``: a mono 16-bit 16 kHz WAV; default the packaged ``data/ready.wav``.
    Raises `ValueError` for a WAV in another format, one that ends inside its header, or a
    rate other than 8 or 16 kHz.
    """
    source = files(__package__).joinpath("data/ready.wav") if path is None else Path(path)
    try:
        with source.open("rb") as raw, wave.open(raw, "rb") as wav:
            if (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) != (1, 2, _CUE_RATE):
                raise ValueError(f"{source}: the cue must be a mono 16-bit 16 kHz WAV")
            pcm = wav.readframes(wav.getnframes())
    except EOFError:  # the wave module says nothing (``str(EOFError())`` is empty)
        raise ValueError(f"{source}: truncated: the file ends inside its WAV header") from None
    pcm = pcm[: len(pcm) - len(pcm) % 2]  # a file cut short mid-sample: whole samples only
    if rate == _CUE_RATE:
        return pcm
    if rate == 8_000:
        down = Downsampler2x()
        return (down.process(pcm) + down.flush())[2 * DELAY_SAMPLES :]  # less the filter delay
    raise ValueError(f"no cue at {rate} Hz")


@functools.lru_cache(maxsize=4)
def cached_cue(rate: int, path: str | None = None) -> bytes:
    """`load_cue`, read once per process (``config`` checked a configured file at start-up)."""
    return load_cue(rate, path)


class CueTranscripts:
    """While ``active``: Nova's USER transcripts are the cue's, up to the first FINAL one, or
    until the assistant starts answering; `passes` is False for them."""

    def __init__(self, *, active: bool) -> None:
        self._active = active

    def passes(self, event: ev.BackendEvent) -> bool:
        if not self._active:
            return True
        match event:
            case ev.UserTranscript(_, final):
                self._active = not final
                return False
            case ev.AssistantText() | ev.AssistantAudio() | ev.ToolRequested():
                self._active = False
        return True


class CuePlayer:
    """`LEAD_MS` of silence then ``cue``, in `FRAME_MS` frames at ``rate``: `next_frame`
    returns the next one, or None once everything was handed out."""

    def __init__(self, cue: bytes, rate: int) -> None:
        frame = rate * FRAME_MS // 1000 * 2
        audio = bytes(rate * LEAD_MS // 1000 * 2) + cue
        audio += bytes(-len(audio) % frame)  # whole frames: pad the end with silence
        self._frames = [audio[i : i + frame] for i in range(0, len(audio), frame)]
        self._next = 0

    @property
    def frames(self) -> int:
        return len(self._frames)

    def next_frame(self) -> bytes | None:
        if self._next >= len(self._frames):
            return None
        self._next += 1
        return self._frames[self._next - 1]

    async def play(self, send: Callable[[bytes], bool]) -> None:
        """``send`` every frame, one per `FRAME_MS` as a microphone would; stop early when
        ``send`` returns False."""
        loop = asyncio.get_running_loop()
        start, sent = loop.time(), 0
        while (frame := self.next_frame()) is not None and send(frame):
            sent += 1
            await asyncio.sleep(max(0.0, start + sent * FRAME_MS / 1000 - loop.time()))
