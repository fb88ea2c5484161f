"""Phone calls through /twilio with a simulated carrier that speaks Twilio's protocol exactly,
against a real gateway and a real gRPC server on loopback (echo and scripted backends)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import numpy as np
import pytest
from websockets.exceptions import InvalidStatus

from sonicwire.gateway.twilio.auth import expected_signature
from sonicwire.gateway.twilio.carrier import SimulatedCarrier
from sonicwire.server.codecs.g711 import mulaw_to_pcm
from sonicwire.server.core import events as ev
from sonicwire.server.testing.backends import ToolCallingBackend

from .conftest import CallEnv, signed_headers, to_mulaw_8k, twilio_url

SILENCE = b"\xff" * 160  # 20 ms of mu-law silence
WAIT_S = 20.0  # bound of any wait; tests never assert on durations


async def _until(condition: Callable[[], object], timeout_s: float = WAIT_S) -> None:
    """Poll ``condition`` (state of other tasks, no event to wait on) until it holds."""
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def _level(mulaw: bytes) -> float:
    pcm = np.frombuffer(mulaw_to_pcm(mulaw), "<i2").astype(np.float64)
    return float(np.sqrt(np.mean(pcm**2))) if len(pcm) else 0.0


async def test_signed_call_echoes_speech_in_20ms_frames_with_marks(
    call_env: CallEnv, speech_16k: bytes
) -> None:
    speech = to_mulaw_8k(speech_16k)
    async with call_env() as (_server, gateway):
        async with SimulatedCarrier(twilio_url(gateway), headers=signed_headers(gateway)) as call:
            await call.send_audio(SILENCE * 15 + speech + SILENCE * 50)
            await call.wait_answer(timeout_s=WAIT_S)
            await _until(lambda: gateway.twilio_stats.marks_echoed >= len(call.events("mark")))
        frames = call.events("media")
        assert frames and {len(f.payload) for f in frames} == {160}
        # The echo is the caller's speech, back through the server's 8 kHz path.
        assert _level(call.audio()) > 0.3 * _level(speech)
        assert len(call.audio()) >= 0.8 * len(speech)
        # A mark per chunk, each echoed after playing and reported upstream as playback.
        marks = [m.name for m in call.events("mark")]
        assert marks == sorted(marks, key=lambda n: int(n.split(":")[1]))
        assert call.marks_echoed == marks
        assert gateway.twilio_stats.marks_echoed == len(marks)
        assert not call.events("clear")
        assert len(call.played) == len(call.audio())


async def test_barge_in_sends_clear_at_once(
    call_env: CallEnv, speech_16k: bytes, barge_in_mulaw: bytes
) -> None:
    speech = to_mulaw_8k(speech_16k)
    async with call_env() as (_server, gateway):
        async with SimulatedCarrier(twilio_url(gateway), headers=signed_headers(gateway)) as call:
            await call.send_audio(SILENCE * 15 + speech + SILENCE * 40)
            await _until(lambda: call.events("media"))  # the echo is playing
            await call.send_audio(barge_in_mulaw + SILENCE * 40)  # the caller talks over it
            await _until(lambda: call.events("clear"))
            clear = call.events("clear")[0]
            # Nothing of the cut turn is sent after the clear.
            cut_turn = {m.name.split(":")[0] for m in call.events("mark") if m.at < clear.at}
            await asyncio.sleep(0.3)
            late = [m for m in call.events("mark") if m.at > clear.at]
            assert not [m for m in late if m.name.split(":")[0] in cut_turn]
        assert len(call.events("clear")) == 1
        assert gateway.twilio_stats.clears_out == 1


async def test_hang_up_mid_answer_frees_everything(call_env: CallEnv, speech_16k: bytes) -> None:
    speech = to_mulaw_8k(speech_16k)
    async with call_env() as (server, gateway):
        call = SimulatedCarrier(twilio_url(gateway), headers=signed_headers(gateway))
        await call.connect()
        await call.send_audio(SILENCE * 15 + speech + SILENCE * 40)
        await _until(lambda: call.events("media"))  # mid-answer
        await call.hang_up()
        await call.close()  # Twilio closes the socket after stop
        await _until(lambda: not server.runtime.conversations)
        await _until(lambda: gateway.stats.connections_active == 0)
        # The gateway is fine: the next call works.
        async with SimulatedCarrier(twilio_url(gateway), headers=signed_headers(gateway)) as again:
            await again.send_audio(SILENCE * 15 + speech + SILENCE * 50)
            await _until(lambda: again.events("mark"))


async def test_stop_half_closes_and_the_call_ends_normally(
    call_env: CallEnv, speech_16k: bytes
) -> None:
    async with call_env() as (server, gateway):
        async with SimulatedCarrier(twilio_url(gateway), headers=signed_headers(gateway)) as call:
            await call.send_audio(SILENCE * 10)
            await call.hang_up()  # socket left open: the gateway closes it when the stream ends
            assert await call.wait_closed(WAIT_S) == 1000
        await _until(lambda: not server.runtime.conversations)


async def test_keypad_digits_reach_the_assistant_as_one_typed_turn(call_env: CallEnv) -> None:
    backend = ToolCallingBackend()
    async with call_env(backend=backend, twilio_dtmf_timeout_s=0.3) as (_server, gateway):
        async with SimulatedCarrier(twilio_url(gateway), headers=signed_headers(gateway)) as call:
            for digit in "1001":
                await call.press(digit)
            await _until(lambda: gateway.twilio_stats.dtmf_turns == 1)
            await call.press("7")
            await call.press("#")
            await _until(lambda: gateway.twilio_stats.dtmf_turns == 2)
            await _until(lambda: len(_texts(backend)) == 2)
    assert _texts(backend) == [
        "The caller pressed 1 0 0 1 on the phone keypad.",
        "The caller pressed 7 on the phone keypad.",
    ]


def _texts(backend: ToolCallingBackend) -> list[str]:
    return [c.text for s in backend.sessions for c in s.commands if isinstance(c, ev.SendText)]


async def test_unsigned_call_without_api_key_is_refused_with_a_log_line(
    call_env: CallEnv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sonicwire.gateway.twilio")
    async with call_env() as (_server, gateway):
        async with SimulatedCarrier(twilio_url(gateway)) as call:
            assert await call.wait_closed(WAIT_S) == 1008
        assert not call.events("media")
        assert gateway.twilio_stats.calls_refused == 1
    assert any("refused" in r.getMessage() and "apiKey" in r.getMessage() for r in caplog.records)


async def test_wrong_signature_is_refused_at_the_handshake(
    call_env: CallEnv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sonicwire.gateway.twilio")
    async with call_env() as (_server, gateway):
        call = SimulatedCarrier(twilio_url(gateway), headers={"X-Twilio-Signature": "AAAA"})
        with pytest.raises(InvalidStatus) as caught:
            await call.connect()
        assert caught.value.response.status_code == 403
    assert any("invalid X-Twilio-Signature" in r.getMessage() for r in caplog.records)


async def test_api_key_parameter_authenticates_against_the_server(
    call_env: CallEnv, speech_16k: bytes
) -> None:
    env = call_env(server_config={"api_keys": ("sekrit",)}, twilio_auth_token="")
    async with env as (_server, gateway):
        async with SimulatedCarrier(twilio_url(gateway), parameters={"apiKey": "sekrit"}) as call:
            await call.send_audio(SILENCE * 15 + to_mulaw_8k(speech_16k) + SILENCE * 50)
            await _until(lambda: call.events("mark"))
        async with SimulatedCarrier(twilio_url(gateway), parameters={"apiKey": "wrong"}) as bad:
            # The server said UNAUTHENTICATED: a policy refusal (1008), not an internal error.
            assert await bad.wait_closed(WAIT_S) == 1008
        assert gateway.twilio_stats.calls_refused == 1


async def test_parameters_the_server_rejects_close_the_call_1008_not_1011(
    call_env: CallEnv, caplog: pytest.LogCaptureFixture
) -> None:
    # timeZone passes the edge's allow-list but the server refuses it (INVALID_ARGUMENT,
    # TIME_ZONE_INVALID): a bad request, closed like the edge's own refusals, not as a failure.
    caplog.set_level(logging.WARNING, logger="sonicwire.gateway.twilio")
    async with call_env() as (server, gateway):
        async with SimulatedCarrier(
            twilio_url(gateway),
            headers=signed_headers(gateway),
            parameters={"timeZone": "Mars/Olympus"},
        ) as call:
            assert await call.wait_closed(WAIT_S) == 1008
        assert not call.events("media")
        assert gateway.twilio_stats.calls_refused == 1
        await _until(lambda: not server.runtime.conversations)
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert any("INVALID_ARGUMENT" in m and "TIME_ZONE_INVALID" in m for m in refusals), refusals


MALFORMED = [
    ("not json", "{oops"),
    ("binary frame", b"\x00\x01\x02"),
    ("media without payload", '{"event":"media","sequenceNumber":"3","media":{}}'),
    ("second start", None),
]


@pytest.mark.parametrize("data", [m[1] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
async def test_malformed_message_logs_and_closes_never_crashes(
    call_env: CallEnv, caplog: pytest.LogCaptureFixture, data: str | bytes | None
) -> None:
    caplog.set_level(logging.WARNING, logger="sonicwire.gateway.twilio")
    async with call_env() as (server, gateway):
        async with SimulatedCarrier(twilio_url(gateway), headers=signed_headers(gateway)) as call:
            await call.send_audio(SILENCE * 5)
            if data is None:
                await call.send_start()
            else:
                await call.send_raw(data)
            assert await call.wait_closed(WAIT_S) == 1007
        await _until(lambda: not server.runtime.conversations)
        assert gateway.twilio_stats.malformed == 1
    assert any("malformed message" in r.getMessage() for r in caplog.records)


async def test_malformed_first_message_closes_too(
    call_env: CallEnv, caplog: pytest.LogCaptureFixture
) -> None:
    from websockets.asyncio.client import connect

    async with call_env() as (server, gateway):
        async with connect(twilio_url(gateway), additional_headers=signed_headers(gateway)) as ws:
            await ws.send('{"event":"media","media":{"payload":""}}')
            await asyncio.wait_for(ws.wait_closed(), WAIT_S)
            assert ws.close_code == 1007
        assert not server.runtime.conversations


async def test_sonicwire_up_serves_twilio_with_its_prefixed_flag(speech_16k: bytes) -> None:
    from sonicwire.gateway import GatewayConfig
    from sonicwire.gateway.config import gateway_config_from_args
    from sonicwire.gateway.up import build_parser, run_up
    from sonicwire.server.config import ServerConfig

    from .conftest import AUTH_TOKEN

    args = build_parser().parse_args(
        ["--gateway-port", "0", "--gateway-twilio-auth-token", AUTH_TOKEN]
    )
    config = gateway_config_from_args(args)
    assert config.twilio_auth_token == AUTH_TOKEN and isinstance(config, GatewayConfig)
    ready: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    server = ServerConfig(host="127.0.0.1", port=0, backend="echo")
    task = asyncio.create_task(run_up(server, config, ready=ready, stop=stop))
    url, _ = await asyncio.wait_for(ready, WAIT_S)
    port = int(url.rsplit(":", 1)[1].rstrip("/"))
    signature = expected_signature(AUTH_TOKEN, f"wss://127.0.0.1:{port}/twilio")
    headers = {"X-Twilio-Signature": signature}
    async with SimulatedCarrier(f"ws://127.0.0.1:{port}/twilio", headers=headers) as call:
        await call.send_audio(SILENCE * 15 + to_mulaw_8k(speech_16k) + SILENCE * 50)
        await _until(lambda: call.events("mark"))
    stop.set()
    await asyncio.wait_for(task, WAIT_S)
