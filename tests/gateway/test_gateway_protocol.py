"""Golden tests of the pure wire format: inbound messages -> commands or errors, events -> JSON.

The expected outputs live in ``golden/*.json``; set ``SONICWIRE_UPDATE_GOLDEN=1`` to rewrite
them after an intended change (and review the diff).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from sonicwire.client.events import (
    AudioOutput,
    Event,
    GoingAway,
    Interruption,
    InterruptionSource,
    Resumed,
    Role,
    SessionLimits,
    SessionStarted,
    SpeechActivity,
    SpeechActivityKind,
    StopReason,
    ToolCall,
    ToolCallResult,
    ToolExecutor,
    ToolStatus,
    Transcript,
    TurnComplete,
    TurnLatency,
    Usage,
    Warning,
)
from sonicwire.gateway.protocol import (
    CloseCode,
    Configure,
    InvalidMessage,
    ProtocolLimits,
    close_code_for_status,
    encode,
    parse_message,
    render_event,
    split_audio,
    upstream_error_event,
)
from sonicwire.v1 import voice_service_pb2 as pb
from tests.golden import updating_golden

GOLDEN = Path(__file__).with_name("golden")


def _check_golden(name: str, actual: Any) -> None:
    path = GOLDEN / name
    if updating_golden():
        path.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n")
    assert actual == json.loads(path.read_text())


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


def _outcome(frame: str | bytes) -> dict[str, Any]:
    try:
        command = parse_message(frame, ProtocolLimits(max_text_bytes=16))
    except InvalidMessage as error:
        return {"error": {"code": error.code, "reason": error.reason, "message": error.message}}
    return {"command": type(command).__name__, "fields": _jsonable(command)}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


INBOUND: list[tuple[str, str | bytes]] = [
    (
        "seed audiostream",
        json.dumps({"action": "audiostream", "audioData": _b64(b"\x01\x00\xff\x7f")}),
    ),
    (
        "audiostream extra field ignored",
        json.dumps({"action": "audiostream", "audioData": _b64(b"\0\0"), "seq": 3}),
    ),
    ("binary frame", b"\x01\x00\x02\x00"),
    ("text", json.dumps({"action": "text", "text": "héllo"})),
    ("text at limit", json.dumps({"action": "text", "text": "é" * 8})),
    ("text over limit", json.dumps({"action": "text", "text": "é" * 9})),
    ("playback", json.dumps({"action": "playback", "turn_id": "t1", "played_ms": 1200})),
    ("playback float ms", json.dumps({"action": "playback", "turn_id": "t1", "played_ms": 5.0})),
    (
        "playback with output latency",
        json.dumps(
            {"action": "playback", "turn_id": "t1", "played_ms": 5, "output_latency_ms": 42}
        ),
    ),
    (
        "tool result string",
        json.dumps({"action": "tool_result", "tool_call_id": "c1", "content": "42"}),
    ),
    (
        "tool result object",
        json.dumps(
            {
                "action": "tool_result",
                "tool_call_id": "c1",
                "content": {"ok": True},
                "is_error": False,
            }
        ),
    ),
    ("end", json.dumps({"action": "end"})),
    ("config empty", json.dumps({"action": "config"})),
    (
        "config full",
        json.dumps(
            {
                "action": "config",
                "sample_rate": 48000,
                "output_sample_rate": 24000,
                "channels": 1,
                "format": "pcm_s16le",
                "voice": "matthew",
                "system_prompt": "Be brief.",
                "barge_in": False,
                "barge_in_min_speech_ms": 300,
                "echo_cancellation": False,
                "noise_suppression": True,
                "vad": {
                    "engine": "silero",
                    "confidence": 0.6,
                    "start_secs": 0.1,
                    "stop_secs": 0.8,
                    "min_volume": 0.5,
                    "speech_pad_ms": 200,
                },
                "endpointing": "low",
                "server_tools": ["get_date_time"],
                "client_tools": [
                    {
                        "name": "lookup_order",
                        "description": "Look up an order.",
                        "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
                        "timeout_ms": 5000,
                    },
                    {"name": "ping"},
                ],
                "resume_session_id": "sw_123",
            }
        ),
    ),
    ("not json", "hello"),
    ("array", "[]"),
    ("no action", "{}"),
    ("action number", json.dumps({"action": 1})),
    ("unknown action", json.dumps({"action": "Audiostream"})),
    ("missing audioData", json.dumps({"action": "audiostream"})),
    ("audioData list", json.dumps({"action": "audiostream", "audioData": [1]})),
    ("bad base64", json.dumps({"action": "audiostream", "audioData": "a b"})),
    ("odd byte count", json.dumps({"action": "audiostream", "audioData": _b64(b"\x01")})),
    ("empty binary", b""),
    ("odd binary", b"\x01"),
    ("empty text", json.dumps({"action": "text", "text": ""})),
    ("playback bool", json.dumps({"action": "playback", "turn_id": "t", "played_ms": False})),
    ("playback too large", json.dumps({"action": "playback", "turn_id": "t", "played_ms": 10**12})),
    ("turn id not string", json.dumps({"action": "playback", "turn_id": 7, "played_ms": 1})),
    (
        "playback output latency too large",
        json.dumps(
            {"action": "playback", "turn_id": "t", "played_ms": 1, "output_latency_ms": 10_001}
        ),
    ),
    ("config unknown field", json.dumps({"action": "config", "samplerate": 16000})),
    ("config rate 44100", json.dumps({"action": "config", "sample_rate": 44100})),
    ("config output rate string", json.dumps({"action": "config", "output_sample_rate": "16000"})),
    ("config vad not object", json.dumps({"action": "config", "vad": "fast"})),
    ("config vad unknown", json.dumps({"action": "config", "vad": {"aggressiveness": 3}})),
    ("config endpointing", json.dumps({"action": "config", "endpointing": "fastest"})),
    ("config barge_in string", json.dumps({"action": "config", "barge_in": "no"})),
    ("config tools not list", json.dumps({"action": "config", "server_tools": "all"})),
    ("config tool not object", json.dumps({"action": "config", "client_tools": ["x"]})),
    (
        "config tool params not object",
        json.dumps({"action": "config", "client_tools": [{"name": "x", "parameters": []}]}),
    ),
]


def test_inbound_golden() -> None:
    _check_golden("inbound.json", {name: _outcome(frame) for name, frame in INBOUND})


SESSION_CONFIG = pb.SessionConfig(
    input_format=pb.AudioFormat(sample_rate_hz=16000),
    output_format=pb.AudioFormat(sample_rate_hz=24000),
)
EVENTS: list[tuple[str, Event]] = [
    (
        "session_started",
        SessionStarted(
            session_id="sw_1",
            backend="echo",
            tools=("get_date_time",),
            limits=SessionLimits(65536, 0, 60),
            config=SESSION_CONFIG,
        ),
    ),
    ("media", AudioOutput(audio=b"\x01\x00\x02\x00", turn_id="t1", offset_ms=40)),
    ("transcript", Transcript(role=Role.USER, text="hi", final=False, turn_id="u1")),
    ("speech_activity", SpeechActivity(kind=SpeechActivityKind.STOPPED, offset_ms=1340)),
    (
        "interruption",
        Interruption(turn_id="t1", played_ms=480, source=InterruptionSource.BARGE_IN),
    ),
    (
        "tool_call",
        ToolCall(
            id="c1",
            name="track_order",
            arguments_json='{"order_id": "A1"}',
            executor=ToolExecutor.CLIENT,
            turn_id="t2",
        ),
    ),
    (
        "tool_call bad json",
        ToolCall(
            id="c2", name="x", arguments_json="{oops", executor=ToolExecutor.SERVER, turn_id=""
        ),
    ),
    (
        "tool_result",
        ToolCallResult(
            id="c1", name="track_order", status=ToolStatus.TIMEOUT, result_json="", duration_ms=5000
        ),
    ),
    (
        "turn_complete",
        TurnComplete(
            turn_id="t1",
            stop_reason=StopReason.INTERRUPTED,
            latency=TurnLatency(first_audio_ms=310, transcript_ms=120, tools_ms=0),
            audio_ms=480,
        ),
    ),
    ("usage", Usage(input_tokens=10, output_tokens=20, total_tokens=30)),
    ("going_away", GoingAway(reason="server draining", grace_ms=10000)),
    ("warning", Warning(reason="TOOL_RESULT_UNEXPECTED", message="no such call")),
    (
        "resumed",
        Resumed(
            session_id="sw_1",
            attempt=2,
            reason="GOING_AWAY",
            audio_resent_ms=1000,
            audio_lost_ms=0,
            session=SessionStarted(
                session_id="sw_1",
                backend="echo",
                tools=(),
                limits=SessionLimits(65536, 0, 60),
                config=SESSION_CONFIG,
                resume_token="tok-2",
            ),
        ),
    ),
]


def test_outbound_golden() -> None:
    rendered = {name: render_event(event, 24000) for name, event in EVENTS}
    statuses = [
        ("UNAUTHENTICATED", "UNAUTHENTICATED", "invalid API key"),
        ("UNAVAILABLE", "SERVER_DRAINING", "the server shut down"),
        ("UNAVAILABLE", "BACKEND_UNAVAILABLE", "backend down"),
        ("INVALID_ARGUMENT", "AUDIO_FORMAT_UNSUPPORTED", "bad rate"),
        ("RESOURCE_EXHAUSTED", "SESSION_LIMIT_REACHED", "too many"),
        ("DEADLINE_EXCEEDED", "", "idle"),
        ("INTERNAL", "", "boom"),
        ("", "", "no status"),
    ]
    errors = {}
    for code, reason, message in statuses:
        event, close = upstream_error_event(code, reason, message)
        errors[f"{code or 'none'}/{reason or 'none'}"] = {"event": event, "close_code": int(close)}
    _check_golden("outbound.json", {"events": rendered, "upstream_errors": errors})


def test_every_event_type_is_rendered() -> None:
    covered = {type(event) for _, event in EVENTS}
    assert covered == set(Event.__args__)


def test_close_codes_are_in_their_ranges() -> None:
    for code in CloseCode:
        assert 1000 <= code < 1015 or 4000 <= code < 5000
    assert close_code_for_status("PERMISSION_DENIED") == 4403
    assert close_code_for_status("CANCELLED") == 1001
    assert close_code_for_status("SOMETHING_NEW") == 4500


def test_encode_is_compact_utf8() -> None:
    assert (
        encode({"event": "transcript", "text": "héllo"}) == '{"event":"transcript","text":"héllo"}'
    )


@pytest.mark.parametrize(
    ("size", "limit", "chunks"), [(10, 4, [4, 4, 2]), (8, 5, [4, 4]), (0, 4, [])]
)
def test_split_audio_keeps_whole_samples(size: int, limit: int, chunks: list[int]) -> None:
    assert [len(c) for c in split_audio(bytes(size), limit)] == chunks


def test_split_audio_needs_room_for_a_sample() -> None:
    with pytest.raises(ValueError):
        list(split_audio(b"\0\0", 1))


def test_configure_output_rate_defaults_to_input_rate() -> None:
    assert Configure(sample_rate_hz=48000).effective_output_rate_hz == 48000
    assert (
        Configure(sample_rate_hz=48000, output_sample_rate_hz=16000).effective_output_rate_hz
        == 16000
    )
