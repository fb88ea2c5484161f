"""The opt-in live check (`make live-test`): skipped cleanly without AWS, and its plumbing
exercised against the local endpoint with a Nova-like script (this is NOT a live run)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from sonicwire.server.backends.nova_sonic.backend import NovaSonicBackend
from sonicwire.server.testing import live_nova
from sonicwire.server.testing.fake_bedrock import FakeBedrock
from sonicwire.server.testing.fake_stream import FakeStream, tone


def test_live_check_skips_without_aws() -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}
    done = subprocess.run(
        [sys.executable, "-m", "sonicwire.server.testing.live_nova"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "live-test SKIPPED: no AWS region" in done.stdout


def typed(event: dict[str, object]) -> bool:
    body = event.get("event")
    text = body.get("textInput") if isinstance(body, dict) else None
    return isinstance(text, dict) and text.get("content") == live_nova.TYPED


def loud(chunk: bytes) -> bool:
    return any(abs(v) > 500 for v in memoryview(chunk[: len(chunk) // 2 * 2]).cast("h"))


async def end_of_utterance(stream: FakeStream, mark: list[int]) -> None:
    """Wait, as Nova's endpointing does, for speech followed by 600 ms of silence."""
    pause = 600 * 32  # bytes at 16 kHz s16le

    def done() -> bool:
        audio = bytes(stream.audio[mark[0] :])
        return len(audio) > pause and loud(audio[:-pause]) and not loud(audio[-pause:])

    await stream.wait_for(done, timeout=60)
    mark[0] = len(stream.audio)


async def nova_like(stream: FakeStream) -> None:
    mark = [0]
    await end_of_utterance(stream, mark)
    await stream.user_transcript("what time is it in tokyo right now")
    await stream.tool_use("get_date_time", {"timezone": "Asia/Tokyo"}, "t1")
    await stream.wait_tool_result("t1", timeout=60)
    await stream.speak(["It is noon in Tokyo."], audio_ms=300)
    mark[0] = len(stream.audio)
    await end_of_utterance(stream, mark)
    await stream.user_transcript("tell me a long story about the sea")
    # A long answer that stops, as Nova's does, when it hears the user talk over it or gets
    # new input (the typed turn).
    await stream.text("ASSISTANT", "SPECULATIVE", "Once upon a time, far at sea.", "PARTIAL_TURN")
    mark[0] = len(stream.audio)
    for _ in range(400):
        if any(typed(e) for e in stream.events):
            break
        if loud(bytes(stream.audio[mark[0] :])):
            await stream.interrupted()
            break
        await stream.audio_block(tone(100, 24_000), sample_rate=24_000, stop_reason="PARTIAL_TURN")
        await asyncio.sleep(0.05)
    await stream.wait_for(lambda: any(typed(e) for e in stream.events), timeout=60)
    await stream.speak(["Goodbye!"], audio_ms=200)


@pytest.mark.skipif(live_nova.shutil.which("espeak-ng") is None, reason="needs espeak-ng")
async def test_live_check_plumbing_against_the_local_endpoint() -> None:
    async with FakeBedrock(nova_like) as fake:
        backend = NovaSonicBackend.from_options(retry_backoff_s=0.01, **fake.backend_options())
        try:
            report = await live_nova.run_live_check(backend, pace_s=0.005, turn_timeout_s=40)
        finally:
            await backend.aclose()
    assert report.ok, "\n".join(report.lines())
    assert [c.name for c in report.checks] == [
        "open",
        "user transcript",
        "assistant audio and text",
        "tool round trip",
        "barge-in",
        "typed turn",
        "close",
    ]
