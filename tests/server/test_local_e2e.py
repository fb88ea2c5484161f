"""The default backend end to end: spoken WAV files over a real gRPC stream to the offline
local engine, and its spoken answers checked by a recogniser.

The server is created the way `sonicwire serve` creates it (backend by name, built-in tools,
order store from ``SONICWIRE_ORDERS_DB``); the client is the typed SDK's `talk()`, which
streams the audio at real time like a microphone.
"""

from __future__ import annotations

import shutil
import wave
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sonicwire.client import Client, PcmAudio, Role, ToolCall, ToolExecutor, read_wav, talk
from sonicwire.client.exchange import TalkResult
from sonicwire.client.tools import ClientTool
from sonicwire.server.backends.local.stt import SpeechRecognizer, Transcript
from sonicwire.server.testing.local_harness import hears_time, load_reply_recognizer, speak
from sonicwire.server.testing.server import running_server
from sonicwire.server.tools.orders import OrderStore

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reply_recognizer() -> Iterator[SpeechRecognizer]:
    recognizer = load_reply_recognizer()
    yield recognizer
    recognizer.close()


def _spoken_wav(text: str, path: Path) -> Path:
    """A WAV file of ``text`` in an espeak-ng voice (never the engine's own piper voice)."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is missing: run scripts/setup.sh")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes(bytes(16_000) + speak(text, "espeak:en-us"))  # 0.5 s lead-in
    return path


def _tool_calls(result: TalkResult) -> list[ToolCall]:
    return [event for event in result.events if isinstance(event, ToolCall)]


def _heard(recognizer: SpeechRecognizer, reply: PcmAudio) -> Transcript:
    assert reply.pcm, "the assistant sent no audio"
    return recognizer.recognize(reply.pcm, reply.sample_rate_hz)


async def test_what_time_is_it_over_grpc_answers_with_the_current_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reply_recognizer: SpeechRecognizer
) -> None:
    monkeypatch.setenv("SONICWIRE_ORDERS_DB", str(tmp_path / "orders.db"))
    wav = read_wav(_spoken_wav("what time is it", tmp_path / "question.wav"))
    async with running_server(backend="local") as server:
        async with Client(server.target) as client:
            before = datetime.now(UTC)
            result = await talk(client, wav)
            after = datetime.now(UTC)
    assert result.text(Role.USER) == "what time is it"
    assert [call.name for call in _tool_calls(result)] == ["get_date_time"]
    heard = _heard(reply_recognizer, result.reply)
    assert hears_time(heard, before, after), f"the reply {heard!r} does not tell {before:%H:%M}"


async def test_where_is_my_order_over_grpc_reads_the_order_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reply_recognizer: SpeechRecognizer
) -> None:
    db = tmp_path / "orders.db"
    monkeypatch.setenv("SONICWIRE_ORDERS_DB", str(db))
    store = OrderStore(db)  # creates the file with the demo orders, as a first run does
    order = store.get("1001")
    assert order is not None
    wav = read_wav(_spoken_wav("where is my order one zero zero one", tmp_path / "order.wav"))
    async with running_server(backend="local") as server:
        async with Client(server.target) as client:
            result = await talk(client, wav)
    assert [(c.name, c.arguments) for c in _tool_calls(result)] == [
        ("track_order", {"order_id": "1001"})
    ]
    # The answer is the store's status for that order ("shipped", with its carrier), in the
    # transcript and in the audio as a recogniser hears it.
    assert result.text().startswith(f"Order 1001 is {order.status.value}."), result.text()
    assert order.carrier and order.carrier in result.text(), result.text()
    heard = _heard(reply_recognizer, result.reply).text
    assert f"order one zero zero one is {order.status.value}" in heard, heard


async def test_a_client_tool_is_learnt_from_its_examples_and_round_trips_over_the_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tool the client declares (with example utterances and an answer template) is heard,
    called over the stream (ToolCall out, ToolResult in) and its result spoken, offline."""
    monkeypatch.setenv("SONICWIRE_ORDERS_DB", str(tmp_path / "orders.db"))
    asked: list[dict[str, object]] = []

    def store_hours(args: dict[str, object]) -> dict[str, object]:
        asked.append(args)
        return {"store": str(args["store"]).title(), "opens": "09:00", "closes": "18:30"}

    tool = ClientTool(
        store_hours,
        description="Opening hours of one of our stores.",
        parameters={
            "type": "object",
            "properties": {"store": {"enum": ["lyon", "paris", "berlin"]}},
            "required": ["store"],
        },
        examples=(
            "when does the {store} store open",
            "what are the opening hours of the {store} store",
            "is the {store} store open",
        ),
        answer_template="The {store} store opens at {opens} and closes at {closes}.",
    )
    # One of the examples, with a slot value: how well new phrasings are understood is the
    # benchmark's question (bench/local_eval.py), not this test's.
    wav = read_wav(
        _spoken_wav("what are the opening hours of the paris store", tmp_path / "hours.wav")
    )
    async with running_server(backend="local") as server:
        async with Client(server.target) as client:
            result = await talk(client, wav, tools={"store_hours": tool})
    calls = _tool_calls(result)
    assert [(c.name, c.arguments, c.executor) for c in calls] == [
        ("store_hours", {"store": "paris"}, ToolExecutor.CLIENT)
    ], result.text(Role.USER)
    assert asked == [{"store": "paris"}]
    assert result.text(Role.ASSISTANT) == "The Paris store opens at 9:00 AM and closes at 6:30 PM."
