"""WAV reading/writing, chunking, real-time pacing and reply collection."""

from __future__ import annotations

import array
import io
import wave
from pathlib import Path

import pytest

from sonicwire.client import (
    AudioCollector,
    AudioFormatError,
    AudioOutput,
    PcmAudio,
    Usage,
    read_wav,
    stream_audio,
    stream_wav,
    write_wav,
)
from sonicwire.client.audio import iter_chunks, silence
from sonicwire.client.events import event_from_proto

from .conftest import write_test_wav
from .fake_stub import started


def samples(pcm: bytes) -> list[int]:
    return list(array.array("h", pcm))


def test_read_mono_wav(speech_wav: Path) -> None:
    audio = read_wav(speech_wav)
    assert audio.sample_rate_hz == 16000
    assert audio.duration_ms == 200
    assert len(audio.pcm) == 3200 * 2


def test_stereo_is_mixed_down_to_mono(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(array.array("h", [100, 300, -50, -150, 7, 8]).tobytes())
    buf.seek(0)
    audio = read_wav(buf)
    assert audio.sample_rate_hz == 8000
    assert samples(audio.pcm) == [200, -100, 7]


@pytest.mark.parametrize("width", [1, 3, 4])
def test_non_16_bit_is_rejected_clearly(tmp_path: Path, width: int) -> None:
    path = write_test_wav(tmp_path / "w.wav", width=width)
    with pytest.raises(AudioFormatError, match=rf"{8 * width}-bit samples; .*16-bit"):
        read_wav(path)


def test_unsupported_rate_is_rejected_with_a_hint(tmp_path: Path) -> None:
    path = write_test_wav(tmp_path / "cd.wav", rate=44100)
    with pytest.raises(AudioFormatError, match=r"44100 Hz.*8000, 16000, 24000, 48000.*-r 16000"):
        read_wav(path)


def test_not_a_wav_is_an_audio_format_error(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    path.write_bytes(b"ID3 this is an mp3")
    with pytest.raises(AudioFormatError, match="not a PCM WAV"):
        read_wav(path)
    assert issubclass(AudioFormatError, ValueError)


@pytest.mark.parametrize("size", [0, 4, 20, 30])
def test_a_wav_cut_inside_its_header_says_it_is_truncated(tmp_path: Path, size: int) -> None:
    """The wave module's EOFError has no message: the reason was empty, "not a PCM WAV file ()"."""
    whole = write_test_wav(tmp_path / "whole.wav").read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole[:size])
    with pytest.raises(
        AudioFormatError, match=r"cut\.wav: truncated: the file ends inside its WAV"
    ):
        read_wav(cut)
    with pytest.raises(AudioFormatError, match="truncated"):
        read_wav(io.BytesIO(whole[:size]))


@pytest.mark.parametrize("channels", [1, 2])
def test_a_wav_cut_inside_its_audio_gives_the_whole_frames_it_holds(
    tmp_path: Path, channels: int
) -> None:
    """A stereo file cut mid-frame raised a bare ValueError from the mix-down ("zip() argument
    2 is shorter than argument 1"); mono kept a stray byte."""
    whole = write_test_wav(tmp_path / "whole.wav", channels=channels).read_bytes()
    cut = tmp_path / "cut.wav"
    frame = 2 * channels
    cut.write_bytes(whole[: 44 + 1000 * frame + frame - 1])  # 1000 frames and most of one
    audio = read_wav(cut)
    assert audio.pcm == read_wav(tmp_path / "whole.wav").pcm[: 1000 * 2]


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    pcm = array.array("h", [0, 1, -1, 32767, -32768]).tobytes()
    write_wav(tmp_path / "r.wav", pcm + b"\x01", 24000)  # odd byte dropped
    audio = read_wav(tmp_path / "r.wav")
    assert audio == PcmAudio(pcm, 24000)


def test_chunks_are_20ms_and_cover_everything() -> None:
    pcm = bytes(range(256)) * 25  # 6400 bytes = 200 ms at 16 kHz, minus nothing
    chunks = list(iter_chunks(pcm, 16000))
    assert [len(c) for c in chunks] == [640] * 10
    assert b"".join(chunks) == pcm
    odd = list(iter_chunks(bytes(1001), 16000))  # 500 samples + a stray byte
    assert [len(c) for c in odd] == [640, 360]
    with pytest.raises(ValueError):
        list(iter_chunks(pcm, 16000, 0))


def test_silence_length() -> None:
    assert silence(20, 16000) == bytes(640)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.now += delay


class Sink:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sent: list[tuple[float, bytes]] = []

    async def send_audio(self, audio: bytes) -> None:
        self.sent.append((round(self.clock.now - 100.0, 6), audio))


async def test_stream_audio_paces_chunks_on_a_drift_free_schedule() -> None:
    clock = FakeClock()
    sink = Sink(clock)
    progress: list[tuple[int, int]] = []
    audio = PcmAudio(bytes(640 * 5), 16000)
    sent = await stream_audio(
        sink,
        audio,
        sleep=clock.sleep,
        clock=clock,
        on_progress=lambda s, t: progress.append((s, t)),
    )
    assert sent == 100
    assert [t for t, _ in sink.sent] == [0.0, 0.02, 0.04, 0.06, 0.08]
    assert progress == [(20, 100), (40, 100), (60, 100), (80, 100), (100, 100)]


async def test_stream_audio_speed_zero_does_not_sleep() -> None:
    clock = FakeClock()
    sink = Sink(clock)
    await stream_audio(sink, PcmAudio(bytes(6400), 16000), speed=0, sleep=clock.sleep, clock=clock)
    assert clock.sleeps == [] and len(sink.sent) == 10


def test_collector_keeps_audio_at_the_session_rate(tmp_path: Path) -> None:
    collector = AudioCollector()
    session = event_from_proto(started())  # output rate 24 kHz
    assert session is not None
    collector.feed(session)
    collector.feed(AudioOutput(b"\x01\x00" * 480, "t1", 0))
    collector.feed(Usage(1, 1, 2))
    collector.feed(AudioOutput(b"\x02\x00" * 480, "t1", 20))
    assert collector.sample_rate_hz == 24000
    assert collector.duration_ms == 40
    collector.write_wav(tmp_path / "reply.wav")
    assert read_wav(tmp_path / "reply.wav") == PcmAudio(
        b"\x01\x00" * 480 + b"\x02\x00" * 480, 24000
    )


async def test_stream_wav_reads_and_sends(speech_wav: Path) -> None:
    clock = FakeClock()
    sink = Sink(clock)
    sent = await stream_wav(sink, speech_wav, speed=0)
    assert sent == 200 and len(sink.sent) == 10
    assert b"".join(chunk for _, chunk in sink.sent) == read_wav(speech_wav).pcm
