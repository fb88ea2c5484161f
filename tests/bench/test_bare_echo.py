"""The bare echo's sparse mode (``every``): Sonicwire's message pattern for the floor split."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bench.bare_echo import BareEchoServicer
from sonicwire.v1 import voice_service_pb2 as pb


async def _requests(chunks: list[bytes]) -> AsyncIterator[pb.ConverseRequest]:
    yield pb.ConverseRequest(config=pb.SessionConfig())
    for chunk in chunks:
        yield pb.ConverseRequest(audio=pb.AudioInput(audio=chunk))


def _converse(servicer: BareEchoServicer, chunks: list[bytes]) -> list[pb.ConverseResponse]:
    async def run() -> list[pb.ConverseResponse]:
        context: Any = None  # the echo never touches its context
        return [r async for r in servicer.Converse(_requests(chunks), context)]

    return asyncio.run(run())


def test_every_fifth_input_answers_with_the_five_inputs_audio() -> None:
    seen: list[str] = []
    chunks = [bytes([i]) * 640 for i in range(11)]
    responses = _converse(BareEchoServicer(seen.append, every=5), chunks)
    assert responses[0].WhichOneof("response") == "session_started"
    audio = [r.audio for r in responses[1:]]
    # 11 inputs: two outputs of five, the last input still held
    assert [a.audio for a in audio] == [b"".join(chunks[:5]), b"".join(chunks[5:10])]
    assert [a.offset_ms for a in audio] == [0, 100]
    assert len(seen) == 11  # the probe still sees every input


def test_default_echoes_every_input() -> None:
    chunks = [bytes([i]) * 640 for i in range(3)]
    responses = _converse(BareEchoServicer(), chunks)
    assert [r.audio.audio for r in responses[1:]] == chunks
    assert [r.audio.offset_ms for r in responses[1:]] == [0, 20, 40]


def test_every_must_be_positive() -> None:
    with pytest.raises(ValueError):
        BareEchoServicer(every=0)
