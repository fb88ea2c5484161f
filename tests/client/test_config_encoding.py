"""session_config(encoding=...): telephony and Opus formats from the SDK, end to end."""

from __future__ import annotations

import pytest

from sonicwire.client import Client, SessionStarted, session_config
from sonicwire.server.backends.echo import EchoBackend
from sonicwire.server.testing.server import running_server
from sonicwire.v1 import voice_service_pb2 as pb


def test_encoding_sets_both_directions() -> None:
    config = session_config(sample_rate_hz=8000, encoding="mulaw")
    assert config.input_format == pb.AudioFormat(
        encoding=pb.AUDIO_ENCODING_MULAW, sample_rate_hz=8000, channels=1
    )
    assert config.output_format.encoding == pb.AUDIO_ENCODING_MULAW
    assert session_config().input_format.encoding == pb.AUDIO_ENCODING_PCM_S16LE
    with pytest.raises(ValueError, match="encoding"):
        session_config(encoding="mp3")  # type: ignore[arg-type]


async def test_server_states_the_effective_encoding() -> None:
    async with running_server(backend=EchoBackend()) as server:
        async with Client(server.target) as client:
            config = session_config(sample_rate_hz=16000, encoding="opus")
            async with client.converse(config) as conversation:
                started = await conversation.start()
                await conversation.end_input()
    assert isinstance(started, SessionStarted)
    assert started.config.output_format.encoding == pb.AUDIO_ENCODING_OPUS
    assert started.output_sample_rate_hz == 16000
