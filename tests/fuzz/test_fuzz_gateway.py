"""Fuzz: the WebSocket gateway's JSON protocol (``sonicwire.gateway.protocol``), with no I/O.

Inbound, any frame a browser or a hostile client can send (binary, text that is not JSON, JSON
of any shape, objects with every known action and field holding any JSON value, deeply nested
documents within the gateway's frame limit) must parse into a command or raise
`InvalidMessage` with a stable reason: anything else escapes to the connection's crash handler
and closes the socket with 1011. Outbound, every event the server can send (any
`ConverseResponse`, through the client SDK's `event_from_proto`) renders to JSON text.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sonicwire.client.events import event_from_proto
from sonicwire.gateway.config import GatewayConfig
from sonicwire.gateway.protocol import (
    InvalidMessage,
    ProtocolLimits,
    close_code_for_status,
    encode,
    parse_message,
    render_event,
)
from sonicwire.v1 import voice_service_pb2 as pb

from .strategies import CASES, FUZZ_SETTINGS, json_values, message_strategy, text

ACTIONS = ["config", "audiostream", "text", "playback", "tool_result", "end"]
FIELDS = [
    "action",
    "audioData",
    "text",
    "turn_id",
    "played_ms",
    "tool_call_id",
    "content",
    "is_error",
    "sample_rate",
    "output_sample_rate",
    "channels",
    "format",
    "voice",
    "system_prompt",
    "barge_in",
    "barge_in_min_speech_ms",
    "echo_cancellation",
    "noise_suppression",
    "vad",
    "endpointing",
    "server_tools",
    "client_tools",
    "resume_session_id",
]
REASON = re.compile(r"[A-Z][A-Z0-9_]*")
# The largest text frame the gateway hands to the parser (bigger ones close with 1009).
MAX_FRAME = GatewayConfig().max_message_bytes

_special_values = st.sampled_from(
    [
        None,
        True,
        0,
        -1,
        1.5,
        2**64,
        1e308,
        "",
        "AAAA",
        "AAA",
        "====",
        "\u0000",
        [],
        {},
        {"engine": "silero", "confidence": 2},
        [{"name": "x", "parameters": {"type": "object"}}],
        [{"name": "1bad"}],
    ]
)
_values = st.one_of(_special_values, json_values)
_objects = st.builds(
    lambda action, fields: {"action": action, **fields} if action is not None else fields,
    st.one_of(st.sampled_from(ACTIONS), st.none(), _values),
    st.dictionaries(st.sampled_from(FIELDS) | text, _values, max_size=6),
)


def _nested(depth: int, kind: str, inside: str) -> str:
    """A document nested ``depth`` levels deep, inside a valid message's field."""
    open_, close = ("[", "]") if kind == "array" else ('{"a":', "}")
    body = open_ * depth + "1" + close * depth
    return inside.replace("@", body)


_nesting = st.builds(
    _nested,
    # Up to the depth the parser survives today (see the explicit test below for deeper).
    st.integers(1, 400),
    st.sampled_from(["array", "object"]),
    st.sampled_from(
        [
            "@",
            '{"action": "config", "vad": @}',
            '{"action": "tool_result", "tool_call_id": "c1", "content": @}',
            '{"action": "config", "client_tools": [{"name": "t", "parameters": @}]}',
        ]
    ),
)
frames = st.one_of(
    st.binary(max_size=2_000),
    text,
    _objects.map(json.dumps),
    _objects.map(lambda o: json.dumps(o)[:-1]),  # truncated JSON
    _nesting,
)


@FUZZ_SETTINGS
@given(frames)
def test_any_frame_parses_or_raises_invalid_message(frame: str | bytes) -> None:
    CASES["gateway: inbound frames"] += 1
    limits = ProtocolLimits()
    try:
        command = parse_message(frame, limits)
    except InvalidMessage as error:
        assert REASON.fullmatch(error.reason), error.reason
        assert error.message
        event = error.to_event()
        assert event["event"] == "error" and event["reason"] == error.reason
        encode(event)
        CASES[f"  gateway inbound: InvalidMessage/{error.reason}"] += 1
        return
    CASES[f"  gateway inbound: {type(command).__name__}"] += 1


responses = message_strategy(pb.ConverseResponse.DESCRIPTOR)


@FUZZ_SETTINGS
@given(responses, st.sampled_from([8_000, 16_000, 24_000, 48_000]))
def test_any_server_event_renders_to_json(response: Any, rate: int) -> None:
    CASES["gateway: outbound events"] += 1
    event = event_from_proto(response)
    if event is None:
        return
    rendered = render_event(event, rate)
    assert isinstance(rendered.get("event"), str)
    assert json.loads(encode(rendered))["event"] == rendered["event"]


@FUZZ_SETTINGS
@given(st.one_of(st.sampled_from(["OK", "INTERNAL", "UNAVAILABLE", ""]), text), text)
def test_any_status_maps_to_a_close_code(code: str, reason: str) -> None:
    CASES["gateway: status -> close code"] += 1
    close = close_code_for_status(code, reason)
    assert close == 1000 or 1001 <= close <= 1015 or 4000 <= close <= 4999


@pytest.mark.parametrize("kind", ["array", "object"])
def test_deeply_nested_json_within_the_frame_limit_is_invalid_not_a_crash(kind: str) -> None:
    """Found by the property above: ~3 KB of nested arrays (well under the 128 KiB frame
    limit) makes ``json.loads`` raise RecursionError, which is not an `InvalidMessage`: the
    connection's crash handler closes the socket with 1011 and logs a traceback per message
    (BUG, see the report: gateway inbound.py `parse_message`)."""
    depth = 5_000
    frame = _nested(depth, kind, '{"action": "config", "vad": @}')
    assert len(frame.encode()) < MAX_FRAME
    with pytest.raises(InvalidMessage) as error:
        parse_message(frame)
    assert error.value.reason in ("INVALID_JSON", "INVALID_MESSAGE", "INVALID_FIELD")
