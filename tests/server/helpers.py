"""Helpers for tests that talk to a real server on loopback with the generated stubs."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from sonicwire.v1 import voice_service_pb2 as pb

FRAME_BYTES = 640  # 20 ms at 16 kHz


def config_request(**fields: object) -> pb.ConverseRequest:
    return pb.ConverseRequest(config=pb.SessionConfig(**fields))  # type: ignore[arg-type]


def audio_requests(pcm: bytes, chunk: int = FRAME_BYTES) -> list[pb.ConverseRequest]:
    return [
        pb.ConverseRequest(audio=pb.AudioInput(audio=pcm[i : i + chunk]))
        for i in range(0, len(pcm), chunk)
    ]


async def request_stream(
    requests: Iterable[pb.ConverseRequest],
) -> AsyncIterator[pb.ConverseRequest]:
    for request in requests:
        yield request


def error_reason(error: grpc.aio.AioRpcError) -> str:
    """The ErrorInfo reason from a failed call's rich status."""
    metadata = error.trailing_metadata() or ()
    for key, value in metadata:
        if key == "grpc-status-details-bin":
            from google.rpc import status_pb2

            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return info.reason
    return ""


ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def server_process(
    *args: str, module: str = "sonicwire.server", env: Mapping[str, str] | None = None
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """``python -m MODULE --port 0 ARGS`` as a real process (in the repository's root, so a
    ``tests.*`` module runs too, with ``env`` added to ours); yields it and its target once
    the banner is out (the backend may still be warming up: `wait_health`). Killed on the way
    out if it is still running."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        "--port",
        "0",
        *args,
        stdout=subprocess.PIPE,
        env={**os.environ, "SONICWIRE_LOG_LEVEL": "WARNING", **(env or {})},
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        match = re.search(r"gRPC on (\S+)", line)
        assert match, f"unexpected banner: {line!r}"
        yield proc, match.group(1)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def health_status(target: str) -> int:
    """The overall grpc.health.v1 status of the server at ``target``."""
    async with grpc.aio.insecure_channel(target) as channel:
        answer = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
        return int(answer.status)


async def wait_health(target: str, wanted: int, limit_s: float = 60) -> None:
    """Poll `health_status` until it is ``wanted``; AssertionError after ``limit_s``."""
    for _ in range(int(limit_s / 0.2)):
        if await health_status(target) == wanted:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"health never became {wanted}")


def process_gone(pid: int) -> bool:
    """Exited (a zombie not yet reaped by init counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


__all__ = [
    "audio_requests",
    "config_request",
    "error_reason",
    "health_status",
    "process_gone",
    "request_stream",
    "rpc_status",
    "server_process",
    "wait_health",
]
