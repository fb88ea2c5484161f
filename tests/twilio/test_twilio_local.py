"""A phone call to the default local engine: a spoken question as 8 kHz mu-law from a simulated
Twilio, the spoken answer back as mu-law, checked by a speech recogniser."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sonicwire.gateway import Gateway
from sonicwire.gateway.twilio.carrier import SimulatedCarrier
from sonicwire.gateway.twilio.playback import Playback
from sonicwire.server.backends.local.stt import SpeechRecognizer
from sonicwire.server.codecs.g711 import mulaw_to_pcm
from sonicwire.server.testing.local_harness import hears_time, load_reply_recognizer, speak

from .conftest import CallEnv, signed_headers, to_mulaw_8k, twilio_url

pytestmark = pytest.mark.slow

SILENCE = b"\xff" * 160


@pytest.fixture(scope="module")
def reply_recognizer() -> Iterator[SpeechRecognizer]:
    recognizer = load_reply_recognizer()
    yield recognizer
    recognizer.close()


@pytest.fixture
def turns_completed(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The turn ids whose ``TurnComplete`` the gateway's Twilio playback handled (a spy on
    `Playback.turn_complete`). The end of an answer has to be read there: Twilio's protocol
    carries none (to Twilio only media, mark and clear go, and a turn's last mark looks like
    any other), so from the carrier's side an answer ends only in silence."""
    completed: set[str] = set()
    turn_complete = Playback.turn_complete

    def spy(playback: Playback, turn_id: str) -> list[str]:
        completed.add(turn_id)
        return turn_complete(playback, turn_id)

    monkeypatch.setattr(Playback, "turn_complete", spy)
    return completed


async def answer_played(
    call: SimulatedCarrier, gateway: Gateway, completed: set[str], timeout_s: float = 60.0
) -> bytes:
    """Until the gateway handled the ``TurnComplete`` of a turn the carrier played, and the
    carrier echoed every mark the gateway sent: each chunk's frames are followed by a mark, the
    padded last frame of the turn too, so all of the answer has been played. Returns the mu-law
    played; raises `TimeoutError` after ``timeout_s``."""
    async with asyncio.timeout(timeout_s):
        while True:
            played_turns = {name.rpartition(":")[0] for name in call.marks_echoed}
            if completed & played_turns and len(call.marks_echoed) == (
                gateway.twilio_stats.marks_out
            ):
                return call.played
            await asyncio.sleep(0.02)


async def test_phone_call_asks_the_time_and_hears_it(
    call_env: CallEnv,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    reply_recognizer: SpeechRecognizer,
    turns_completed: set[str],
) -> None:
    monkeypatch.setenv("SONICWIRE_ORDERS_DB", str(tmp_path / "orders.db"))
    question = to_mulaw_8k(speak("what time is it", "espeak:en-us"))
    async with call_env(backend="local") as (_server, gateway):
        headers = signed_headers(gateway)
        async with SimulatedCarrier(twilio_url(gateway), headers=headers) as call:
            before = datetime.now(UTC)
            await call.send_audio(SILENCE * 25 + question + SILENCE * 75)
            heard_mulaw = await answer_played(call, gateway, turns_completed)
            after = datetime.now(UTC)
        assert len(heard_mulaw) > 8000 * 0.5  # at least half a second of answer
        assert {len(m.payload) for m in call.events("media")} == {160}
        assert call.marks_echoed  # played, and reported back as playback
    heard = reply_recognizer.recognize(mulaw_to_pcm(heard_mulaw), 8000)
    print(f"heard over the phone: {heard!r}")
    assert hears_time(heard, before, after), f"the reply {heard!r} does not tell {before:%H:%M}"
