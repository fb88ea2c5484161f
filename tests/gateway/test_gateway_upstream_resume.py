"""The gateway resumes a conversation upstream when its gRPC replica goes away: two real
servers sharing a real redis-server, a real gateway whose target lists both, and a WebSocket
client speaking through it. The socket stays open, the client hears ``resumed``, no
microphone frame is lost (counted on the servers), and the token the client holds from
``session_started`` still resumes the conversation later from a new socket."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from sonicwire.gateway import Gateway, GatewayConfig
from sonicwire.gateway.resume_tokens import TokenLedger
from sonicwire.server.testing.server import running_server

from ..server.test_auto_resume import FRAME_BYTES, FRAME_MS, SILENCE_MS, CountingEcho, holder, mark
from ..server.test_resume import redis_server, wait_for_redis
from .helpers import of_kind, recv_event, until_closed

pytestmark = pytest.mark.timeout(120)


async def test_the_socket_survives_its_replica_going_away(
    speech_16k: bytes, tmp_path: Path
) -> None:
    utterance = speech_16k + bytes(32 * SILENCE_MS)
    utterance += bytes(-len(utterance) % FRAME_BYTES)
    chunks = [utterance[i : i + FRAME_BYTES] for i in range(0, len(utterance), FRAME_BYTES)]
    total = 3 * len(chunks)
    drain_at = len(chunks) + len(speech_16k) // FRAME_BYTES // 2  # inside the 2nd utterance
    events: list[dict[str, Any]] = []
    with redis_server(tmp_path) as url:
        await wait_for_redis(url)
        backends = [CountingEcho(), CountingEcho()]
        async with (
            running_server(backend=backends[0], state_store=url) as one,
            running_server(backend=backends[1], state_store=url) as two,
        ):
            target = f"ipv4:127.0.0.1:{one.port},127.0.0.1:{two.port}"
            async with Gateway(GatewayConfig(port=0, grpc_target=target)) as gateway:
                async with connect(gateway.ws_url) as ws:
                    config = {"action": "config", "echo_cancellation": False,
                              "noise_suppression": False}  # fmt: skip
                    await ws.send(json.dumps(config))
                    started = await recv_event(ws)
                    assert started["event"] == "session_started"
                    session_id, first_token = started["session_id"], started["resume_token"]
                    resumed = asyncio.Event()

                    async def microphone() -> None:
                        loop = asyncio.get_running_loop()
                        start = loop.time()
                        for index in range(total):
                            if index == drain_at:
                                drain = holder([one, two], session_id).drain(20.0)
                                draining = asyncio.create_task(drain)
                            await ws.send(mark(chunks[index % len(chunks)], index))
                            delay = start + (index + 1) * FRAME_MS / 1000 - loop.time()
                            await asyncio.sleep(max(delay, 0))
                        await draining
                        await resumed.wait()
                        await ws.send(json.dumps({"action": "text", "text": "still there?"}))

                    mic = asyncio.create_task(microphone())
                    async with asyncio.timeout(60):
                        while True:
                            event = await recv_event(ws)
                            events.append(event)
                            if event["event"] == "resumed":
                                resumed.set()
                            if event.get("text") == "You said: still there?":
                                break
                    await mic
                    await ws.send(json.dumps({"action": "end"}))
                    closed = await until_closed(ws)

                # A new socket resumes with the token of the first session_started, which the
                # gateway spent on the client's behalf: it is exchanged for the current one.
                async with connect(gateway.ws_url) as ws:
                    await ws.send(json.dumps({"action": "config", "resume_session_id": session_id,
                                              "resume_token": first_token}))  # fmt: skip
                    again = await recv_event(ws)
                    await ws.send(json.dumps({"action": "end"}))
                    await until_closed(ws)

    assert closed.code == 1000, closed  # the socket stayed open until the client ended it
    assert of_kind(events, "going_away") == []  # handled by the gateway, not the client
    (moved,) = of_kind(events, "resumed")
    assert moved["session_id"] == session_id and moved["audio_lost_ms"] == 0
    assert moved["resume_token"] not in ("", first_token)
    received = set(backends[0].frames) | set(backends[1].frames)
    lost = sorted(set(range(total)) - received)
    assert lost == [], f"{len(lost)} microphone frames never reached a server"
    assert backends[0].frames and backends[1].frames  # both replicas served the conversation
    echoes = [e["text"] for e in events if e["event"] == "transcript" and e["role"] == "assistant"]
    assert sum(text.startswith("(echo of utterance") for text in echoes) == 3, echoes
    assert again["event"] == "session_started", again
    assert again["session_id"] == session_id


def test_token_ledger_exchanges_only_tokens_it_spent() -> None:
    ledger = TokenLedger(max_entries=2)
    assert ledger.current("sw_1", "t0") == "t0"  # never moved: untouched
    ledger.moved("sw_1", "t0", "t1")
    ledger.moved("sw_1", "t1", "t2")
    assert ledger.current("sw_1", "t0") == "t2" and ledger.current("sw_1", "t1") == "t2"
    assert ledger.current("sw_1", "t2") == "t2"
    assert ledger.current("sw_1", "guess") == "guess"  # not a token of that conversation
    assert ledger.current("sw_2", "t0") == "t0"  # another conversation's id
    ledger.moved("sw_2", "a", "b")
    ledger.moved("sw_3", "c", "d")
    assert len(ledger) == 2 and ledger.current("sw_1", "t0") == "t0"  # the oldest went first
