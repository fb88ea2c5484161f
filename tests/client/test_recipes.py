"""The `buf curl` recipes of docs/client.md (docs/recipes/*.sh) run against a server with
reflection and grpc.health.v1: the scripted loopback fake for now.

buf comes from npm (`npm ci` installs node_modules/.bin/buf); a missing buf fails these tests
on purpose rather than skipping them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2

from .conftest import write_test_wav
from .fake_server import REPLY_CHUNKS, REPLY_TEXT, SERVICE, FakeVoiceService, LoopbackServer

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "docs" / "recipes"


def buf() -> str:
    local = ROOT / "node_modules" / ".bin" / "buf"
    found = str(local) if local.exists() else shutil.which("buf")
    assert found, "buf is required: `npm ci` installs node_modules/.bin/buf"
    return found


def run_recipe(
    name: str, *args: str, target: str, api_key: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SONICWIRE_", "BUF"))}
    env.update(BUF=buf(), SONICWIRE_TARGET=target)
    if api_key:
        env["SONICWIRE_API_KEY"] = api_key
    result = subprocess.run(
        ["bash", str(RECIPES / name), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"{name} failed ({result.returncode}):\n{result.stderr}"
    return result


def json_values(text: str) -> list[dict[str, object]]:
    """Parse the concatenated JSON documents buf curl prints for a stream."""
    decoder, values, index = json.JSONDecoder(), [], 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        value, index = decoder.raw_decode(text, index)
        values.append(value)
    return values


def test_list_services_and_methods(server: LoopbackServer) -> None:
    lines = run_recipe("list.sh", target=server.target).stdout.split()
    assert SERVICE in lines and "grpc.health.v1.Health" in lines
    for method in ("Converse", "ListVoices", "ListTools"):
        assert f"{SERVICE}/{method}" in lines
    assert "grpc.health.v1.Health/Check" in lines


def test_health_check(server: LoopbackServer) -> None:
    assert json.loads(run_recipe("health.sh", target=server.target).stdout) == {"status": "SERVING"}
    server.set_health(SERVICE, health_pb2.HealthCheckResponse.NOT_SERVING)
    out = run_recipe("health.sh", SERVICE, target=server.target).stdout
    assert json.loads(out) == {"status": "NOT_SERVING"}


def test_voices_with_an_api_key(server: LoopbackServer, fake: FakeVoiceService) -> None:
    fake.api_key = "k-123"
    out = run_recipe("voices.sh", target=server.target, api_key="k-123").stdout
    assert [v["id"] for v in json.loads(out)["voices"]] == ["joe", "amy"]


def test_converse_with_base64_audio(
    server: LoopbackServer, fake: FakeVoiceService, tmp_path: Path
) -> None:
    wav = write_test_wav(tmp_path / "q.wav", rate=24000, speech_ms=1500)  # > one 32000 B chunk
    events = json_values(run_recipe("converse.sh", str(wav), target=server.target).stdout)
    assert next(iter(events[0])) == "sessionStarted"
    texts = [e["transcript"]["text"] for e in events if "transcript" in e]  # type: ignore[index]
    assert len(texts) == 2 and texts[0].endswith("ms of speech") and texts[1] == REPLY_TEXT
    assert sum("audio" in e for e in events) == REPLY_CHUNKS
    rec = fake.recorded[0]
    assert rec.config is not None and rec.config.input_format.sample_rate_hz == 24000
    assert rec.audio_bytes == 24000 * 2 * 1500 // 1000  # every sample, header stripped
    assert rec.half_closed


def test_converse_with_text(server: LoopbackServer, fake: FakeVoiceService) -> None:
    events = json_values(
        run_recipe("converse_text.sh", 'say "hi" \\ there', target=server.target).stdout
    )
    assert any("turnComplete" in e for e in events)
    assert fake.recorded[0].texts == ['say "hi" \\ there']


@pytest.mark.parametrize("script", sorted(p.name for p in RECIPES.glob("*.sh")))
def test_every_recipe_is_documented(script: str) -> None:
    if script == "common.sh":
        return
    docs = (ROOT / "docs" / "client.md").read_text()
    assert re.search(rf"docs/recipes/{re.escape(script)}\b", docs), f"{script} not in docs"
