"""Audio helpers for the client: read and write WAV files, stream audio at real time,
collect the assistant's reply.

Only the standard library is used (``wave``, ``array``), so the light client stays light.
Sonicwire speaks 16-bit signed little-endian PCM, mono, at 8, 16, 24 or 48 kHz:
:func:`read_wav` accepts any channel count (mixing down to mono) but rejects other sample
widths and rates with a message saying how to convert the file; the server resamples between
the supported rates itself.
"""

from __future__ import annotations

import array
import asyncio
import os
import sys
import wave
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from .config import SUPPORTED_SAMPLE_RATES
from .errors import AudioFormatError
from .events import AudioOutput, Event, SessionStarted

__all__ = [
    "AudioCollector",
    "AudioSink",
    "PcmAudio",
    "iter_chunks",
    "read_wav",
    "silence",
    "stream_audio",
    "stream_wav",
    "write_wav",
]

_SAMPLE_BYTES = 2


@dataclass(frozen=True, slots=True)
class PcmAudio:
    """Mono PCM s16le audio and its sample rate."""

    pcm: bytes = field(repr=False)
    sample_rate_hz: int

    @property
    def duration_ms(self) -> int:
        """Length in milliseconds (rounded down)."""
        return len(self.pcm) // _SAMPLE_BYTES * 1000 // self.sample_rate_hz


def _mix_to_mono(frames: bytes, channels: int) -> bytes:
    samples = array.array("h")
    samples.frombytes(frames)
    if sys.byteorder == "big":
        samples.byteswap()
    columns = [samples[c::channels] for c in range(channels)]
    mono = array.array("h", (sum(frame) // channels for frame in zip(*columns, strict=True)))
    if sys.byteorder == "big":
        mono.byteswap()
    return mono.tobytes()


def read_wav(source: str | os.PathLike[str] | BinaryIO) -> PcmAudio:
    """Read a WAV file as mono 16-bit PCM.

    Args:
        source: a path or a binary file object.

    Returns:
        The audio, mixed down to mono when the file has several channels. A file cut short
        in its audio data gives the whole frames it holds (as players do).

    Raises:
        AudioFormatError: the file is not 16-bit PCM, its rate is not 8/16/24/48 kHz, or it
            ends inside its header (empty or truncated).
        OSError: the file cannot be read.
    """
    name = os.fspath(source) if isinstance(source, str | os.PathLike) else "WAV input"
    try:
        with wave.open(source if not isinstance(source, os.PathLike) else os.fspath(source)) as w:
            width, channels, rate = w.getsampwidth(), w.getnchannels(), w.getframerate()
            frames = w.readframes(w.getnframes())
    except EOFError:
        # The wave module says nothing here (``str(EOFError())`` is empty).
        raise AudioFormatError(
            f"{name}: truncated: the file ends inside its WAV header (empty, or cut short "
            "while it was written or copied)"
        ) from None
    except wave.Error as exc:
        raise AudioFormatError(
            f"{name}: not a PCM WAV file ({exc}); convert it with "
            "`ffmpeg -i IN -ac 1 -ar 16000 -c:a pcm_s16le OUT.wav`"
        ) from None
    # A file cut short mid-frame: drop the partial frame (mixing it down would fail).
    frames = frames[: len(frames) - len(frames) % (width * channels or 1)]
    if width != _SAMPLE_BYTES:
        raise AudioFormatError(
            f"{name}: {8 * width}-bit samples; Sonicwire needs 16-bit PCM. Convert with "
            "`sox IN -b 16 OUT.wav` or `ffmpeg -i IN -c:a pcm_s16le OUT.wav`"
        )
    if rate not in SUPPORTED_SAMPLE_RATES:
        allowed = ", ".join(str(r) for r in SUPPORTED_SAMPLE_RATES)
        raise AudioFormatError(
            f"{name}: sample rate {rate} Hz; Sonicwire accepts {allowed} Hz. Resample with "
            "`sox IN -r 16000 OUT.wav` or `ffmpeg -i IN -ar 16000 OUT.wav`"
        )
    if channels > 1:
        frames = _mix_to_mono(frames, channels)
    return PcmAudio(pcm=frames, sample_rate_hz=rate)


def write_wav(
    destination: str | os.PathLike[str] | BinaryIO, pcm: bytes, sample_rate_hz: int
) -> None:
    """Write mono PCM s16le audio as a WAV file.

    Args:
        destination: a path or a writable binary file object.
        pcm: the samples (an odd trailing byte is dropped).
        sample_rate_hz: their rate.

    Raises:
        OSError: the file cannot be written.
    """
    target = os.fspath(destination) if isinstance(destination, os.PathLike) else destination
    with wave.open(target, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(_SAMPLE_BYTES)
        w.setframerate(sample_rate_hz)
        w.writeframes(pcm[: len(pcm) - len(pcm) % _SAMPLE_BYTES])


def silence(duration_ms: int, sample_rate_hz: int) -> bytes:
    """Return ``duration_ms`` of digital silence at ``sample_rate_hz``."""
    return bytes(sample_rate_hz * duration_ms // 1000 * _SAMPLE_BYTES)


def iter_chunks(pcm: bytes, sample_rate_hz: int, chunk_ms: int = 20) -> Iterator[bytes]:
    """Split PCM s16le into chunks of ``chunk_ms`` (the last one may be shorter).

    Raises:
        ValueError: if ``chunk_ms`` is not positive.
    """
    if chunk_ms <= 0:
        raise ValueError("chunk_ms must be positive")
    size = max(sample_rate_hz * chunk_ms // 1000, 1) * _SAMPLE_BYTES
    usable = len(pcm) - len(pcm) % _SAMPLE_BYTES
    for start in range(0, usable, size):
        yield pcm[start : min(start + size, usable)]


class AudioSink(Protocol):
    """Anything audio can be sent to; a ``Conversation`` is one."""

    async def send_audio(self, audio: bytes) -> None:
        """Send one chunk of microphone audio."""
        ...


async def stream_audio(
    sink: AudioSink,
    audio: PcmAudio,
    *,
    chunk_ms: int = 20,
    speed: float = 1.0,
    on_progress: Callable[[int, int], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] | None = None,
) -> int:
    """Send audio in ``chunk_ms`` chunks paced like a live microphone.

    Chunk *i* is sent at ``i * chunk_ms / speed`` after the start (no drift accumulates).
    The session's input rate must equal ``audio.sample_rate_hz``
    (``session_config(sample_rate_hz=audio.sample_rate_hz)``).

    Args:
        sink: where to send (usually a ``Conversation``).
        audio: the audio.
        chunk_ms: chunk length; 20 ms is what a live microphone would send.
        speed: 1.0 for real time, 2.0 for twice as fast, 0 for no pacing at all.
        on_progress: called after each chunk with ``(sent_ms, total_ms)``.
        sleep: the coroutine used to wait (for tests).
        clock: monotonic clock in seconds (for tests); defaults to the event loop's.

    Returns:
        Milliseconds of audio sent.

    Raises:
        Whatever ``sink.send_audio`` raises (e.g. a ``SonicwireError`` if the stream ended).
    """
    now = clock or asyncio.get_running_loop().time
    start = now()
    total_ms = audio.duration_ms
    sent_samples = 0
    for index, chunk in enumerate(iter_chunks(audio.pcm, audio.sample_rate_hz, chunk_ms)):
        if speed > 0:
            delay = start + index * chunk_ms / 1000 / speed - now()
            if delay > 0:
                await sleep(delay)
        await sink.send_audio(chunk)
        sent_samples += len(chunk) // _SAMPLE_BYTES
        if on_progress is not None:
            on_progress(sent_samples * 1000 // audio.sample_rate_hz, total_ms)
    return sent_samples * 1000 // audio.sample_rate_hz


async def stream_wav(
    sink: AudioSink,
    source: str | os.PathLike[str] | BinaryIO,
    *,
    chunk_ms: int = 20,
    speed: float = 1.0,
    on_progress: Callable[[int, int], None] | None = None,
) -> int:
    """Read a WAV file and send it like a live microphone: :func:`read_wav` then
    :func:`stream_audio`. The session's input rate must be the file's rate.

    Returns:
        Milliseconds of audio sent.

    Raises:
        AudioFormatError: the file is not 16-bit PCM at 8/16/24/48 kHz.
        OSError: the file cannot be read.
    """
    audio = read_wav(source)
    return await stream_audio(sink, audio, chunk_ms=chunk_ms, speed=speed, on_progress=on_progress)


class AudioCollector:
    """Collects the assistant's audio from conversation events.

    Feed it every event; it keeps ``AudioOutput`` audio in arrival order and learns the
    output sample rate from ``SessionStarted``::

        reply = AudioCollector()
        async for event in conversation:
            reply.feed(event)
        reply.write_wav("reply.wav")
    """

    def __init__(self, sample_rate_hz: int = 16000) -> None:
        """Start empty; ``sample_rate_hz`` is used until a ``SessionStarted`` says otherwise."""
        self.sample_rate_hz = sample_rate_hz
        self._pcm = bytearray()

    def feed(self, event: Event) -> None:
        """Take one event; events other than audio and session start are ignored."""
        match event:
            case SessionStarted():
                self.sample_rate_hz = event.output_sample_rate_hz
            case AudioOutput(audio=audio):
                self._pcm += audio
            case _:
                pass

    @property
    def pcm(self) -> bytes:
        """All audio collected so far (mono PCM s16le)."""
        return bytes(self._pcm)

    @property
    def duration_ms(self) -> int:
        """Length of the collected audio in milliseconds."""
        return len(self._pcm) // _SAMPLE_BYTES * 1000 // self.sample_rate_hz

    def audio(self) -> PcmAudio:
        """Return the collected audio with its rate."""
        return PcmAudio(pcm=self.pcm, sample_rate_hz=self.sample_rate_hz)

    def write_wav(self, destination: str | os.PathLike[str] | BinaryIO) -> None:
        """Write the collected audio as a mono 16-bit WAV file.

        Raises:
            OSError: the file cannot be written.
        """
        write_wav(destination, self.pcm, self.sample_rate_hz)
