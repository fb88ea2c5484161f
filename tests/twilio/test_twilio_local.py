"""A phone call to the default local engine: a spoken question as 8 kHz mu-law from a simulated
Twilio, the spoken answer back as mu-law, checked by a speech recogniser."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sonicwire.gateway.twilio.carrier import SimulatedCarrier
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


async def test_phone_call_asks_the_time_and_hears_it(
    call_env: CallEnv,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    reply_recognizer: SpeechRecognizer,
) -> None:
    monkeypatch.setenv("SONICWIRE_ORDERS_DB", str(tmp_path / "orders.db"))
    question = to_mulaw_8k(speak("what time is it", "espeak:en-us"))
    async with call_env(backend="local") as (_server, gateway):
        headers = signed_headers(gateway)
        async with SimulatedCarrier(twilio_url(gateway), headers=headers) as call:
            before = datetime.now(UTC)
            await call.send_audio(SILENCE * 25 + question + SILENCE * 75)
            heard_mulaw = await call.wait_answer(quiet_s=2.0)
            after = datetime.now(UTC)
        assert len(heard_mulaw) > 8000 * 0.5  # at least half a second of answer
        assert {len(m.payload) for m in call.events("media")} == {160}
        assert call.marks_echoed  # played, and reported back as playback
    heard = reply_recognizer.recognize(mulaw_to_pcm(heard_mulaw), 8000)
    print(f"heard over the phone: {heard!r}")
    assert hears_time(heard, before, after), f"the reply {heard!r} does not tell {before:%H:%M}"
