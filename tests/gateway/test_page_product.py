"""The browser page as a product, in headless Debian Chromium (``browser/product.mjs``).

Each test starts real servers on loopback (gRPC server, gateway), runs one scenario of the
script and checks what the page did and said: the gateway down at Start, a server drain with
automatic reconnect, a text-only conversation past the idle limit, mute, and a tour of the
controls (devices, latency, exports) with an axe-core accessibility scan at desktop and phone
sizes (0 violations) and screenshots.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from sonicwire.gateway import Gateway, GatewayConfig
from sonicwire.server.backends.echo import EchoBackend
from sonicwire.server.testing.server import running_server
from tests.conftest import read_wav_mono16, synthesize
from tests.server.redis_server import redis_server, wait_for_redis

from .helpers import wait_for
from .test_browser import BROWSER_DIR, CHROMIUM, REPO, SPEECH_WAV, _require_browser, _write_48k_wav
from .test_gateway_http import free_port

AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = REPO / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

Handler = Callable[[], Awaitable[None]]


async def _scenario(options: dict[str, Any], handlers: Mapping[str, Handler] | None = None) -> Any:
    """Run product.mjs with ``options``; answer each ``{"signal": NAME}`` line by awaiting
    ``handlers[NAME]`` and then writing a line back. Returns the final JSON result."""
    node = _require_browser()
    process = await asyncio.create_subprocess_exec(
        node,
        str(BROWSER_DIR / "product.mjs"),
        json.dumps({"chromium": str(CHROMIUM), "timeoutMs": 30_000, **options}),
        cwd=REPO,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    last = ""
    try:
        async with asyncio.timeout(200):
            async for raw in process.stdout:
                line = raw.decode().strip()
                if not line.startswith("{"):
                    continue
                message = json.loads(line)
                if "signal" in message:
                    await (handlers or {})[message["signal"]]()
                    process.stdin.write(b"go\n")
                    await process.stdin.drain()
                else:
                    last = line
            await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.stderr is not None
    err = (await process.stderr.read()).decode()
    if not last:
        pytest.fail(f"the browser script printed no result (exit {process.returncode}):\n{err}")
    result = json.loads(last)
    assert result["ok"], f"failed at stage {result['stage']!r}: {result['error']}\n{result}\n{err}"
    return result


def _speech_wav(path: Path, lead_s: float, gap_s: float) -> Path:
    """Fake microphone: silence, a synthesised utterance, a gap, recorded speech, silence."""
    first = read_wav_mono16(synthesize("testing the microphone", path.with_suffix(".tts.wav")))
    return _write_48k_wav(path, [lead_s, first, gap_s, read_wav_mono16(SPEECH_WAV), 4.0])


async def test_gateway_down_at_start_says_so() -> None:
    async with AsyncExitStack() as stack:
        server = await stack.enter_async_context(running_server(backend=EchoBackend()))
        gateway = Gateway(GatewayConfig(port=0, grpc_target=server.target))
        await gateway.start()
        stack.push_async_callback(gateway.aclose)

        async def stop_gateway() -> None:
            await gateway.aclose()

        result = await _scenario(
            {"url": gateway.url, "scenario": "gateway-down", "microphone": False},
            {"stop-gateway": stop_gateway},
        )
    assert "Cannot reach the Sonicwire gateway" in result["banner"], result["banner"]
    assert "Audio" not in result["banner"] and "worklet" not in result["banner"]
    assert result["focused"] == "start"  # focus stays on the button the user pressed


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_server_drain_reconnects_by_itself(tmp_path: Path, store: str) -> None:
    """The gRPC server drains and a new one starts on its port. With a Redis store shared by
    both, the gateway resumes the conversation upstream: the page's socket stays open and the
    page sees nothing but its conversation going on. With the default memory store the new
    server cannot know the conversation: the gateway's resume is refused, the socket closes,
    and the page starts a new conversation by itself."""
    port = free_port()
    async with AsyncExitStack() as stack:
        state: dict[str, Any] = {}
        if store == "redis":
            url = stack.enter_context(redis_server(tmp_path))
            await wait_for_redis(url)
            state = {"state_store": url}
        first = await stack.enter_async_context(
            running_server(backend=EchoBackend(), port=port, **state)
        )
        gateway = await stack.enter_async_context(
            Gateway(GatewayConfig(port=0, grpc_target=f"127.0.0.1:{port}"))
        )

        async def drain() -> None:
            # What SIGTERM does: GoingAway, a short grace, then the streams end.
            await first.drain(1.0)

        async def restart() -> None:
            second = await stack.enter_async_context(
                running_server(backend=EchoBackend(), port=port, **state)
            )
            await wait_for(lambda: bool(second.runtime.live), 30)  # resumed, or the page's new one

        result = await _scenario(
            {"url": gateway.url, "scenario": "drain", "microphone": False},
            {"drain": drain, "restart": restart},
        )
    assert result["stats"]["state"] == "live"
    if store == "redis":
        # One socket all along: no reconnect, the same conversation, no separator.
        assert result["stats"]["reconnects"] == 0
        assert result["stats"]["sessionId"] == result["firstSession"]
        assert result["separators"] == []
        assert not result["pillDuringDrain"].startswith("Server restarting")
    else:
        assert result["stats"]["sessionId"] != result["firstSession"]
        assert result["separators"] == ["New conversation"]
    shown = [(t["role"], t["text"]) for t in result["transcripts"]]
    assert ("assistant", "You said: after the restart") in shown
    assert result["consoleErrors"] == []


async def test_text_only_outlives_the_idle_limit() -> None:
    async with running_server(backend=EchoBackend(), idle_timeout_s=2.0) as server:
        async with Gateway(GatewayConfig(port=0, grpc_target=server.target)) as gateway:
            result = await _scenario(
                {
                    "url": gateway.url,
                    "scenario": "text-only",
                    "microphone": False,
                    "idleWaitMs": 5000,
                }
            )
    stats = result["stats"]
    assert stats["textOnly"] is True
    assert result["stateAfterWait"] == "live"  # 5 s of typing nothing, idle limit 2 s
    assert stats["silentFrames"] > 0  # the keepalive that holds the session open
    assert result["errorHidden"] is True
    assert stats["closeCode"] is None
    assert result["consoleErrors"] == []


async def test_mute_keeps_the_session_but_the_server_hears_nothing(tmp_path: Path) -> None:
    wav = _speech_wav(tmp_path / "microphone.wav", lead_s=1.5, gap_s=5.0)
    async with running_server(backend=EchoBackend()) as server:
        async with Gateway(GatewayConfig(port=0, grpc_target=server.target)) as gateway:
            result = await _scenario(
                {"url": gateway.url, "scenario": "mute", "wav": str(wav), "muteMs": 4500}
            )
    assert result["mutePressed"] == "true"
    assert result["pillWhileMuted"].startswith("Muted")
    muted = result["whileMuted"]
    assert muted["state"] == "live" and muted["muted"] is True
    assert muted["silentFrames"] > 100  # silence kept flowing (4.5 s of 20 ms frames)
    assert muted["speechStarted"] == 0  # the first utterance was not heard
    assert result["afterUnmute"]["speechStarted"] >= 1  # the second one was
    assert result["consoleErrors"] == []


async def test_page_tour_devices_latency_export_and_accessibility(tmp_path: Path) -> None:
    wav = _speech_wav(tmp_path / "microphone.wav", lead_s=0.5, gap_s=3.0)
    ARTIFACTS.mkdir(exist_ok=True)
    shots = {
        name: str(ARTIFACTS / f"page-{name}.png")
        for name in ("desktop-start", "desktop-live", "phone-live", "phone-stopped")
    }
    async with running_server(backend=EchoBackend()) as server:
        async with Gateway(GatewayConfig(port=0, grpc_target=server.target)) as gateway:
            result = await _scenario(
                {
                    "url": gateway.url,
                    "scenario": "tour",
                    "wav": str(wav),
                    "axe": str(AXE),
                    "screenshots": shots,
                }
            )
    for scan in result["axe"]:
        assert scan["violations"] == [], scan
    assert {scan["label"].split(":")[0] for scan in result["axe"]} == {"desktop", "phone"}
    assert result["focusAfterStart"] == "start"
    assert result["keyReadOnly"] is True
    assert result["devices"]["inputs"] >= 1 and result["micOptions"] >= 2
    assert result["latencyText"].endswith(" ms")
    assert any(meta.startswith("Interrupted: you heard") for meta in result["metas"])
    assert any("Answered" in meta for meta in result["metas"])
    assert result["logLines"] > 0
    assert '"time_zone":' in result["configLine"]  # the browser's zone, for get_date_time
    assert result["smallTargets"] == []
    assert "user: hello there" in result["exportText"]
    assert "assistant: You said: hello there" in result["exportText"]
    roles = {entry["role"] for entry in result["exportJson"]["entries"]}
    assert {"user", "assistant"} <= roles
    assert result["exportJson"]["session_id"].startswith("sw_")
    assert result["linesAfterClear"] == 0
    assert result["consoleErrors"] == []
    sizes = [await asyncio.to_thread(lambda p=p: Path(p).stat().st_size) for p in shots.values()]
    assert all(size > 0 for size in sizes)
