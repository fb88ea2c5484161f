"""bench.audio_flood reports how the *server* ended each flooded stream.

A client writing as fast as it can while the server refuses its stream often sees grpc.aio's
local INTERNAL "Internal error from Core" (its failed write overwrites the status it had just
received, grpc/grpc#36066): 1 of 3 runs of ``python -m bench.audio_flood --once
--server-arg=--audio-burst=1000`` once reported INTERNAL though the server had sent
RESOURCE_EXHAUSTED / AUDIO_RATE_EXCEEDED. The bench now reads the status as the SDK does.
"""

from __future__ import annotations

import time
from collections import Counter

import grpc
import pytest

from bench.audio_flood import _one_stream
from sonicwire.server.testing.server import running_server
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

from ..faults.streams import record_server_ends

pytestmark = pytest.mark.timeout(120)

STREAMS = 40  # the overwrite hit about one refused flood in four on loopback here
REFUSED = "RESOURCE_EXHAUSTED AUDIO_RATE_EXCEEDED"


async def test_every_refused_flood_is_reported_with_the_servers_status() -> None:
    ends: Counter[str] = Counter()
    sent, overwritten = [0], [0]
    with record_server_ends() as server_ends:
        # A small burst: each stream is refused after ~100 chunks.
        async with running_server(backend="echo", audio_rate_per_s=50.0, audio_burst=100) as server:
            async with grpc.aio.insecure_channel(server.target) as channel:
                stub = pb_grpc.VoiceServiceStub(channel)
                for _ in range(STREAMS):
                    # The deadline only bounds a stream the server never refuses.
                    deadline = time.monotonic() + 30.0
                    ends[await _one_stream(stub, bytes(32), deadline, sent, overwritten)] += 1
    assert [e.reason for e in server_ends] == ["AUDIO_RATE_EXCEEDED"] * STREAMS
    assert ends == {REFUSED: STREAMS}, f"{ends} ({overwritten[0]} statuses overwritten)"
