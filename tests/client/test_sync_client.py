"""SyncClient: the blocking wrapper for scripts, against the loopback server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sonicwire.client import (
    AudioFormatError,
    HealthStatus,
    Role,
    SyncClient,
    UnauthenticatedError,
    read_wav,
)

from .conftest import write_test_wav
from .fake_server import REPLY_CHUNKS, REPLY_TEXT, FakeVoiceService, LoopbackServer, reply_chunk


def test_unary_calls(server: LoopbackServer) -> None:
    with SyncClient(server.target) as client:
        assert client.health() is HealthStatus.SERVING
        assert [v.id for v in client.list_voices()] == ["joe", "amy"]
        assert [t.name for t in client.list_tools()] == ["get_date_time"]


def test_errors_are_typed(server: LoopbackServer, fake: FakeVoiceService) -> None:
    fake.api_key = "secret"
    with SyncClient(server.target) as client, pytest.raises(UnauthenticatedError):
        client.list_voices()


def test_talk_file_writes_the_reply(
    server: LoopbackServer, fake: FakeVoiceService, tmp_path: Path
) -> None:
    wav = write_test_wav(tmp_path / "q.wav", rate=48000, channels=2, speech_ms=100)
    events: list[Any] = []
    with SyncClient(server.target) as client:
        result = client.talk_file(
            wav,
            out=tmp_path / "reply.wav",
            tools={"lookup_order": lambda args: "shipped"},
            speed=0,
            trailing_silence_ms=200,
            on_event=events.append,
        )
    assert result.text(Role.USER) == "100 ms of speech"
    assert result.text() == REPLY_TEXT
    reply = read_wav(tmp_path / "reply.wav")
    assert reply.sample_rate_hz == 48000  # the default config follows the input's rate
    assert reply.pcm == b"".join(reply_chunk(i, 48000) for i in range(REPLY_CHUNKS))
    assert len(events) == len(result.events)
    assert fake.recorded[0].tool_results[0].content == "shipped"


def test_talk_file_rejects_a_bad_wav_before_connecting(tmp_path: Path) -> None:
    wav = write_test_wav(tmp_path / "cd.wav", rate=44100)
    with SyncClient("127.0.0.1:1") as client, pytest.raises(AudioFormatError):
        client.talk_file(wav)


def test_close_is_idempotent() -> None:
    client = SyncClient()
    client.close()
    client.close()
