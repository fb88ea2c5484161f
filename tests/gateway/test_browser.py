"""End to end in headless Debian Chromium: a WAV file is the microphone, the page talks to the
assistant through the gateway and a real gRPC server, and plays the reply.

Chromium and Node are set up by ``scripts/setup.sh``; if they are missing the test fails
(it does not skip): the browser page is part of the product.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import wave
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sonicwire.gateway import Gateway, GatewayConfig
from sonicwire.gateway.config import STATIC_DIR
from sonicwire.server.app import RunningServer
from sonicwire.server.backends.echo import EchoBackend
from sonicwire.server.testing.local_harness import speak
from sonicwire.server.testing.server import running_server
from tests.conftest import read_wav_mono16, synthesize

from .conftest import GatewayFactory
from .test_gateway_http import free_port

REPO = Path(__file__).resolve().parents[2]
BROWSER_DIR = Path(__file__).with_name("browser")
CHROMIUM = Path("/usr/bin/chromium")
SPEECH_WAV = Path("/usr/share/sounds/alsa/Front_Center.wav")
SCREENSHOT = REPO / "test-artifacts" / "browser.png"
LOCAL_SCREENSHOT = REPO / "test-artifacts" / "browser-local.png"
LONG_SENTENCE = (
    "Please read me the whole story about the little red train that climbed the tall green mountain"
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(180)]


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: run scripts/setup.sh")
    return node


def _require_browser() -> str:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup.sh (apt-get install chromium)")
    if not (REPO / "node_modules" / "playwright-core").is_dir():
        pytest.fail("playwright-core is missing: run scripts/setup.sh (npm ci)")
    return _node()


def _write_48k_wav(path: Path, pieces: list[tuple[bytes, int] | float]) -> Path:
    """Write mono 48 kHz (a common device rate): (pcm, rate) pieces resampled, floats as
    seconds of silence."""
    import numpy as np
    import soxr

    rate = 48_000
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        for piece in pieces:
            if isinstance(piece, float):
                out.writeframes(bytes(int(rate * piece) * 2))
                continue
            pcm, source_rate = piece
            samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32)
            resampled = soxr.resample(samples, source_rate, rate)
            out.writeframes(np.clip(resampled, -32768, 32767).astype(np.int16).tobytes())
    return path


def _microphone_wav(path: Path) -> Path:
    """The fake microphone: two utterances with silence around them, at 48 kHz.

    First a long synthesised sentence (espeak-ng, one utterance: its reply lasts long enough
    to be interrupted by a typed message), then real recorded speech whose reply is played
    to the end.
    """
    long_sentence = read_wav_mono16(synthesize(LONG_SENTENCE, path.with_suffix(".tts.wav")))
    recorded = read_wav_mono16(SPEECH_WAV)
    return _write_48k_wav(path, [0.5, long_sentence, 6.0, recorded, 4.0])


async def _run(node: str, *args: str, timeout: float) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        node,
        *args,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def _ready(server: RunningServer) -> None:
    """Until the server's health says SERVING (its backend warmed up), as a probe sees it."""
    async with grpc.aio.insecure_channel(server.target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        assert server.warm_up is not None
        await asyncio.shield(server.warm_up)  # logs a failure rather than raising it
        reply = await stub.Check(health_pb2.HealthCheckRequest())
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, "the warm-up failed"


async def test_page_talks_to_the_assistant_in_chromium(
    tmp_path: Path, make_gateway: GatewayFactory
) -> None:
    node = _require_browser()
    wav = _microphone_wav(tmp_path / "microphone.wav")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    async with make_gateway() as gateway:
        options = {
            "url": gateway.url,
            "wav": str(wav),
            "screenshot": str(SCREENSHOT),
            "chromium": str(CHROMIUM),
            "timeoutMs": 30_000,
        }
        code, out, err = await _run(
            node, str(BROWSER_DIR / "e2e.mjs"), json.dumps(options), timeout=150
        )
        stats = gateway.stats
    try:
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    except (IndexError, ValueError):
        pytest.fail(f"the browser script printed no result (exit {code}):\n{out}\n{err}")
    assert result["ok"], f"failed at stage {result['stage']!r}: {result['error']}\n{result}\n{err}"
    assert code == 0
    assert SCREENSHOT.stat().st_size > 0

    page = result["stats"]
    # The page connected and the server heard both utterances (its VAD saw speech start).
    assert page["sessionId"].startswith("sw_")
    assert page["speechStarted"] >= 2
    assert page["framesSent"] > 0 and page["framesDropped"] == 0
    # (the page keeps streaming after its counters were read, so the gateway may have more)
    assert stats.messages_in["audio"] >= page["framesSent"]
    # The typed message interrupted the first reply; queued audio was dropped, not played.
    assert page["interruptions"] >= 1
    interrupted = result["interruptedReply"]
    assert 300 <= interrupted["playedMs"] <= interrupted["mediaMs"]
    # A later reply was played to the end, and the page reported it to the server.
    played = result["playedReply"]
    assert played["mediaMs"] > 0 and played["playedMs"] >= played["mediaMs"] - 50
    assert page["reportsSent"] > 0
    assert stats.messages_in["playback"] >= page["reportsSent"]
    # Transcripts appear on the page.
    shown = [(t["role"], t["text"]) for t in result["transcripts"] if t["final"]]
    assert ("user", "[utterance 1]") in shown
    assert ("assistant", "(echo of utterance 1)") in shown
    assert ("user", "hello there") in shown
    assert ("assistant", "You said: hello there") in shown
    assert result["consoleErrors"] == []
    assert not stats.errors, "the page sent nothing malformed"


async def test_page_talks_to_the_offline_assistant_in_chromium(tmp_path: Path) -> None:
    """What `make run` gives a newcomer: the page, the gateway and the gRPC server on the
    default local engine. Two spoken requests; the answers appear and are played."""
    node = _require_browser()
    # Test speech as the local engine's own tests make it (espeak-ng, never the engine's voice).
    questions = [
        (speak(text, "espeak:en-us"), 16_000)
        for text in ["what time is it", "where is my order one zero zero one"]
    ]
    # Each answer plays out before the next question (no barge-in).
    wav = _write_48k_wav(tmp_path / "microphone.wav", [2.0, questions[0], 7.0, questions[1], 9.0])
    LOCAL_SCREENSHOT.parent.mkdir(exist_ok=True)
    LOCAL_SCREENSHOT.unlink(missing_ok=True)
    async with running_server(backend="local") as server:
        # Chromium plays the file from the moment the page opens the microphone, and the page
        # sends nothing before its session is live. A session opened during the server's
        # warm-up waits for the models (1-2 s quiet, over 10 s at load 10): the first question
        # was spoken to a page not yet live and lost (5 of 5 runs at load 8-11). So the browser
        # starts when the server is ready, as a newcomer's page does after `make run`.
        await _ready(server)
        async with Gateway(GatewayConfig(port=0, grpc_target=server.target)) as gateway:
            options = {
                "url": gateway.url,
                "wav": str(wav),
                "screenshot": str(LOCAL_SCREENSHOT),
                "chromium": str(CHROMIUM),
                "timeoutMs": 40_000,
                "scenario": "assistant",
                "answers": 2,
            }
            code, out, err = await _run(
                node, str(BROWSER_DIR / "e2e.mjs"), json.dumps(options), timeout=150
            )
    try:
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    except (IndexError, ValueError):
        pytest.fail(f"the browser script printed no result (exit {code}):\n{out}\n{err}")
    assert result["ok"], f"failed at stage {result['stage']!r}: {result['error']}\n{result}\n{err}"
    assert LOCAL_SCREENSHOT.stat().st_size > 0
    shown = [(t["role"], t["text"]) for t in result["transcripts"] if t["final"]]
    assert ("user", "what time is it") in shown, shown
    assert any(role == "assistant" and text.startswith("It's ") for role, text in shown), shown
    assert ("user", "where is my order one zero zero one") in shown, shown
    assert any(
        role == "assistant" and text.startswith("Order 1001") and "shipped" in text
        for role, text in shown
    ), shown
    assert result["stats"]["interruptions"] == 0
    assert result["consoleErrors"] == []


async def test_page_explains_failures_in_chromium() -> None:
    """Microphone denied, gRPC server down, wrong API key: the page says which."""
    node = _require_browser()
    async with running_server(backend=EchoBackend(), api_keys=("right-key",)) as keyed:
        down = GatewayConfig(port=0, grpc_target=f"127.0.0.1:{free_port()}")
        needs_key = GatewayConfig(port=0, grpc_target=keyed.target)
        async with Gateway(down) as gw_down, Gateway(needs_key) as gw_key:
            options = {
                "chromium": str(CHROMIUM),
                "timeoutMs": 20_000,
                "scenarios": [
                    {"name": "server down", "url": gw_down.url},
                    {"name": "wrong key", "url": gw_key.url, "key": "wrong-key"},
                ],
            }
            code, out, err = await _run(
                node, str(BROWSER_DIR / "errors.mjs"), json.dumps(options), timeout=120
            )
    output = json.loads(out.strip().splitlines()[-1])
    assert output["ok"] and code == 0, f"{output}\n{err}"
    results = {r["name"]: r for r in output["results"]}
    for result in results.values():
        # Denied microphone is a notice (typing still works), not the error banner.
        assert result["notices"][0].startswith("Microphone access was denied"), result
    down_result = results["server down"]
    assert down_result["closeCode"] == 4503
    assert "The voice server is unavailable" in down_result["banner"]
    key_result = results["wrong key"]
    assert key_result["closeCode"] == 4401
    assert "This server needs an API key, or the key is wrong" in key_result["banner"]


async def test_worklet_resampler_is_flat_and_rejects_aliases() -> None:
    code, out, err = await _run(
        _node(),
        str(BROWSER_DIR / "resampler_check.mjs"),
        str(STATIC_DIR / "audio-worklets.js"),
        timeout=60,
    )
    assert code == 0, err
    cases = {(c["inRate"], c["outRate"], c["freq"]): c for c in json.loads(out)["cases"]}
    for key, case in cases.items():
        in_rate, out_rate, freq = key
        expected_len = case["inSamples"] * out_rate / in_rate
        assert abs(case["outSamples"] - expected_len) <= 64, key  # only the filter's delay
        if freq < 0.4 * min(in_rate, out_rate):
            assert abs(case["gainDb"]) < 0.1, key  # passband: speech is untouched
        elif freq > 0.5 * out_rate:
            assert case["gainDb"] < -60, key  # would alias: removed before decimation
