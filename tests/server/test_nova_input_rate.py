"""Telephone calls reach Nova at 8 kHz, end to end: gRPC client (G.711 mu-law / A-law or 8 kHz
PCM) -> Sonicwire server on loopback (16 kHz front end) -> nova-sonic backend (back down to
8 kHz) -> real SDK -> local Bedrock endpoint, which checks the declared rate
(``audioInputConfiguration.sampleRateHertz``) against the audio it gets: a 1 kHz tone the
client sends must be a 1 kHz tone at the declared rate, and a second of it must be a second."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from sonicwire.server.codecs import Encoding, WireFormat, encoder_for
from sonicwire.server.testing.fake_scenario import Scenario, StreamPlan, throttled_mid_call
from sonicwire.v1 import voice_service_pb2 as pb

from .test_nova_e2e import RAW_AUDIO, nova_server, read_until

TONE_HZ = 1000


def tone(rate: int, ms: int) -> bytes:
    t = np.arange(rate * ms // 1000) / rate
    return (8000 * np.sin(2 * np.pi * TONE_HZ * t)).astype("<i2").tobytes()


def wire_audio(encoding: int, rate: int, ms: int) -> tuple[bytes, int]:
    """``ms`` of the tone as the client sends it, and the bytes of one 20 ms frame."""
    pcm = tone(rate, ms)
    if encoding == pb.AUDIO_ENCODING_PCM_S16LE:
        return pcm, rate // 50 * 2
    law = Encoding.MULAW if encoding == pb.AUDIO_ENCODING_MULAW else Encoding.ALAW
    return encoder_for(WireFormat(law, rate)).encode(pcm)[0], rate // 50


def peak_hz(pcm: bytes, rate: int) -> float:
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


@pytest.mark.parametrize(
    ("encoding", "client_rate", "option", "nova_rate"),
    [
        (pb.AUDIO_ENCODING_MULAW, 8000, None, 8000),
        (pb.AUDIO_ENCODING_ALAW, 8000, None, 8000),
        (pb.AUDIO_ENCODING_PCM_S16LE, 8000, None, 8000),
        (pb.AUDIO_ENCODING_PCM_S16LE, 16000, None, 16000),
        (pb.AUDIO_ENCODING_PCM_S16LE, 24000, None, 16000),
        (pb.AUDIO_ENCODING_MULAW, 8000, "16000", 16000),
        (pb.AUDIO_ENCODING_PCM_S16LE, 16000, "8000", 8000),
    ],
    ids=[
        "mulaw-8k",
        "alaw-8k",
        "pcm-8k",
        "pcm-16k",
        "pcm-24k-to-16k",
        "mulaw-8k-option-16k",
        "pcm-16k-option-8k",
    ],
)
async def test_nova_gets_the_rate_it_was_told(
    encoding: int, client_rate: int, option: str | None, nova_rate: int
) -> None:
    options = {"input_sample_rate": option} if option else {}
    async with nova_server(Scenario(), **options) as (fake, _server, stub):
        config = pb.SessionConfig()
        config.CopyFrom(RAW_AUDIO)
        config.input_format.CopyFrom(pb.AudioFormat(encoding=encoding, sample_rate_hz=client_rate))  # type: ignore[arg-type]
        call = stub.Converse()
        await call.write(pb.ConverseRequest(config=config))
        await read_until(call, "session_started", [])
        audio, frame = wire_audio(encoding, client_rate, 1000)
        for i in range(0, len(audio), frame):
            await call.write(pb.ConverseRequest(audio=pb.AudioInput(audio=audio[i : i + frame])))
        stream = (await fake.wait_for_streams(1))[0]
        # 8 and 16 kHz frames go on at once: the whole second arrives (less the filters' 2-4
        # ms); soxr (24 -> 16 kHz into the front end) holds back up to ~100 ms in its blocks.
        least = 880 if client_rate == 24000 else 990
        await stream.wait_for(lambda: stream.audio_ms >= least)
        start = next(
            e["event"]["contentStart"]
            for e in stream.events
            if e["event"].get("contentStart", {}).get("type") == "AUDIO"
        )
        assert start["audioInputConfiguration"]["sampleRateHertz"] == nova_rate
        assert stream.input_rate == nova_rate
        await asyncio.sleep(0.1)
        assert least <= stream.audio_ms <= 1000  # no audio invented, none lost
        # 1 kHz at the declared rate: the bytes really are audio at that rate.
        assert peak_hz(bytes(stream.audio), nova_rate) == pytest.approx(TONE_HZ, abs=5)
        call.cancel()


async def test_a_reconnected_telephone_call_stays_at_8_khz() -> None:
    """Throttled mid-call: the next stream is told 8 kHz too, and the replayed and live audio
    it gets is the caller's, at 8 kHz (the replay buffer keeps what Nova was sent)."""
    scenario = Scenario.sequence(throttled_mid_call(audio_ms=300), StreamPlan())
    async with nova_server(scenario) as (fake, _server, stub):
        config = pb.SessionConfig()
        config.CopyFrom(RAW_AUDIO)
        config.input_format.CopyFrom(
            pb.AudioFormat(encoding=pb.AUDIO_ENCODING_MULAW, sample_rate_hz=8000)
        )
        call = stub.Converse()
        await call.write(pb.ConverseRequest(config=config))
        await read_until(call, "session_started", [])
        audio, frame = wire_audio(pb.AUDIO_ENCODING_MULAW, 8000, 2000)
        for i in range(0, len(audio), frame):
            await call.write(pb.ConverseRequest(audio=pb.AudioInput(audio=audio[i : i + frame])))
            await asyncio.sleep(0.005)
        first, second = await fake.wait_for_streams(2)
        await second.wait_for(lambda: second.audio_ms >= 500)
        assert (first.input_rate, second.input_rate) == (8000, 8000)
        assert peak_hz(bytes(second.audio), 8000) == pytest.approx(TONE_HZ, abs=5)
        call.cancel()
