"""A rolling restart behind one connection (``pick_first`` over a headless Service's addresses,
an L4 balancer): the SDK's move keeps reaching the draining replica while another conversation
there finishes its turn, and must wait it out rather than give up.

A draining replica refuses the move (``SERVER_DRAINING``) until its last conversation leaves,
then stops, and the channel's next connection reaches the other replica. An SDK that ended the
move on the second refusal by one replica whose drain outlasted the retries (f49225b) failed
this with ``ResumeFailedError`` after 2 attempts, 3 of 3 runs (found in review).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from sonicwire.client import AutoResume, Client, Resumed, TurnComplete
from sonicwire.server.testing.server import running_server
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

from .helpers import config_request
from .redis_server import redis_server, wait_for_redis

pytestmark = pytest.mark.timeout(90)

# How long the other conversation keeps the first replica draining: several of the SDK's
# default retries (0.05 s doubling to 2 s), well inside the drain's default grace (10 s).
OTHER_CONVERSATION_S = 3.0


async def test_a_move_pinned_to_a_draining_replica_waits_until_it_stops(tmp_path: Path) -> None:
    with redis_server(tmp_path) as url:
        await wait_for_redis(url)
        async with (
            running_server(backend="echo", state_store=url) as one,
            running_server(backend="echo", state_store=url) as two,
        ):
            target = f"ipv4:127.0.0.1:{one.port},127.0.0.1:{two.port}"  # pick_first: `one`
            async with (
                grpc.aio.insecure_channel(one.target) as channel,
                Client(target, auto_resume=AutoResume()) as client,
            ):
                other = pb_grpc.VoiceServiceStub(channel).Converse()
                await other.write(config_request())
                assert (await other.read()).HasField("session_started")
                async with client.converse() as conversation:
                    await conversation.send_text("hello")
                    async for event in conversation:
                        if isinstance(event, TurnComplete):
                            break
                    assert len(one.runtime.live) == 2, "both conversations on `one`"
                    drain = asyncio.create_task(one.drain())  # the default grace

                    async def end_other() -> None:
                        await asyncio.sleep(OTHER_CONVERSATION_S)
                        other.cancel()

                    ending = asyncio.create_task(end_other())
                    moved = None
                    async with asyncio.timeout(60):
                        async for event in conversation:
                            if isinstance(event, Resumed):
                                moved = event
                                break
                    await ending
                    assert moved is not None, "the conversation ended without moving"
                    assert moved.attempt > 1, "the move met the draining replica first"
                    await conversation.send_text("still there?")
                    async with asyncio.timeout(30):
                        async for event in conversation:
                            if isinstance(event, TurnComplete):
                                break
                    assert len(two.runtime.live) == 1, "the conversation lives on `two`"
                await drain
