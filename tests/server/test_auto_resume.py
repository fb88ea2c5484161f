"""The Python SDK's auto-resume against real replicas: two servers sharing a real redis-server,
one client channel balancing over both (gRPC ``round_robin``), a live microphone, and the
replica holding the conversation drained mid-conversation.

Microphone audio lost per resume is counted on the servers: every 20 ms microphone frame
carries its index in its first two samples (values below 64, inaudible), echo cancellation
and noise suppression are off so the server's front end passes frames through unchanged, and
the backends record the index of every frame they were given.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sonicwire.client import (
    AutoResume,
    Client,
    GoingAway,
    Resumed,
    Role,
    SonicwireError,
    Transcript,
    TurnComplete,
    read_wav,
    write_wav,
)
from sonicwire.client.cli import EXIT_OK, main
from sonicwire.server.app import RunningServer
from sonicwire.server.backends.base import BackendOptions
from sonicwire.server.backends.echo import EchoBackend, EchoSession
from sonicwire.server.core import events as ev
from sonicwire.server.core.events import Role as ServerRole
from sonicwire.server.testing.server import running_server
from sonicwire.v1 import voice_service_pb2 as pb

from .redis_server import redis_server, wait_for_redis

log = logging.getLogger(__name__)

FRAME_MS = 20
FRAME_BYTES = 640  # 20 ms at 16 kHz
SILENCE_MS = 2500  # between utterances: the echo (as long as the speech) ends before the next
TIMEOUT_S = 60.0  # bound of the whole conversation; nothing asserts on durations


def mark(frame: bytes, index: int) -> bytes:
    """Write ``index`` into the first two samples (each below 64: inaudible)."""
    assert index < 64 * 64
    return bytes([index % 64, 0, index // 64, 0]) + frame[4:]


def frame_index(pcm: bytes) -> int:
    return pcm[0] + 64 * pcm[2]


class CountingEcho(EchoBackend):
    """The echo backend, recording the index of every microphone frame it was given and the
    history of every session it opened."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[int] = []
        self.opened: list[BackendOptions] = []

    async def open(self, options: BackendOptions) -> EchoSession:
        self.opened.append(options)
        session = await super().open(options)
        send = session.send

        async def counting_send(command: ev.BackendCommand) -> None:
            if isinstance(command, ev.SendAudio):
                assert len(command.pcm) == FRAME_BYTES
                self.frames.append(frame_index(command.pcm))
            await send(command)

        session.send = counting_send  # type: ignore[method-assign]
        return session


def config() -> pb.SessionConfig:
    return pb.SessionConfig(
        input_format=pb.AudioFormat(
            encoding=pb.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16000, channels=1
        ),
        echo_cancellation=pb.EchoCancellationSettings(disabled=True),
        noise_suppression=pb.NoiseSuppressionSettings(disabled=True),
    )


@dataclass
class Record:
    sent: int = 0  # microphone frames captured (and handed to the SDK)
    events: list[Any] = field(default_factory=list)
    answered: asyncio.Event = field(default_factory=asyncio.Event)


async def converse_through_a_drain(
    speech: bytes, tmp_path: Path, *, grace_s: float, drain_in_speech: bool
) -> tuple[Record, list[CountingEcho], list[Resumed]]:
    utterance = speech + bytes(32 * SILENCE_MS)
    utterance += bytes(-len(utterance) % FRAME_BYTES)
    chunks = [utterance[i : i + FRAME_BYTES] for i in range(0, len(utterance), FRAME_BYTES)]
    speech_frames = len(speech) // FRAME_BYTES
    record = Record()
    with redis_server(tmp_path) as url:
        await wait_for_redis(url)
        backends = [CountingEcho(), CountingEcho()]
        async with (
            running_server(backend=backends[0], state_store=url) as one,
            running_server(backend=backends[1], state_store=url) as two,
        ):
            servers = [one, two]
            # One target over both replicas: what a headless Service gives a gRPC client.
            target = f"ipv4:127.0.0.1:{one.port},127.0.0.1:{two.port}"
            policy = AutoResume()
            async with Client(
                target, options=[("grpc.lb_policy_name", "round_robin")], auto_resume=policy
            ) as client:
                async with asyncio.timeout(TIMEOUT_S):
                    async with client.converse(config()) as conversation:
                        await run(conversation, record, chunks, speech_frames, servers,
                                  grace_s=grace_s, drain_in_speech=drain_in_speech)  # fmt: skip
    resumes = [e for e in record.events if isinstance(e, Resumed)]
    return record, backends, resumes


def holder(servers: list[RunningServer], session_id: str) -> RunningServer:
    (server,) = [s for s in servers if session_id in s.runtime.live]
    return server


async def run(
    conversation: Any,
    record: Record,
    chunks: list[bytes],
    speech_frames: int,
    servers: list[RunningServer],
    *,
    grace_s: float,
    drain_in_speech: bool,
) -> None:
    utterances_before, utterances_after = 2, 1
    total = (utterances_before + utterances_after) * len(chunks)
    drain_at = utterances_before * len(chunks) + (speech_frames // 2 if drain_in_speech else 0)
    drained = asyncio.Event()
    resumed = asyncio.Event()

    async def microphone() -> None:
        # A live microphone: a frame every 20 ms whatever happens to the stream.
        loop = asyncio.get_running_loop()
        start = loop.time()
        for index in range(total):
            if index == drain_at:
                drained.set()
            await conversation.send_audio(mark(chunks[index % len(chunks)], index))
            record.sent += 1
            await asyncio.sleep(max(start + (index + 1) * FRAME_MS / 1000 - loop.time(), 0))
        await resumed.wait()
        # A typed question on the resumed stream is answered by the other replica.
        await conversation.send_text("are you still there")
        await conversation.end_input()

    async def drain() -> None:
        await drained.wait()
        await holder(servers, conversation.session_id).drain(grace_s)

    tasks = [asyncio.create_task(microphone()), asyncio.create_task(drain())]
    try:
        async for event in conversation:
            record.events.append(event)
            if isinstance(event, Resumed):
                resumed.set()
        for task in tasks:
            await task
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, SonicwireError):
                await task


def check(record: Record, backends: list[CountingEcho], resumes: list[Resumed]) -> None:
    received = set(backends[0].frames) | set(backends[1].frames)
    lost = sorted(set(range(record.sent)) - received)
    resent = len(backends[0].frames) + len(backends[1].frames) - len(received)
    lost_ms_per_resume = len(lost) * FRAME_MS / max(len(resumes), 1)
    log.info(
        "frames sent %d, lost %d, received twice %d; resumes %s; lost per resume %.0f ms; "
        "load %s",
        record.sent, len(lost), resent, resumes, lost_ms_per_resume, os.getloadavg(),
    )  # fmt: skip
    assert len(resumes) == 1, resumes
    assert lost == [], f"{len(lost)} microphone frames never reached a server: {lost[:20]}"
    assert resumes[0].audio_lost_ms == 0
    # Both replicas served it: one before the drain, the other after.
    assert backends[0].frames and backends[1].frames
    # The replica that resumed got the history (the utterances answered before the drain).
    later = backends[0] if backends[0].opened and backends[0].opened[-1].history else backends[1]
    history = [m.text for m in later.opened[-1].history]
    users = [m.text for m in later.opened[-1].history if m.role is ServerRole.USER]
    assert users[:2] == ["[utterance 1]", "[utterance 2]"], history
    # Every utterance answered exactly once (none lost, none answered twice after the
    # resume), and the question asked after the resume was answered.
    echoes = [e for e in record.events if isinstance(e, Transcript) and e.role is Role.ASSISTANT]
    assert sum(e.text.startswith("(echo of utterance") for e in echoes) == 3, echoes
    assert echoes[-1].text == "You said: are you still there"
    assert isinstance(record.events[-1], TurnComplete)


async def test_going_away_mid_conversation_moves_at_a_safe_point(
    speech_16k: bytes, tmp_path: Path
) -> None:
    # A long grace: the SDK moves by itself once the utterance in flight was answered.
    record, backends, resumes = await converse_through_a_drain(
        speech_16k, tmp_path, grace_s=20.0, drain_in_speech=True
    )
    assert any(isinstance(e, GoingAway) for e in record.events)
    assert resumes and resumes[0].reason == "GOING_AWAY"
    check(record, backends, resumes)


async def test_a_stream_ended_mid_utterance_resends_the_utterance(
    speech_16k: bytes, tmp_path: Path
) -> None:
    # A grace too short to finish the utterance: the replica ends the stream with UNAVAILABLE
    # SERVER_DRAINING mid-utterance, and the SDK sends the whole utterance again.
    record, backends, resumes = await converse_through_a_drain(
        speech_16k, tmp_path, grace_s=0.1, drain_in_speech=True
    )
    assert resumes and resumes[0].reason == "SERVER_DRAINING"
    check(record, backends, resumes)


async def test_sonicwire_talk_survives_its_replica_going_away(
    speech_16k: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `sonicwire talk` with a target listing both replicas (what a DNS name of a headless
    # Service resolves to; gRPC's default pick_first sticks to one until it goes away). The
    # replica holding the talk is drained while the first utterance is being spoken.
    pcm = speech_16k + bytes(32 * 3000) + speech_16k
    wav = tmp_path / "two-utterances.wav"
    write_wav(wav, pcm, 16000)
    out = tmp_path / "reply.wav"
    with redis_server(tmp_path) as url:
        await wait_for_redis(url)
        backends = [CountingEcho(), CountingEcho()]
        async with (
            running_server(backend=backends[0], state_store=url) as one,
            running_server(backend=backends[1], state_store=url) as two,
        ):
            target = f"ipv4:127.0.0.1:{one.port},127.0.0.1:{two.port}"
            argv = ["talk", str(wav), "--target", target, "--out", str(out), "--json"]
            talk = asyncio.create_task(asyncio.to_thread(main, argv))
            async with asyncio.timeout(TIMEOUT_S):
                for _ in range(400):  # until the talk's session has started
                    if one.runtime.live or two.runtime.live:
                        break
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.5)  # into the first utterance
                (session_id,) = [*one.runtime.live, *two.runtime.live]
                await holder([one, two], session_id).drain(20.0)
                code = await talk
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == EXIT_OK, records[-3:]
    kinds = [r["type"] for r in records]
    assert "going_away" in kinds and kinds.count("resumed") == 1, kinds
    resumed = records[kinds.index("resumed")]
    assert resumed["session_id"] == session_id and resumed["audio_lost_ms"] == 0
    after = records[kinds.index("resumed") :]
    # The second utterance was answered by the other replica, in the same conversation.
    assert any(
        r["type"] == "transcript" and r["text"].startswith("(echo of utterance") for r in after
    ), after
    assert backends[0].opened and backends[1].opened
    assert records[-1]["type"] == "done" and records[-1]["session_id"] == session_id
    assert read_wav(out).duration_ms > 0
