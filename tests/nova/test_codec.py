"""The pure Nova codec: input events (golden), history limits, output decoding."""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Callable

import pytest

from sonicwire.server.backends.base import ToolDescription
from sonicwire.server.backends.nova_sonic import codec
from sonicwire.server.backends.nova_sonic.decoder import OutputDecoder, decode_json
from sonicwire.server.core import events as ev
from sonicwire.server.core.history import Message
from sonicwire.server.core.settings import InferenceSettings
from tests.nova.conftest import check_golden

TOOL = ToolDescription(
    "get_date_time",
    "Current date and time in a time zone.",
    {"type": "object", "properties": {"timezone": {"type": "string"}}, "required": []},
)


def names() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"content-{next(counter)}"


def test_scripted_conversation_matches_golden() -> None:
    """The exact input sequence for: setup with tools and history, audio, a tool result,
    a typed turn, orderly close."""
    new_name = names()
    setup = codec.StreamSetup(
        voice="tiffany",
        output_sample_rate=24_000,
        system_prompt="You are a helpful assistant.",
        inference=InferenceSettings(
            max_tokens=512, temperature=0.5, endpointing_sensitivity="HIGH"
        ),
        tools=(TOOL,),
        nova2=True,
    )
    prompt = "prompt-1"
    events = codec.opening_events(setup, prompt, new_name)
    events += codec.history_events(
        prompt,
        [Message(ev.Role.USER, "My name is Ada."), Message(ev.Role.ASSISTANT, "Hello Ada.")],
        new_name,
    )
    audio = new_name()
    events.append(codec.audio_start(prompt, audio))
    events += [codec.audio_input(prompt, audio, bytes([i]) * 4) for i in range(2)]
    events += codec.tool_result(prompt, new_name(), "tool-use-1", '{"time": "12:00"}')
    events += codec.text_turn(prompt, new_name(), "Thanks!")
    events += codec.closing_events(prompt, audio)
    check_golden("input_conversation.jsonl", events)
    assert all(json.loads(codec.encode(e)) == e for e in events)


def test_tools_carry_the_schema_as_a_json_string() -> None:
    setup = codec.StreamSetup(voice="matthew", output_sample_rate=16_000, tools=(TOOL,))
    start = codec.prompt_start("p", setup)["event"]["promptStart"]
    spec = start["toolConfiguration"]["tools"][0]["toolSpec"]
    assert isinstance(spec["inputSchema"]["json"], str)
    assert json.loads(spec["inputSchema"]["json"]) == TOOL.parameters
    assert start["toolUseOutputConfiguration"] == {"mediaType": "application/json"}
    no_tools = codec.prompt_start(
        "p", codec.StreamSetup(voice="matthew", output_sample_rate=16_000)
    )
    assert "toolConfiguration" not in no_tools["event"]["promptStart"]


def test_nova1_gets_no_turn_detection_and_defaults_fill_inference() -> None:
    settings = InferenceSettings(endpointing_sensitivity="LOW")
    nova1 = codec.session_start(settings, nova2=False)["event"]["sessionStart"]
    assert nova1 == {"inferenceConfiguration": codec.DEFAULT_INFERENCE}
    nova2 = codec.session_start(settings, nova2=True)["event"]["sessionStart"]
    assert nova2["turnDetectionConfiguration"] == {"endpointingSensitivity": "LOW"}
    with pytest.raises(ValueError):
        codec.session_start(InferenceSettings(endpointing_sensitivity="LOUD"), nova2=True)


@pytest.mark.parametrize("text", ["", "short", "word " * 700, "é" * 1500, "x" * 5000])
def test_split_text_respects_the_byte_limit_and_loses_nothing(text: str) -> None:
    pieces = codec.split_text(text)
    assert "".join(pieces) == text
    assert all(len(p.encode()) <= codec.MAX_TEXT_INPUT_BYTES for p in pieces)


def test_history_starts_with_user_alternates_and_fits_40kb() -> None:
    messages = [Message(ev.Role.ASSISTANT, "Welcome!")]
    for i in range(60):
        messages.append(Message(ev.Role.USER, f"question {i} " + "q" * 500))
        messages.append(Message(ev.Role.USER, "and more"))  # merged with the previous one
        messages.append(Message(ev.Role.ASSISTANT, f"answer {i} " + "a" * 900))
    events = codec.history_events("p", messages, names())
    starts = [e["event"]["contentStart"] for e in events if "contentStart" in e["event"]]
    roles = [s["role"] for s in starts]
    assert roles[0] == "USER"
    assert all(a != b for a, b in itertools.pairwise(roles))
    assert all(s["interactive"] is False for s in starts)
    texts = [e["event"]["textInput"]["content"] for e in events if "textInput" in e["event"]]
    assert all(len(t.encode()) <= codec.MAX_TEXT_INPUT_BYTES for t in texts)
    assert sum(len(t.encode()) for t in texts) <= codec.MAX_HISTORY_BYTES
    assert "answer 59" in texts[-2] + texts[-1]  # the newest messages are kept
    assert not any("question 0 " in t for t in texts)  # the oldest are dropped


def test_empty_history_replays_nothing() -> None:
    assert codec.history_events("p", [Message(ev.Role.ASSISTANT, "Hi")], names()) == []


# --- output ---------------------------------------------------------------------------------


def out(name: str, **fields: object) -> dict[str, object]:
    return {"event": {name: fields}}


def block(kind: str, role: str, stage: str, content_id: str, **more: object) -> dict[str, object]:
    return out(
        "contentStart",
        type=kind,
        role=role,
        contentId=content_id,
        additionalModelFields=json.dumps({"generationStage": stage}),
        **more,
    )


def end(content_id: str, kind: str, reason: str) -> dict[str, object]:
    return out("contentEnd", contentId=content_id, type=kind, stopReason=reason)


def answer(prefix: str, sentences: list[str], pcm: bytes) -> list[dict[str, object]]:
    events: list[dict[str, object]] = []
    for i, sentence in enumerate(sentences):
        reason = "END_TURN" if i == len(sentences) - 1 else "PARTIAL_TURN"
        events += [
            block("TEXT", "ASSISTANT", "SPECULATIVE", f"{prefix}s{i}"),
            out("textOutput", contentId=f"{prefix}s{i}", role="ASSISTANT", content=sentence),
            end(f"{prefix}s{i}", "TEXT", "PARTIAL_TURN"),
            block("AUDIO", "ASSISTANT", "FINAL", f"{prefix}a{i}"),
            out("audioOutput", contentId=f"{prefix}a{i}", content=base64.b64encode(pcm).decode()),
            end(f"{prefix}a{i}", "AUDIO", reason),
            block("TEXT", "ASSISTANT", "FINAL", f"{prefix}f{i}"),
            out("textOutput", contentId=f"{prefix}f{i}", role="ASSISTANT", content=sentence),
            end(f"{prefix}f{i}", "TEXT", reason),
        ]
    return events


def decode_all(decoder: OutputDecoder, events: list[dict[str, object]]) -> list[ev.BackendEvent]:
    return [e for event in events for e in decoder.decode(event)]


def test_a_spoken_answer_ends_once_after_its_last_final_text() -> None:
    pcm = b"\x01\x00" * 10
    events = [
        out("completionStart"),
        block("TEXT", "USER", "FINAL", "u1"),
        out("textOutput", contentId="u1", role="USER", content="What time is it?"),
        end("u1", "TEXT", "END_TURN"),
        *answer("x", ["It is noon.", "Anything else?"], pcm),
        out("usageEvent", totalInputTokens=5, totalOutputTokens=7, totalTokens=12),
        out("completionEnd"),
    ]
    decoded = decode_all(OutputDecoder(24_000), events)
    assert decoded == [
        ev.UserTranscript("What time is it?", True),
        ev.AssistantText("It is noon.", False),
        ev.AssistantAudio(pcm, 24_000),
        ev.AssistantText("It is noon.", True),
        ev.AssistantText("Anything else?", False),
        ev.AssistantAudio(pcm, 24_000),
        ev.AssistantText("Anything else?", True),
        ev.AssistantTurnEnded(ev.StopReason.END_TURN),
        ev.UsageReported(5, 7, 12),
    ]


def test_tool_use_keeps_the_turn_open_and_passes_arguments_as_a_string() -> None:
    decoder = OutputDecoder(24_000)
    decoded = decode_all(
        decoder,
        [
            block("TOOL", "TOOL", "FINAL", "t1"),
            out(
                "toolUse",
                contentId="t1",
                toolName="get_date_time",
                toolUseId="id-1",
                content='{"timezone": "UTC"}',
            ),
            end("t1", "TOOL", "TOOL_USE"),
        ],
    )
    assert decoded == [ev.ToolRequested("id-1", "get_date_time", '{"timezone": "UTC"}')]
    assert decoder.turn_open
    rest = decode_all(decoder, answer("y", ["Noon."], b"\x00\x00"))
    assert rest[-1] == ev.AssistantTurnEnded(ev.StopReason.END_TURN)


def test_interrupted_marker_and_stop_reason_make_one_interruption_and_drop_leftovers() -> None:
    decoder = OutputDecoder(24_000)
    pcm = b"\x02\x00" * 4
    decode_all(decoder, answer("a", ["One."], pcm)[:5])  # mid-answer
    decoded = decode_all(
        decoder,
        [
            end("aa0", "AUDIO", "INTERRUPTED"),
            block("TEXT", "ASSISTANT", "FINAL", "i1"),
            out("textOutput", contentId="i1", role="ASSISTANT", content='{ "interrupted" : true }'),
            end("i1", "TEXT", "INTERRUPTED"),
            block("AUDIO", "ASSISTANT", "FINAL", "late"),
            out("audioOutput", contentId="late", content=base64.b64encode(pcm).decode()),
            end("late", "AUDIO", "END_TURN"),
        ],
    )
    assert decoded == [ev.AssistantInterrupted()]
    assert not decoder.turn_open
    # The user's next turn lifts the suppression.
    nxt = decode_all(
        decoder,
        [
            block("TEXT", "USER", "FINAL", "u2"),
            out("textOutput", contentId="u2", role="USER", content="Stop."),
        ],
    )
    assert nxt == [ev.UserTranscript("Stop.", True)]
    assert decode_all(decoder, answer("b", ["OK."], pcm))[-1] == ev.AssistantTurnEnded(
        ev.StopReason.END_TURN
    )


def test_cancel_response_ends_an_open_answer_once_and_drops_the_rest() -> None:
    decoder = OutputDecoder(16_000)
    pcm = b"\x03\x00" * 4
    events = answer("c", ["First.", "Second."], pcm)
    decode_all(decoder, events[:5])
    assert decoder.cancel_response() == [ev.AssistantTurnEnded(ev.StopReason.INTERRUPTED)]
    assert decoder.cancel_response() == []
    assert decode_all(decoder, events[5:]) == []


def test_unknown_and_malformed_events_are_ignored() -> None:
    decoder = OutputDecoder(24_000)
    assert decoder.decode(out("speechStarted", offset=3)) == []
    assert decoder.decode({"event": {}}) == []
    assert decoder.decode({"nonsense": 1}) == []
    assert decoder.decode(out("audioOutput", content="***not base64***")) == []
    assert decode_json(b"\xff\xfe") is None
    assert decode_json(b"[1, 2]") is None
