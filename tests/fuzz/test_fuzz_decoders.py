"""Fuzz: raw bytes into the decoders and the pure conversion that follows them.

Whatever arrives on the wire, ``FromString`` either decodes it or raises protobuf's
``DecodeError``; after that, ``convert.settings_from_config`` / ``client_tools_from_config``,
the session's tool set-up and ``convert.event_from_request`` raise only `ProtocolError`, and a
config they accept renders back (``effective_config``) without error. Inputs are random bytes
and serialized fuzzed messages that are then mutated (bytes flipped, cut, spliced), which
reaches far deeper into the message than random bytes alone.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import DecodeError
from hypothesis import given
from hypothesis import strategies as st

from sonicwire.server import convert
from sonicwire.server.core.errors import ProtocolError
from sonicwire.server.tools.bridge import SessionTools
from sonicwire.server.tools.registry import build_registry
from sonicwire.server.tools.spec import ToolSpecError
from sonicwire.v1 import voice_service_pb2 as pb

from .strategies import CASES, FUZZ_SETTINGS, requests, session_configs

REGISTRY = build_registry(())


def _mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    """Apply (kind, position, value) edits: overwrite a byte, cut, or insert."""
    buffer = bytearray(data)
    for kind, position, value in edits:
        at = position % (len(buffer) + 1)
        match kind:
            case 0 if buffer:
                buffer[at % len(buffer)] = value
            case 1:
                del buffer[at : at + 1 + value % 8]
            case _:
                buffer[at:at] = bytes([value]) * (1 + value % 3)
    return bytes(buffer)


_edits = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 2**16), st.integers(0, 255)), max_size=6
)


def wire_bytes(messages: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """Random bytes, or a serialized fuzzed message with random edits."""
    return st.one_of(
        st.binary(max_size=600),
        st.builds(_mutate, messages.map(lambda m: m.SerializeToString()), _edits),
    )


def _check_config(config: pb.SessionConfig) -> str:
    try:
        settings = convert.settings_from_config(config)
        client_tools = convert.client_tools_from_config(config)
    except ProtocolError as error:
        return f"ProtocolError/{error.reason}"
    try:
        SessionTools(
            REGISTRY,
            client_tools,
            server_tools=list(config.server_tools) or None,
            on_outcome=lambda outcome: None,
            session_id="fuzz",
        )
    except ToolSpecError:
        return "ToolSpecError (CLIENT_TOOL_INVALID)"
    rendered = convert.effective_config(settings, config, "voice")
    assert rendered.input_format.sample_rate_hz == settings.input_sample_rate
    return "accepted"


@FUZZ_SETTINGS
@given(wire_bytes(session_configs))
def test_session_config_bytes_decode_or_fail_with_protocol_error(data: bytes) -> None:
    CASES["decoder: SessionConfig bytes"] += 1
    try:
        config = pb.SessionConfig.FromString(data)
    except DecodeError:
        CASES["  SessionConfig: DecodeError"] += 1
        return
    CASES[f"  SessionConfig: {_check_config(config).split('/')[0]}"] += 1


@FUZZ_SETTINGS
@given(session_configs)
def test_any_session_config_is_accepted_or_rejected_with_a_reason(config: pb.SessionConfig) -> None:
    CASES["decoder: SessionConfig messages"] += 1
    CASES[f"  config: {_check_config(config)}"] += 1


@FUZZ_SETTINGS
@given(wire_bytes(requests))
def test_converse_request_bytes_decode_or_fail_with_protocol_error(data: bytes) -> None:
    CASES["decoder: ConverseRequest bytes"] += 1
    try:
        request = pb.ConverseRequest.FromString(data)
    except DecodeError:
        CASES["  ConverseRequest: DecodeError"] += 1
        return
    try:
        convert.event_from_request(request)
    except ProtocolError as error:
        assert error.reason in ("CONFIG_ALREADY_RECEIVED", "REQUEST_EMPTY"), error.reason
        CASES[f"  ConverseRequest: ProtocolError/{error.reason}"] += 1
        return
    if request.WhichOneof("request") == "config":
        raise AssertionError("a second config must be refused")
    CASES["  ConverseRequest: event"] += 1
