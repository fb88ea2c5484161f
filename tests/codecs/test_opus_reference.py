"""Opus against FFmpeg: FFmpeg encodes and we decode, we encode and FFmpeg decodes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soxr

from sonicwire.server.codecs import CodecError, Encoding, WireFormat, decoder_for, encoder_for

from .reference import best_lag, ffmpeg, ogg_opus_packets, snr_db, write_ogg_opus


def _speech_at(speech_16k: bytes, rate: int) -> np.ndarray:
    samples = np.frombuffer(speech_16k, "<i2").astype(np.float32)
    if rate != 16000:
        samples = soxr.resample(samples, 16000, rate)
    return np.clip(samples, -32768, 32767).astype("<i2")


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.astype(np.float64), b.astype(np.float64))[0, 1])


@pytest.mark.parametrize("rate", [16000, 48000])
def test_we_decode_what_ffmpeg_encodes(rate: int, speech_16k: bytes, tmp_path: Path) -> None:
    speech = _speech_at(speech_16k, rate)
    encoded = tmp_path / "speech.opus"
    ffmpeg(
        "-f", "s16le", "-ar", str(rate), "-ac", "1", "-i", "-",
        "-c:a", "libopus", "-b:a", "32k", "-frame_duration", "20", "-application", "voip",
        str(encoded),
        stdin=speech.tobytes(),
    )  # fmt: skip
    pre_skip, packets = ogg_opus_packets(encoded.read_bytes())
    assert len(packets) >= len(speech) // (rate // 50)
    decoder = decoder_for(WireFormat(Encoding.OPUS, rate))
    ours = np.frombuffer(b"".join(pcm for p in packets for pcm in decoder.decode(p)), "<i2")
    # Each 20 ms packet decodes to exactly 20 ms.
    assert len(ours) == len(packets) * rate // 50
    # FFmpeg's own libopus decoding of the same file (it applies the pre-skip, we do not: the
    # pre-skip is a file-format notion, a live stream plays the codec's delay).
    by_ffmpeg = np.frombuffer(
        ffmpeg("-c:a", "libopus", "-i", encoded, "-f", "s16le", "-ar", str(rate), "-"), "<i2"
    )
    skip = pre_skip * rate // 48000
    n = min(len(by_ffmpeg), len(ours) - skip)
    if rate == 48000:
        assert snr_db(by_ffmpeg[:n], ours[skip : skip + n]) > 40  # the same libopus decoder
    else:
        # FFmpeg's libopus wrapper always decodes at 48 kHz and resamples to 16 kHz with its own
        # filter; libopus decodes natively at 16 kHz. Same signal, different filters.
        lag = best_lag(by_ffmpeg, ours, max_lag=rate // 50)
        m = min(len(by_ffmpeg), len(ours) - lag)
        assert _correlation(by_ffmpeg[:m], ours[lag : lag + m]) > 0.97
    # And what we decoded is the speech that went in (Opus at 32 kb/s: not the same waveform,
    # but the same signal).
    lag = best_lag(speech, ours, max_lag=rate // 20)
    m = min(len(speech), len(ours) - lag)
    assert _correlation(speech[:m], ours[lag : lag + m]) > 0.9


@pytest.mark.parametrize("rate", [16000, 48000])
def test_ffmpeg_decodes_what_we_encode(rate: int, speech_16k: bytes, tmp_path: Path) -> None:
    speech = _speech_at(speech_16k, rate)
    encoder = encoder_for(WireFormat(Encoding.OPUS, rate))
    assert encoder.packet_ms == 20
    packets: list[bytes] = []
    step = rate // 100 * 2 * 3  # feed 30 ms at a time: packets still come out in 20 ms
    raw = speech.tobytes()
    for i in range(0, len(raw), step):
        packets += encoder.encode(raw[i : i + step])
    packets += encoder.flush()
    assert len(packets) == -(-len(speech) // (rate // 50))  # ceil: the last one is padded
    path = tmp_path / "ours.opus"
    write_ogg_opus(path, packets, rate)
    decoded = np.frombuffer(
        ffmpeg("-c:a", "libopus", "-i", path, "-f", "s16le", "-ar", str(rate), "-"), "<i2"
    )
    assert abs(len(decoded) - len(packets) * rate // 50) <= rate // 50
    lag = best_lag(speech, decoded, max_lag=rate // 20)
    assert lag <= rate * 10 // 1000  # the codec's algorithmic delay (6.5 ms), nothing more
    m = min(len(speech), len(decoded) - lag)
    assert _correlation(speech[:m], decoded[lag : lag + m]) > 0.9


def test_encoder_buffers_to_whole_packets_and_reset_drops_the_rest() -> None:
    encoder = encoder_for(WireFormat(Encoding.OPUS, 16000))
    tone = (np.sin(np.arange(16000 * 50 // 1000) / 3) * 8000).astype("<i2").tobytes()  # 50 ms
    assert len(encoder.encode(tone)) == 2  # 40 ms out, 10 ms held back
    assert len(encoder.flush()) == 1  # padded to a last packet
    assert encoder.flush() == []
    assert len(encoder.encode(tone)) == 2
    encoder.reset()  # barge-in: the held-back 10 ms are dropped
    assert encoder.flush() == []


def test_garbage_is_a_codec_error_not_a_crash() -> None:
    decoder = decoder_for(WireFormat(Encoding.OPUS, 48000))
    with pytest.raises(CodecError):
        decoder.decode(b"\xff\xff\xff")  # code 3 packet with an impossible frame count
    assert decoder.decode(b"") == []
    # The decoder keeps working after a bad packet.
    good = encoder_for(WireFormat(Encoding.OPUS, 48000)).encode(bytes(960 * 2))
    assert len(decoder.decode(good[0])[0]) == 960 * 2
