"""SIGTERM on a real server process: during an assistant turn, and with a stuck tool.

The client of a live turn sees `GoingAway` (with the grace), keeps receiving the turn's audio
during the grace, then UNAVAILABLE ``SERVER_DRAINING``: it knows the turn was cut and where
(the audio it has, in order, no `TurnComplete`), and can reconnect elsewhere. The process exits
0 after the drain whatever its tools are doing.
"""

from __future__ import annotations

import asyncio
import signal

import grpc

from sonicwire.v1 import voice_service_pb2 as pb
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

from ..server.helpers import server_process
from .streams import audio, read_to_end, read_until, text

DRAIN_GRACE_S = 1.0
SILENCE = bytes(640)


async def test_sigterm_during_a_turn_sends_going_away_then_server_draining(
    speech_16k: bytes,
) -> None:
    async with server_process(
        "--backend",
        "echo",
        "--drain-grace-seconds",
        str(DRAIN_GRACE_S),
    ) as (proc, target):
        async with grpc.aio.insecure_channel(target) as channel:
            call = pb_grpc.VoiceServiceStub(channel).Converse()
            await call.write(pb.ConverseRequest(config=pb.SessionConfig()))
            # Speech, then silence: the echo backend answers with ~2 s of audio, paced.
            for i in range(0, len(speech_16k), 3200):
                await call.write(audio(speech_16k[i : i + 3200]))
            for _ in range(50):
                await call.write(audio(SILENCE))
            before = await read_until(call, "audio", timeout_s=20)
            turn_id = before[-1].audio.turn_id

            proc.send_signal(signal.SIGTERM)
            outcome = await read_to_end(call, timeout_s=DRAIN_GRACE_S + 20)

            kinds = outcome.kinds()
            assert "going_away" in kinds, outcome
            going_away = outcome.responses[kinds.index("going_away")].going_away
            assert going_away.grace_ms == DRAIN_GRACE_S * 1000
            assert (outcome.code, outcome.reason) == (
                grpc.StatusCode.UNAVAILABLE,
                "SERVER_DRAINING",
            ), outcome
            # The turn was cut, and the client can tell: audio up to the cut, no TurnComplete.
            audio_out = [r.audio for r in [*before, *outcome.responses] if r.HasField("audio")]
            assert all(a.turn_id == turn_id for a in audio_out)
            expected_offset = 0
            for chunk in audio_out:  # contiguous: nothing dropped in the middle
                assert chunk.offset_ms == expected_offset
                expected_offset += len(chunk.audio) * 1000 // (2 * 16_000)
            assert not any(r.HasField("turn_complete") for r in outcome.responses)
            assert any(r.HasField("audio") for r in outcome.responses[kinds.index("going_away") :])
        assert await asyncio.wait_for(proc.wait(), 20) == 0


async def test_sigterm_exits_even_with_a_tool_that_ignores_cancellation() -> None:
    """A plugin tool that swallows CancelledError is abandoned by the runner at session end.
    The process must still exit after the drain, and the client must still get the drain's
    status: `run_until_drained` bounds the final clean-up where `asyncio.run` waits forever."""
    async with server_process(
        "--tools",
        "tests.faults.hanging_tools:TOOLS",
        "--drain-grace-seconds",
        str(DRAIN_GRACE_S),
        module="tests.faults.serve_scripted",
    ) as (proc, target):
        async with grpc.aio.insecure_channel(target) as channel:
            call = pb_grpc.VoiceServiceStub(channel).Converse()
            await call.write(pb.ConverseRequest(config=pb.SessionConfig()))
            await call.write(text("call ignore_cancel {}"))
            seen = await read_until(call, "turn_complete")
            assert any(
                r.tool_call_result.status == pb.TOOL_STATUS_TIMEOUT
                for r in seen
                if r.HasField("tool_call_result")
            )
            proc.send_signal(signal.SIGTERM)
            outcome = await read_to_end(call, timeout_s=DRAIN_GRACE_S + 20)
        # Drain grace, the runner's 5 s wait for the stuck handler, 1 s stop: well under 30 s.
        try:
            code = await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            raise AssertionError(
                "the server did not exit within 30 s of SIGTERM: asyncio.run() waits forever "
                f"for the abandoned tool task (the client saw {outcome})"
            ) from None
        assert code == 0
        # The stream's status is sent only after the tools are closed, which waits up to 5 s for
        # the stuck handler: longer than the drain's final 1 s stop, so the status was lost.
        assert (outcome.code, outcome.reason) == (
            grpc.StatusCode.UNAVAILABLE,
            "SERVER_DRAINING",
        ), outcome
