"""A carrier (or a proxy in front of the gateway) that misbehaves without breaking the protocol:
misnumbered messages, repeated ``stop``, a media format other than Twilio's. Found by the
red-team session (s23); each test fails on the main before it (said per test). Real gateway,
real gRPC server (echo backend), the simulated carrier."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Callable

import pytest

from sonicwire.gateway.twilio.carrier import SimulatedCarrier
from sonicwire.server.core import events as ev
from sonicwire.server.testing.backends import ToolCallingBackend

from .conftest import CallEnv, signed_headers, twilio_url

SILENCE = b"\xff" * 160  # 20 ms of mu-law silence
WAIT_S = 20.0
_MESSAGES = 200


def _call_log(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "sonicwire.gateway.twilio"]


async def test_misnumbered_media_is_played_and_logged_once_not_per_message(
    call_env: CallEnv, caplog: pytest.LogCaptureFixture
) -> None:
    # Before: two INFO lines per message (sequence gap and chunk gap), 400 here, 100 a second
    # for as long as such a call lasts.
    caplog.set_level(logging.INFO, logger="sonicwire.gateway.twilio")
    payload = base64.b64encode(SILENCE).decode()
    async with call_env() as (_server, gateway):
        async with SimulatedCarrier(twilio_url(gateway), headers=signed_headers(gateway)) as call:
            media = {"track": "inbound", "chunk": "3", "timestamp": "0", "payload": payload}
            misnumbered = {
                "event": "media",
                "sequenceNumber": "7",
                "streamSid": call.stream_sid,
                "media": media,
            }
            for _ in range(_MESSAGES):
                await call.send_raw(json.dumps(misnumbered))
            await call.hang_up()
            assert await call.wait_closed(WAIT_S) == 1000
        assert gateway.twilio_stats.frames_in == _MESSAGES  # not fatal: every frame went up
    lines = _call_log(caplog)
    assert sum("after" in line for line in lines) == 2, lines  # one sequence, one chunk gap
    # Every media message repeats one number (and the carrier's own ``stop`` jumps back).
    assert any(
        f"{_MESSAGES + 1} sequence gaps, {_MESSAGES - 1} media chunk gaps" in x for x in lines
    )
    assert len(lines) < 10, lines


async def test_repeated_stop_ends_the_call_once(
    call_env: CallEnv, caplog: pytest.LogCaptureFixture
) -> None:
    # Before: every copy half-closed again and logged "stop (caller hung up)".
    caplog.set_level(logging.INFO, logger="sonicwire.gateway.twilio")
    async with call_env() as (server, gateway):
        async with SimulatedCarrier(twilio_url(gateway), headers=signed_headers(gateway)) as call:
            await call.send_audio(SILENCE * 5, realtime=False)
            for _ in range(_MESSAGES):
                await call.hang_up()
            assert await call.wait_closed(WAIT_S) == 1000
        assert not server.runtime.conversations
    assert sum("stop (caller hung up)" in line for line in _call_log(caplog)) == 1


async def test_stereo_media_format_is_refused(
    call_env: CallEnv, caplog: pytest.LogCaptureFixture
) -> None:
    # Before: accepted, and the interleaved channels went to the server as one mono signal.
    caplog.set_level(logging.WARNING, logger="sonicwire.gateway.twilio")
    stereo = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 2}
    async with call_env() as (server, gateway):
        async with SimulatedCarrier(
            twilio_url(gateway), headers=signed_headers(gateway), media_format=stereo
        ) as call:
            assert await call.wait_closed(WAIT_S) == 1008
        assert gateway.twilio_stats.calls_refused == 1
        assert not server.runtime.conversations
    assert any("2 channel(s)" in line for line in _call_log(caplog))


async def test_a_caller_mashing_the_keypad_keeps_the_call(call_env: CallEnv) -> None:
    # Before: one typed turn per "#", and the eleventh within the server's text burst ended
    # the call (1011, TEXT_RATE_EXCEEDED). Now turns are spaced and the presses merged.
    backend = ToolCallingBackend()
    async with call_env(backend=backend) as (_server, gateway):
        async with SimulatedCarrier(twilio_url(gateway), headers=signed_headers(gateway)) as call:
            for _ in range(30):
                await call.press("#")
            await _until(lambda: _hashes(backend) == 30)
            assert call.close_code is None
            await call.hang_up()
            assert await call.wait_closed(WAIT_S) == 1000
        assert gateway.twilio_stats.dtmf_turns <= 3


def _hashes(backend: ToolCallingBackend) -> int:
    texts = [c.text for s in backend.sessions for c in s.commands if isinstance(c, ev.SendText)]
    return sum(text.count("#") for text in texts)


async def _until(condition: Callable[[], object], timeout_s: float = WAIT_S) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - the state of other tasks, no event to wait on
            await asyncio.sleep(0.02)
