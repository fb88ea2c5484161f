"""Encoded audio over a real loopback server: G.711 and Opus in and out (echo backend)."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from sonicwire.server.backends.echo import EchoBackend
from sonicwire.server.codecs import Encoding, WireFormat, decoder_for, encoder_for
from sonicwire.server.testing.server import running_server
from sonicwire.v1 import voice_service_pb2 as pb
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

from .helpers import config_request, error_reason, request_stream


def _audio(data: bytes) -> pb.ConverseRequest:
    return pb.ConverseRequest(audio=pb.AudioInput(audio=data))


async def _converse(requests: list[pb.ConverseRequest]) -> list[pb.ConverseResponse]:
    async with running_server(backend=EchoBackend()) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = pb_grpc.VoiceServiceStub(channel)
            return [r async for r in stub.Converse(request_stream(requests))]


async def test_mulaw_in_and_out_echoes_the_speech(speech_8k: bytes) -> None:
    fmt = WireFormat(Encoding.MULAW, 8000)
    silence = bytes(320)
    pcm = silence * 25 + speech_8k + silence * 60
    mulaw = encoder_for(fmt).encode(pcm)[0]
    mu = pb.AudioFormat(encoding=pb.AUDIO_ENCODING_MULAW, sample_rate_hz=8000)
    requests = [config_request(input_format=mu, output_format=mu)]
    requests += [_audio(mulaw[i : i + 160]) for i in range(0, len(mulaw), 160)]  # Twilio's 20 ms
    responses = await _converse(requests)
    started = responses[0].session_started
    assert started.config.input_format.encoding == pb.AUDIO_ENCODING_MULAW
    assert started.audio_path.output_format == pb.AudioFormat(
        encoding=pb.AUDIO_ENCODING_MULAW, sample_rate_hz=8000, channels=1
    )
    assert started.audio_path.processing_sample_rate_hz == 16000
    assert started.audio_path.output_packet_ms == 0
    chunks = [r.audio for r in responses if r.HasField("audio")]
    out = b"".join(c.audio for c in chunks)
    # One byte per 8 kHz sample: the echoed utterance, about as long as the speech.
    assert len(speech_8k) // 2 * 0.8 <= len(out) <= len(pcm) // 2
    decoded = np.frombuffer(decoder_for(fmt).decode(out)[0], "<i2").astype(np.float64)
    speech = np.frombuffer(speech_8k, "<i2").astype(np.float64)
    # The echo carries the speech (through the front end's 16 kHz path and back).
    assert np.sqrt(np.mean(decoded**2)) > 0.3 * np.sqrt(np.mean(speech**2))
    complete = [r.turn_complete for r in responses if r.HasField("turn_complete")]
    assert complete[0].audio_ms == pytest.approx(len(out) / 8, abs=25)


async def test_opus_in_and_out(speech_16k: bytes) -> None:
    fmt = WireFormat(Encoding.OPUS, 48000)
    speech = np.frombuffer(speech_16k, "<i2")
    pcm48 = np.repeat(speech, 3).astype("<i2").tobytes()  # crude but Opus does not mind
    silence = bytes(1920)
    encoder = encoder_for(fmt)
    packets = encoder.encode(silence * 25 + pcm48 + silence * 60) + encoder.flush()
    opus = pb.AudioFormat(encoding=pb.AUDIO_ENCODING_OPUS)  # 0 Hz: Opus' default, 48 kHz
    requests = [config_request(input_format=opus, output_format=opus)]
    requests += [_audio(p) for p in packets]
    responses = await _converse(requests)
    started = responses[0].session_started
    assert started.audio_path.output_format.sample_rate_hz == 48000
    assert started.audio_path.output_packet_ms == 20
    chunks = [r.audio for r in responses if r.HasField("audio")]
    assert len(chunks) > 40
    # every packet 20 ms on: offsets step by 20 within each assistant turn (the pause inside
    # "Front ... Center" may end the first user turn early, and the second word then barges
    # in on the first reply: the front end hears a user at once on a line without echo)
    by_turn: dict[str, list[int]] = {}
    for c in chunks:
        by_turn.setdefault(c.turn_id, []).append(c.offset_ms)
    for offsets in by_turn.values():
        assert offsets == [20 * i for i in range(len(offsets))]
    decoder = decoder_for(fmt)
    decoded = [decoder.decode(c.audio)[0] for c in chunks]
    assert {len(d) for d in decoded} == {1920}  # every packet 20 ms at 48 kHz
    level = np.sqrt(np.mean(np.frombuffer(b"".join(decoded), "<i2").astype(np.float64) ** 2))
    assert level > 300
    kinds = [r.WhichOneof("response") for r in responses]
    last_audio = max(i for i, k in enumerate(kinds) if k == "audio")
    last_complete = len(kinds) - 1 - kinds[::-1].index("turn_complete")
    assert last_complete > last_audio


@pytest.mark.parametrize(
    "fmt",
    [
        pb.AudioFormat(encoding=pb.AUDIO_ENCODING_MULAW, sample_rate_hz=16000),
        pb.AudioFormat(encoding=pb.AUDIO_ENCODING_ALAW, sample_rate_hz=24000),
        pb.AudioFormat(encoding=pb.AUDIO_ENCODING_OPUS, sample_rate_hz=8000),
        pb.AudioFormat(encoding=pb.AUDIO_ENCODING_OPUS, sample_rate_hz=48000, channels=2),
    ],
    ids=["mulaw-16k", "alaw-24k", "opus-8k", "opus-stereo"],
)
async def test_unsupported_combination_is_invalid_argument(fmt: pb.AudioFormat) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _converse([config_request(output_format=fmt)])
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(caught.value) == "AUDIO_FORMAT_UNSUPPORTED"
    assert "output_format" in (caught.value.details() or "")


async def test_corrupt_opus_packet_is_audio_chunk_invalid() -> None:
    opus = pb.AudioFormat(encoding=pb.AUDIO_ENCODING_OPUS, sample_rate_hz=16000)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _converse([config_request(input_format=opus), _audio(b"\xff\xff\xff")])
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(caught.value) == "AUDIO_CHUNK_INVALID"


async def test_list_voices_states_the_audio_formats() -> None:
    async with running_server(backend=EchoBackend()) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            reply = await pb_grpc.VoiceServiceStub(channel).ListVoices(pb.ListVoicesRequest())
    formats = {f.encoding: f for f in reply.audio_formats}
    assert list(formats[pb.AUDIO_ENCODING_MULAW].sample_rates_hz) == [8000]
    assert list(formats[pb.AUDIO_ENCODING_ALAW].sample_rates_hz) == [8000]
    assert list(formats[pb.AUDIO_ENCODING_OPUS].sample_rates_hz) == [16000, 48000]
    assert formats[pb.AUDIO_ENCODING_OPUS].output_packet_ms == 20
    assert formats[pb.AUDIO_ENCODING_PCM_S16LE].default_sample_rate_hz == 16000
