"""Conversion of every ConverseResponse kind into its typed event."""

from __future__ import annotations

import dataclasses

import pytest

from sonicwire.client import (
    AudioOutput,
    GoingAway,
    Interruption,
    InterruptionSource,
    Role,
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
from sonicwire.client.events import event_from_proto
from sonicwire.v1 import voice_service_pb2 as pb


def test_session_started_carries_limits_tools_and_effective_config() -> None:
    msg = pb.ConverseResponse(
        session_started=pb.SessionStarted(
            session_id="abc",
            backend="local",
            tools=["a", "b"],
            limits=pb.SessionLimits(
                max_audio_chunk_bytes=65536, max_session_seconds=600, idle_timeout_seconds=30
            ),
            config=pb.SessionConfig(output_format=pb.AudioFormat(sample_rate_hz=24000)),
        )
    )
    event = event_from_proto(msg)
    assert isinstance(event, SessionStarted)
    assert (event.session_id, event.backend, event.tools) == ("abc", "local", ("a", "b"))
    assert event.limits.max_session_seconds == 600
    assert event.output_sample_rate_hz == 24000
    assert event.input_sample_rate_hz == 16000  # unset means 16 kHz


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            pb.ConverseResponse(audio=pb.AudioOutput(audio=b"\x01\x00", turn_id="t", offset_ms=20)),
            AudioOutput(audio=b"\x01\x00", turn_id="t", offset_ms=20),
        ),
        (
            pb.ConverseResponse(
                transcript=pb.Transcript(role=pb.ROLE_USER, text="hi", final=True, turn_id="t")
            ),
            Transcript(role=Role.USER, text="hi", final=True, turn_id="t"),
        ),
        (
            pb.ConverseResponse(
                speech_activity=pb.SpeechActivity(
                    kind=pb.SPEECH_ACTIVITY_KIND_STOPPED, offset_ms=900
                )
            ),
            SpeechActivity(kind=SpeechActivityKind.STOPPED, offset_ms=900),
        ),
        (
            pb.ConverseResponse(
                interruption=pb.Interruption(
                    turn_id="t", played_ms=300, source=pb.INTERRUPTION_SOURCE_BARGE_IN
                )
            ),
            Interruption(turn_id="t", played_ms=300, source=InterruptionSource.BARGE_IN),
        ),
        (
            pb.ConverseResponse(
                tool_call=pb.ToolCall(
                    id="c",
                    name="n",
                    arguments_json="{}",
                    executor=pb.TOOL_EXECUTOR_SERVER,
                    turn_id="t",
                )
            ),
            ToolCall(
                id="c", name="n", arguments_json="{}", executor=ToolExecutor.SERVER, turn_id="t"
            ),
        ),
        (
            pb.ConverseResponse(
                tool_call_result=pb.ToolCallResult(
                    id="c",
                    name="n",
                    status=pb.TOOL_STATUS_TIMEOUT,
                    result_json="{}",
                    duration_ms=7,
                )
            ),
            ToolCallResult(
                id="c", name="n", status=ToolStatus.TIMEOUT, result_json="{}", duration_ms=7
            ),
        ),
        (
            pb.ConverseResponse(
                turn_complete=pb.TurnComplete(
                    turn_id="t",
                    stop_reason=pb.STOP_REASON_INTERRUPTED,
                    latency=pb.TurnLatency(first_audio_ms=1, transcript_ms=2, tools_ms=3),
                    audio_ms=40,
                )
            ),
            TurnComplete(
                turn_id="t",
                stop_reason=StopReason.INTERRUPTED,
                latency=TurnLatency(1, 2, 3),
                audio_ms=40,
            ),
        ),
        (
            pb.ConverseResponse(usage=pb.Usage(input_tokens=1, output_tokens=2, total_tokens=3)),
            Usage(1, 2, 3),
        ),
        (
            pb.ConverseResponse(going_away=pb.GoingAway(reason="drain", grace_ms=5000)),
            GoingAway(reason="drain", grace_ms=5000),
        ),
        (
            pb.ConverseResponse(warning=pb.Warning(reason="X", message="y")),
            Warning(reason="X", message="y"),
        ),
    ],
)
def test_each_kind_converts(message: pb.ConverseResponse, expected: object) -> None:
    assert event_from_proto(message) == expected


def test_events_are_frozen() -> None:
    event = Usage(1, 2, 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.total_tokens = 4  # type: ignore[misc]


def test_unknown_enum_values_and_kinds_are_tolerated() -> None:
    future = pb.ConverseResponse(transcript=pb.Transcript(role=99, text="x"))  # type: ignore[arg-type]
    event = event_from_proto(future)
    assert isinstance(event, Transcript) and event.role is Role.UNSPECIFIED
    assert event_from_proto(pb.ConverseResponse()) is None


def test_tool_call_arguments_parse_leniently() -> None:
    def call(arguments_json: str) -> ToolCall:
        return ToolCall("c", "n", arguments_json, ToolExecutor.CLIENT, "t")

    assert call('{"order_id": "42"}').arguments == {"order_id": "42"}
    assert call("").arguments == {}
    assert call("[1]").arguments == {}
    assert call("not json").arguments == {}


def test_speech_activity_started_property() -> None:
    assert SpeechActivity(SpeechActivityKind.STARTED, 0).started
    assert not SpeechActivity(SpeechActivityKind.STOPPED, 0).started


def test_enums_print_as_their_names_and_compare_as_numbers() -> None:
    assert str(Role.USER) == "USER" and f"{StopReason.END_TURN}" == "END_TURN"
    assert Role.USER == pb.ROLE_USER
