"""Fuzz the hardening limits (issue 14): tool schemas, nested JSON, invalid UTF-8, rates.

- Any tool schema text (random JSON documents, nesting up to thousands of levels, broken JSON)
  goes through the server's config path (`validate.check_config_shape`, then
  `convert.client_tools_from_config`): the result is a parsed tool or a `ProtocolError` with one
  of the documented reasons, never `RecursionError` or another exception, and the message stays
  bounded.
- The bracket counter agrees with the real nesting depth of every valid JSON document.
- Serialized requests with invalid UTF-8 written into string fields, and random bytes, go
  through the servicer's lenient deserializer: a message or the undecodable sentinel, never an
  exception.
- Random sequences of typed text and tool results at random times: `InputPolicy` never admits
  more than ``burst + rate * elapsed`` of either, and refuses only with its stable reasons.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from sonicwire.server import convert, validate
from sonicwire.server.core import events as ev
from sonicwire.server.core.errors import SonicwireError
from sonicwire.server.limits import InputLimits, InputPolicy
from sonicwire.server.servicer import _UNDECODABLE_CONVERSE, _lenient
from sonicwire.v1 import voice_service_pb2 as pb

from .strategies import CASES, FUZZ_SETTINGS, requests

LIMITS = validate.ConfigLimits()
SCHEMA_REASONS = {
    "CLIENT_TOOL_INVALID",
    "TOOL_SCHEMA_TOO_DEEP",
    "TOOL_SCHEMA_TOO_LARGE",
    "TOO_MANY_TOOLS",
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=60,
)


def _nested(depth: int, opener: str) -> str:
    if opener == "[":
        return "[" * depth + "]" * depth
    if opener == "{":
        return '{"a":' * depth + "1" + "}" * depth
    # A schema-shaped chain, the form a real client would send.
    return '{"type":"object","properties":{"a":' * depth + "{}" + "}}" * depth


schema_texts = st.one_of(
    json_values.map(json.dumps),
    st.builds(
        json.dumps,
        st.fixed_dictionaries(
            {
                "type": st.just("object"),
                "properties": st.dictionaries(
                    st.text(min_size=1, max_size=8), json_values, max_size=6
                ),
            }
        ),
    ),
    st.builds(_nested, st.integers(0, 5000), st.sampled_from(["[", "{", "schema"])),
    st.text(max_size=200),  # mostly not JSON at all
    st.builds(
        lambda s, n: s[:n],
        st.builds(_nested, st.integers(1, 500), st.just("schema")),
        st.integers(0, 20_000),
    ),  # cut in the middle
)


def _depth(value: Any) -> int:
    """Nesting depth of a decoded JSON value, without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


@FUZZ_SETTINGS
@given(st.lists(schema_texts, min_size=1, max_size=3))
def test_any_tool_schema_is_a_tool_or_a_protocol_error(schemas: list[str]) -> None:
    CASES["hardening: tool schemas"] += 1
    config = pb.SessionConfig(
        client_tools=[
            pb.ToolDefinition(name=f"t{i}", parameters_json_schema=schema)
            for i, schema in enumerate(schemas)
        ]
    )
    try:
        validate.check_config_shape(config, LIMITS)
        tools = convert.client_tools_from_config(config)
    except SonicwireError as error:
        assert error.reason in SCHEMA_REASONS, error.reason
        assert len(error.message) <= 1024
        CASES[f"  schema: {error.reason}"] += 1
        return
    assert len(tools) == len(schemas)
    CASES["  schema: accepted"] += 1


@FUZZ_SETTINGS
@given(json_values, st.integers(1, 40))
def test_bracket_depth_agrees_with_the_json_depth(value: Any, limit: int) -> None:
    CASES["hardening: nested JSON depth"] += 1
    text = json.dumps(value)
    try:
        validate.check_schema_text("t", text, limit)
    except SonicwireError as error:
        assert error.reason == "TOOL_SCHEMA_TOO_DEEP"
        assert _depth(value) > limit
        return
    assert _depth(value) <= limit


_BAD_UTF8 = [b"\xff", b"\xfe\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80"]


def _corrupt_strings(data: bytes, positions: list[int], bad: list[bytes]) -> bytes:
    out = bytearray(data)
    for position, junk in zip(positions, bad, strict=False):
        at = position % (len(out) + 1)
        out[at:at] = junk
    return bytes(out)


@FUZZ_SETTINGS
@given(
    st.one_of(
        st.builds(
            _corrupt_strings,
            requests.map(lambda m: m.SerializeToString()),
            st.lists(st.integers(0, 10_000), min_size=1, max_size=4),
            st.lists(st.sampled_from(_BAD_UTF8), min_size=1, max_size=4),
        ),
        # A config whose voice is exactly an invalid UTF-8 string (lengths kept consistent).
        st.sampled_from(_BAD_UTF8).map(
            lambda junk: b"\x0a" + bytes([len(junk) + 2, 0x1A, len(junk)]) + junk
        ),
        st.binary(max_size=512),
    )
)
def test_lenient_deserializer_never_raises(data: bytes) -> None:
    CASES["hardening: invalid UTF-8 / corrupt requests"] += 1
    parsed = _lenient(pb.ConverseRequest, _UNDECODABLE_CONVERSE)(data)
    if parsed is _UNDECODABLE_CONVERSE:
        CASES["  request: REQUEST_UNDECODABLE"] += 1
    else:
        assert isinstance(parsed, pb.ConverseRequest)
        CASES["  request: decoded"] += 1


_events = st.sampled_from(
    [ev.TextReceived("hi"), ev.ToolResultReceived("c", "{}", False), ev.AudioReceived(b"\0\0")]
)


@FUZZ_SETTINGS
@given(
    st.floats(0.5, 50),
    st.integers(1, 10),
    st.lists(
        st.tuples(_events, st.one_of(st.just(0.0), st.floats(0, 0.5))), min_size=10, max_size=200
    ),
)
def test_input_policy_never_admits_more_than_its_rate(
    rate: float, burst: int, sequence: list[tuple[ev.ClientEvent, float]]
) -> None:
    CASES["hardening: text/tool-result/audio rates"] += 1
    limits = InputLimits(
        text_rate_per_s=rate,
        text_burst=burst,
        tool_result_rate_per_s=rate,
        tool_result_burst=burst,
        audio_rate_per_s=rate,
        audio_burst=burst,
    )
    policy = InputPolicy(limits, 0.0)
    now = 0.0
    admitted = {"text": 0, "result": 0, "audio": 0}
    reasons = {
        "text": "TEXT_RATE_EXCEEDED",
        "result": "TOOL_RESULT_RATE_EXCEEDED",
        "audio": "AUDIO_RATE_EXCEEDED",
    }
    for event, gap in sequence:
        now += gap
        kind = {ev.TextReceived: "text", ev.AudioReceived: "audio"}.get(type(event), "result")
        try:
            policy.check(event, now)
        except SonicwireError as error:
            assert error.reason == reasons[kind]
            CASES[f"  rate: {error.reason}"] += 1
            return  # the stream ends at the first refusal
        admitted[kind] += 1  # (the fuzzed audio is 1 sample: always a short chunk)
        assert admitted[kind] <= burst + rate * now + 1e-6
    CASES["  rate: all admitted"] += 1
