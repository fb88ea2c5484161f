"""StreamAudio: decoding input for the core and framing its output, fed with core events."""

from __future__ import annotations

import numpy as np
import pytest

from sonicwire.server import convert
from sonicwire.server.codecs import Encoding, WireFormat, decoder_for
from sonicwire.server.core import events as ev
from sonicwire.server.core.errors import ProtocolError
from sonicwire.server.transcode import StreamAudio
from sonicwire.v1 import voice_service_pb2 as pb

MULAW = WireFormat(Encoding.MULAW, 8000)
OPUS16 = WireFormat(Encoding.OPUS, 16000)
PCM8 = WireFormat(Encoding.PCM_S16LE, 8000)


def _tone(ms: int, rate: int) -> bytes:
    n = rate * ms // 1000
    return (np.sin(np.arange(n) * 0.3) * 6000).astype("<i2").tobytes()


def test_mulaw_input_is_decoded_and_split_to_the_cores_limit() -> None:
    audio = StreamAudio(MULAW, PCM8, max_chunk_bytes=1000)
    pieces = audio.decode_input(bytes([0x7F, 0x00, 0xFF]) * 300)  # 900 bytes -> 1800 PCM
    assert [len(p) for p in pieces] == [1000, 800]
    assert pieces[0][:6] == decoder_for(MULAW).decode(bytes([0x7F, 0x00, 0xFF]))[0]
    with pytest.raises(ProtocolError) as caught:
        audio.decode_input(bytes(1001))
    assert caught.value.reason == "AUDIO_CHUNK_TOO_LARGE"


def test_undecodable_opus_is_audio_chunk_invalid() -> None:
    audio = StreamAudio(OPUS16, OPUS16)
    with pytest.raises(ProtocolError) as caught:
        audio.decode_input(b"\xff\xff\xff")
    assert caught.value.reason == "AUDIO_CHUNK_INVALID"


def test_mulaw_output_keeps_the_cores_chunks_and_offsets() -> None:
    audio = StreamAudio(MULAW, MULAW)
    pcm = _tone(40, 8000)
    done = ev.TurnCompleteOut("t1", ev.StopReason.END_TURN, 5, 0, 0, 40)
    out = audio.encode_outputs([ev.AudioOut(pcm, "t1", 120), done])
    assert out[0] == ev.AudioOut(out[0].audio, "t1", 120)  # type: ignore[union-attr]
    assert len(out[0].audio) == len(pcm) // 2  # type: ignore[union-attr]
    assert out[1] is done


def test_opus_output_is_20ms_packets_numbered_per_turn_with_a_padded_last() -> None:
    audio = StreamAudio(OPUS16, OPUS16)
    first = audio.encode_outputs([ev.AudioOut(_tone(120, 16000), "t1", 0)])
    assert [o.offset_ms for o in first] == [0, 20, 40, 60, 80, 100]  # type: ignore[union-attr]
    more = audio.encode_outputs([ev.AudioOut(_tone(30, 16000), "t1", 120)])
    assert [o.offset_ms for o in more] == [120]  # type: ignore[union-attr]  # 10 ms held
    done = ev.TurnCompleteOut("t1", ev.StopReason.END_TURN, 5, 0, 0, 150)
    end = audio.encode_outputs([done])
    assert [type(o) for o in end] == [ev.AudioOut, ev.TurnCompleteOut]
    assert end[0].offset_ms == 140  # type: ignore[union-attr]
    # The next turn starts at 0 again.
    nxt = audio.encode_outputs([ev.AudioOut(_tone(20, 16000), "t2", 0)])
    assert [(o.turn_id, o.offset_ms) for o in nxt] == [("t2", 0)]  # type: ignore[union-attr]


def test_interruption_drops_the_buffered_opus_samples() -> None:
    audio = StreamAudio(OPUS16, OPUS16)
    audio.encode_outputs([ev.AudioOut(_tone(30, 16000), "t1", 0)])  # 10 ms held back
    cut = ev.InterruptionOut("t1", 20, ev.InterruptionSource.BARGE_IN, 0)
    done = ev.TurnCompleteOut("t1", ev.StopReason.INTERRUPTED, 5, 0, 0, 20)
    assert audio.encode_outputs([cut, done]) == [cut, done]  # no padded packet after a cut


@pytest.mark.parametrize(
    ("encoding", "rate", "ok"),
    [
        (pb.AUDIO_ENCODING_MULAW, 8000, True),
        (pb.AUDIO_ENCODING_MULAW, 0, True),
        (pb.AUDIO_ENCODING_MULAW, 16000, False),
        (pb.AUDIO_ENCODING_ALAW, 8000, True),
        (pb.AUDIO_ENCODING_ALAW, 48000, False),
        (pb.AUDIO_ENCODING_OPUS, 16000, True),
        (pb.AUDIO_ENCODING_OPUS, 48000, True),
        (pb.AUDIO_ENCODING_OPUS, 0, True),
        (pb.AUDIO_ENCODING_OPUS, 8000, False),
        (pb.AUDIO_ENCODING_OPUS, 24000, False),
        (pb.AUDIO_ENCODING_PCM_S16LE, 24000, True),
        (99, 8000, False),
    ],
)
def test_format_validation(encoding: int, rate: int, ok: bool) -> None:
    config = pb.SessionConfig(
        input_format=pb.AudioFormat(encoding=encoding, sample_rate_hz=rate),  # type: ignore[arg-type]
    )
    if ok:
        settings = convert.settings_from_config(config)
        path = convert.audio_path(config)
        assert path.input_format.encoding == encoding
        assert settings.input_sample_rate == path.input_format.sample_rate_hz
        assert path.input_format.sample_rate_hz == (rate or {2: 8000, 4: 48000}.get(encoding, rate))
        assert path.processing_sample_rate_hz == 16000
    else:
        with pytest.raises(ProtocolError) as caught:
            convert.settings_from_config(config)
        assert caught.value.reason == "AUDIO_FORMAT_UNSUPPORTED"
        assert "input_format" in caught.value.message


def test_effective_config_states_the_encodings() -> None:
    config = pb.SessionConfig(
        input_format=pb.AudioFormat(encoding=pb.AUDIO_ENCODING_ALAW),
        output_format=pb.AudioFormat(encoding=pb.AUDIO_ENCODING_OPUS, sample_rate_hz=16000),
    )
    effective = convert.effective_config(convert.settings_from_config(config), config, "v")
    assert effective.input_format == pb.AudioFormat(
        encoding=pb.AUDIO_ENCODING_ALAW, sample_rate_hz=8000, channels=1
    )
    assert effective.output_format == pb.AudioFormat(
        encoding=pb.AUDIO_ENCODING_OPUS, sample_rate_hz=16000, channels=1
    )
    assert convert.audio_path(config).output_packet_ms == 20


@pytest.mark.parametrize(
    ("encoding", "rate", "aggressiveness"),
    [
        (pb.AUDIO_ENCODING_MULAW, 8000, 2),
        (pb.AUDIO_ENCODING_PCM_S16LE, 8000, 2),
        (pb.AUDIO_ENCODING_PCM_S16LE, 16000, 3),
        (pb.AUDIO_ENCODING_OPUS, 0, 3),
    ],
)
def test_telephone_band_input_gets_the_less_aggressive_vad(
    encoding: int, rate: int, aggressiveness: int
) -> None:
    # webrtcvad mode 3 dropped 560 ms of band-limited words mid-utterance (the echo
    # evaluation's mu-law runs: the rest of the user's words then cut the reply)
    config = pb.SessionConfig(
        input_format=pb.AudioFormat(encoding=encoding, sample_rate_hz=rate),  # type: ignore[arg-type]
    )
    settings = convert.settings_from_config(config)
    assert settings.front_end.vad.webrtc_aggressiveness == aggressiveness
