"""Auto-resume against draining replicas: a refusal that names its replica and the time its
drain has left lets a move stop at once when its retries can only meet that replica again.

Before, a conversation whose only replica drained retried for the whole policy (about 9 s with
the defaults) before it failed; a browser behind the gateway waited that long for 4503.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from sonicwire.client import AutoResume, Client, Resumed, ResumeFailedError, RetryPolicy
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


async def test_the_same_draining_replica_refusing_twice_ends_the_move_at_once() -> None:
    stub, client, sleeps = conversation_for(*(draining("r1") for _ in range(4)))
    with pytest.raises(ResumeFailedError) as info:
        await _events(client)
    error = info.value
    assert (error.code, error.reason, error.attempts) == (
        grpc.StatusCode.UNAVAILABLE,
        "SERVER_DRAINING",
        2,
    )
    assert sleeps.delays == [0.05]  # one retry, not the whole policy
    assert len(stub.converse_requests) == 3


@pytest.mark.parametrize(
    "refusals",
    [
        ["r1", "r2", "r3", "r4"],  # a balancer reaching other replicas: each may be the live one
        [("r1", 300)] * 4,  # its drain ends within the retries left
        ["", "", "", ""],  # an older server names no replica
    ],
    ids=["other replicas", "short drain", "no replica id"],
)
async def test_other_refusals_are_retried_as_before(refusals: list[Any]) -> None:
    calls = [draining(*r) if isinstance(r, tuple) else draining(r) for r in refusals]
    _, client, sleeps = conversation_for(*calls)
    events = await _events(client)
    [moved] = [e for e in events if isinstance(e, Resumed)]
    assert moved.attempt == 5 and sleeps.delays == [0.05, 0.1, 0.2, 0.4]
