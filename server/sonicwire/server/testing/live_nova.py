"""Opt-in smoke test against the real Amazon Nova Sonic: ``make live-test``.

Runs only when an AWS region and credentials are available (environment, profile, SSO,
container or instance role: whatever the SDK's default chain finds); otherwise it prints why it
was skipped and exits 0. It is never part of ``make test``. With AWS access it starts a
Sonicwire server on loopback with the nova-sonic backend and, as a gRPC client:

1. opens a conversation;
2. speaks a question (synthesized with espeak-ng, or a stock WAV) that invites the
   ``get_date_time`` tool, and expects a user transcript, assistant audio and text, and a tool
   round trip;
3. asks for a long story and talks over it, expecting a barge-in;
4. sends a typed turn (Nova 2) and expects an answer;
5. closes, expecting status OK.

It prints one line per check (PASS/FAIL and what was seen) and exits 1 if any failed. It
costs a few cents of Nova Sonic usage. ``SONICWIRE_NOVA_MODEL_ID`` / ``SONICWIRE_NOVA_VOICE``
and the other backend variables apply as for ``sonicwire serve``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import grpc

from sonicwire.server.backends.nova_sonic.backend import NovaSonicBackend
from sonicwire.server.core.errors import BackendError
from sonicwire.server.dsp.resample import Resampler
from sonicwire.server.testing.server import running_server
from sonicwire.v1 import voice_service_pb2 as pb
from sonicwire.v1 import voice_service_pb2_grpc as pb_grpc

__all__ = ["Check", "LiveReport", "main", "run_live_check", "say"]

FRAME = 640  # 20 ms at 16 kHz
_STOCK_WAV = Path("/usr/share/sounds/alsa/Front_Center.wav")
QUESTION = "What time is it in Tokyo right now?"
STORY = "Please tell me a long story about the sea, with many details."
INTERRUPT = "Stop, stop. That is enough, thank you."
TYPED = "Please say goodbye in one short sentence."


@dataclass(slots=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(slots=True)
class LiveReport:
    checks: list[Check] = field(default_factory=list)

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def lines(self) -> list[str]:
        return [f"{'PASS' if c.ok else 'FAIL'}  {c.name}: {c.detail}" for c in self.checks]


def say(text: str) -> bytes:
    """``text`` spoken as 16 kHz s16le mono (espeak-ng; the ALSA stock WAV if it is missing)."""
    espeak = shutil.which("espeak-ng")
    if espeak is not None:
        wav = subprocess.run(
            [espeak, "-v", "en-us", "-s", "150", "--stdout", text],
            check=True,
            capture_output=True,
            timeout=30,
        ).stdout
    else:
        wav = _STOCK_WAV.read_bytes()
    with wave.open(BytesIO(wav)) as reader:
        rate, channels = reader.getframerate(), reader.getnchannels()
        pcm = reader.readframes(reader.getnframes())
    if channels != 1:
        raise ValueError("expected a mono WAV")
    resampler = Resampler(rate, 16_000)
    return resampler.process(pcm) + resampler.flush()


class _Conversation:
    """A gRPC Converse call with a background reader and helpers to wait for responses."""

    def __init__(self, stub: pb_grpc.VoiceServiceStub, pace_s: float) -> None:
        self.call: Any = stub.Converse()  # type: ignore[call-arg]
        self.seen: list[pb.ConverseResponse] = []
        self.pace_s = pace_s
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self.error: grpc.aio.AioRpcError | None = None

    async def start(self, config: pb.SessionConfig) -> None:
        await self.call.write(pb.ConverseRequest(config=config))
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            while (response := await self.call.read()) is not grpc.aio.EOF:
                self.seen.append(response)
                self._changed.set()
        except grpc.aio.AioRpcError as error:
            self.error = error
        finally:
            self._changed.set()

    def since(self, mark: int, kind: str) -> list[pb.ConverseResponse]:
        return [r for r in self.seen[mark:] if r.WhichOneof("response") == kind]

    async def send_audio(self, pcm: bytes, until: Callable[[], bool] | None = None) -> None:
        for i in range(0, len(pcm) - FRAME + 1, FRAME):
            if until is not None and until():
                return
            await self.call.write(pb.ConverseRequest(audio=pb.AudioInput(audio=pcm[i : i + FRAME])))
            await asyncio.sleep(self.pace_s)

    async def silence_until(self, done: Callable[[], bool], timeout_s: float) -> bool:
        """Keep silence flowing (as a microphone does) until ``done()`` or the timeout."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout_s
        while loop.time() < end and self.error is None:
            if done():
                return True
            await self.call.write(pb.ConverseRequest(audio=pb.AudioInput(audio=bytes(FRAME))))
            await asyncio.sleep(self.pace_s)
        return done()

    async def close(self, timeout_s: float) -> grpc.StatusCode:
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
            await self.call.done_writing()
        if self._reader is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await self._reader
        if self._reader is not None and not self._reader.done():
            self.call.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
            return grpc.StatusCode.DEADLINE_EXCEEDED
        code: grpc.StatusCode = await self.call.code()
        return code


def _utterance_heard(responses: list[pb.ConverseResponse]) -> bool:
    """The server's VAD reported an utterance starting and, last, stopping."""
    kinds = [r.speech_activity.kind for r in responses if r.HasField("speech_activity")]
    return pb.SPEECH_ACTIVITY_KIND_STARTED in kinds and kinds[-1] == pb.SPEECH_ACTIVITY_KIND_STOPPED


def _texts(responses: list[pb.ConverseResponse], role: int) -> list[str]:
    return [
        r.transcript.text for r in responses if r.transcript.role == role and r.transcript.final
    ]


async def run_live_check(
    backend: NovaSonicBackend,
    *,
    speech: Callable[[str], bytes] = say,
    pace_s: float = 0.02,
    turn_timeout_s: float = 30.0,
) -> LiveReport:
    """Drive the conversation described in the module docstring; never raises for a failed
    check (it is reported), only for a broken setup."""
    report = LiveReport()
    # Synthesized up front, off the loop: a slow synthesis mid-call would stall the call.
    utterances = dict(
        zip(
            (QUESTION, STORY, INTERRUPT),
            await asyncio.gather(
                *(asyncio.to_thread(speech, text) for text in (QUESTION, STORY, INTERRUPT))
            ),
            strict=True,
        )
    )
    async with running_server(backend=backend) as server:
        async with grpc.aio.insecure_channel(server.target) as channel:
            stub = pb_grpc.VoiceServiceStub(channel)
            talk = _Conversation(stub, pace_s)
            config = pb.SessionConfig(
                output_format=pb.AudioFormat(sample_rate_hz=24_000),
                # The client plays nothing back, so there is no echo to cancel.
                echo_cancellation=pb.EchoCancellationSettings(disabled=True),
                server_tools=["get_date_time"],
            )
            await talk.start(config)
            opened = await talk.silence_until(
                lambda: bool(talk.since(0, "session_started")), turn_timeout_s
            )
            started = talk.since(0, "session_started")
            report.add(
                "open",
                opened,
                f"session {started[0].session_started.session_id} on "
                f"{started[0].session_started.backend}"
                if started
                else f"no SessionStarted ({talk.error})",
            )
            if not opened:
                return report

            # 2. A spoken question that invites a tool.
            mark = len(talk.seen)
            await talk.send_audio(utterances[QUESTION])
            answered = await talk.silence_until(
                lambda: bool(talk.since(mark, "turn_complete")), turn_timeout_s
            )
            turn = talk.seen[mark:]
            users = _texts(turn, pb.ROLE_USER)
            assistant = _texts(turn, pb.ROLE_ASSISTANT)
            audio_ms = sum(len(r.audio.audio) for r in turn if r.HasField("audio")) // 48
            report.add("user transcript", bool(users), repr(users[:1]))
            report.add(
                "assistant audio and text",
                answered and audio_ms > 0 and bool(assistant),
                f"{audio_ms} ms of audio, text {assistant[:1]!r}",
            )
            calls = [r.tool_call for r in turn if r.HasField("tool_call")]
            results = [r.tool_call_result for r in turn if r.HasField("tool_call_result")]
            report.add(
                "tool round trip",
                bool(calls) and any(r.status == pb.TOOL_STATUS_OK for r in results),
                f"calls {[c.name for c in calls]}, results "
                f"{[pb.ToolStatus.Name(r.status) for r in results]}",
            )

            # 3. Barge-in: talk over a long answer.
            mark = len(talk.seen)
            await talk.send_audio(utterances[STORY])
            speaking = await talk.silence_until(
                lambda: bool(talk.since(mark, "audio")), turn_timeout_s
            )
            interrupt_mark = len(talk.seen)
            if speaking:
                await talk.send_audio(
                    utterances[INTERRUPT], until=lambda: bool(talk.since(mark, "interruption"))
                )
            interrupted = await talk.silence_until(
                lambda: bool(talk.since(mark, "interruption")), turn_timeout_s / 2
            )
            cut = talk.since(mark, "interruption")
            report.add(
                "barge-in",
                interrupted,
                f"interruption source {pb.InterruptionSource.Name(cut[0].interruption.source)}, "
                f"{cut[0].interruption.played_ms} ms played"
                if cut
                else "the assistant never spoke"
                if not speaking
                else "no interruption",
            )
            # Let the interrupted turn end and the interrupting speech be heard to its end
            # before typing (text sent while the VAD still hears the user would itself be
            # talked over; the server may lag the audio it was sent).
            await talk.silence_until(
                lambda: (
                    bool(talk.since(mark, "turn_complete"))
                    and _utterance_heard(talk.seen[interrupt_mark:])
                ),
                turn_timeout_s / 2,
            )

            # 4. A typed turn.
            mark = len(talk.seen)
            await talk.call.write(pb.ConverseRequest(text=pb.TextInput(text=TYPED)))
            typed = await talk.silence_until(
                lambda: (
                    bool(_texts(talk.seen[mark:], pb.ROLE_ASSISTANT))
                    and bool(talk.since(mark, "turn_complete"))
                ),
                turn_timeout_s,
            )
            after = talk.seen[mark:]
            report.add(
                "typed turn",
                typed,
                repr(_texts(after, pb.ROLE_ASSISTANT)[:1])
                if typed
                else "no answer; saw "
                + ", ".join(
                    str(r.WhichOneof("response")) for r in after if not r.HasField("audio")
                ),
            )

            # 5. Close.
            code = await talk.close(turn_timeout_s)
            report.add("close", code == grpc.StatusCode.OK, f"status {code.name}")
    return report


async def _credentials_problem(backend: NovaSonicBackend) -> str | None:
    try:
        await backend.check_credentials()
    except BackendError as error:
        return error.message
    return None


async def _main(args: argparse.Namespace) -> int:
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        print("live-test SKIPPED: no AWS region (set AWS_REGION) - nothing was run")
        return 0
    try:
        backend = NovaSonicBackend.from_options()
    except BackendError as error:
        print(f"live-test FAILED: bad nova-sonic settings: {error.message}")
        return 1
    try:
        problem = await _credentials_problem(backend)
        if problem is not None:
            print(f"live-test SKIPPED: no usable AWS credentials ({problem}) - nothing was run")
            return 0
        print(
            f"live-test: Amazon Nova Sonic {backend.settings.model_id} in {region}, "
            f"voice {backend.settings.voice}"
        )
        report = await run_live_check(backend, turn_timeout_s=args.turn_timeout)
    finally:
        await backend.aclose()
    for line in report.lines():
        print(line)
    print("live-test " + ("PASSED" if report.ok else "FAILED"))
    return 0 if report.ok else 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turn-timeout", type=float, default=30.0, help="seconds per turn")
    sys.exit(asyncio.run(_main(parser.parse_args(argv))))


if __name__ == "__main__":
    main()
