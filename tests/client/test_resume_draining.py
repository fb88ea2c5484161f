"""Auto-resume against draining replicas: every refusal is retried through the whole policy,
whatever replica it names and whatever drain it has left.

A refusal's ``replica`` and ``drain_left_ms`` cannot tell a move pinned to one draining replica
for good from one that will reach another replica in a moment: a draining replica stops as soon
as its last conversation leaves, usually long before its grace ends. An SDK that gave up on the
second refusal by one replica (f49225b) broke rolling restarts behind ``pick_first``
(tests/server/test_resume_pinned_draining.py).
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from sonicwire.client import AutoResume, Client, Resumed, RetryPolicy
from sonicwire.v1 import voice_service_pb2 as pb

from .fake_stub import FakeCall, FakeStub, Sleeps, rpc_error, started

# 5 attempts: waits 0.05, 0.1, 0.2, 0.4 s (0.75 s in all after the first refusal).
RETRY = RetryPolicy(max_attempts=5, initial_backoff=0.05, max_backoff=2.0, jitter=0)


def started_with(session_id: str, token: str) -> pb.ConverseResponse:
    response = started(session_id)
    response.session_started.resume_token = token
    return response


def draining(replica: str = "", drain_left_ms: int = 30_000) -> Any:
    metadata = {"replica": replica, "drain_left_ms": str(drain_left_ms)} if replica else None
    return FakeCall(
        [rpc_error(grpc.StatusCode.UNAVAILABLE, "SERVER_DRAINING", "draining", metadata)]
    )


def conversation_for(*refusals: FakeCall) -> tuple[FakeStub, Client, Sleeps]:
    dropped = FakeCall(
        [started_with("s-1", "tok-1"), rpc_error(grpc.StatusCode.UNAVAILABLE, "", "reset")]
    )
    resumed = FakeCall([started_with("s-1", "tok-2")])
    stub = FakeStub(dropped, *refusals, resumed)
    sleeps = Sleeps()
    client = Client(stub=stub, health_stub=stub, sleep=sleeps, auto_resume=AutoResume(retry=RETRY))
    return stub, client, sleeps


async def _events(client: Client) -> list[Any]:
    async with client.converse() as conversation:
        return [event async for event in conversation]


@pytest.mark.parametrize(
    "refusals",
    [
        ["r1", "r1", "r1", "r1"],  # one replica, pinned: it stops once its last stream leaves
        ["r1", "r2", "r3", "r4"],  # a balancer reaching other replicas: each may be the live one
        [("r1", 300)] * 4,  # its drain ends within the retries left
        ["", "", "", ""],  # an older server names no replica
    ],
    ids=["one replica", "other replicas", "short drain", "no replica id"],
)
async def test_draining_refusals_are_retried_through_the_policy(refusals: list[Any]) -> None:
    calls = [draining(*r) if isinstance(r, tuple) else draining(r) for r in refusals]
    _, client, sleeps = conversation_for(*calls)
    events = await _events(client)
    [moved] = [e for e in events if isinstance(e, Resumed)]
    assert moved.attempt == 5 and sleeps.delays == [0.05, 0.1, 0.2, 0.4]
