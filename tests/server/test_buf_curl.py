"""`buf curl` against the running server: list the service and call Health/Check."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

from sonicwire.server.backends.echo import EchoBackend
from sonicwire.server.testing.server import running_server

ROOT = Path(__file__).resolve().parents[2]


def buf() -> str:
    path = ROOT / "node_modules" / ".bin" / "buf"
    found = str(path) if path.exists() else shutil.which("buf")
    assert found, "buf is required: run scripts/setup.sh (npm ci)"
    return found


async def run(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        buf(),
        "curl",
        "--protocol",
        "grpc",
        "--http2-prior-knowledge",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_buf_curl_lists_service_and_checks_health() -> None:
    async with running_server(backend=EchoBackend()) as server:
        url = f"http://{server.target}"
        listed = await run("--list-methods", url)
        assert "sonicwire.v1.VoiceService/Converse" in listed.split()
        health = await run("-d", "{}", f"{url}/grpc.health.v1.Health/Check")
        assert json.loads(health) == {"status": "SERVING"}
