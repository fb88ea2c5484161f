"""Hypothesis strategies built from the proto descriptors, plus shared fuzz settings.

`message_strategy(descriptor)` walks a message's fields (scalars, enums including values the
schema does not name, nested messages, repeated fields, oneofs) and builds any message of that
type. `OVERRIDES` sharpens a few fields where uniform values would almost never reach the
interesting code: audio of sizes around the chunk limit, tool names and JSON schemas, weird
floats in the VAD settings, sample rates. `request_streams()` builds whole `Converse` streams.

Every property counts its cases in `CASES`; ``tests/fuzz/conftest.py`` prints the counts.
"""

from __future__ import annotations

import functools
import json
import math
import os
import random
from collections import Counter
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from sonicwire.v1 import voice_service_pb2 as pb

__all__ = [
    "CASES",
    "EXAMPLES",
    "FUZZ_SETTINGS",
    "audio_bytes",
    "json_values",
    "later_requests",
    "message_strategy",
    "request_streams",
    "requests",
    "session_configs",
    "text",
]

# `SONICWIRE_FUZZ_EXAMPLES=5000 pytest tests/fuzz` runs a longer campaign; CI keeps ~200.
EXAMPLES = int(os.environ.get("SONICWIRE_FUZZ_EXAMPLES", "200"))
# Deterministic by default (CI); SONICWIRE_FUZZ_RANDOM=1 explores new inputs on every run.
_RANDOM = os.environ.get("SONICWIRE_FUZZ_RANDOM", "") not in ("", "0")

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not _RANDOM,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        HealthCheck.filter_too_much,
    ],
)

CASES: Counter[str] = Counter()
"""Cases run per property (shrinking included), printed at the end of the session."""

# Every character a protobuf string may hold (surrogates cannot be encoded as UTF-8).
text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40)

_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


def _integers(low: int, high: int) -> st.SearchStrategy[int]:
    edges = [v for v in (0, 1, -1, low, high, 2**15, 2**16, 2**31 - 1) if low <= v <= high]
    return st.one_of(st.sampled_from(edges), st.integers(low, high), st.integers(0, 100_000))


# --- field overrides ------------------------------------------------------------------------


@functools.cache
def _speech() -> bytes:
    """About 1.5 s of recorded speech at 16 kHz ("Front Center" from alsa-utils)."""
    import numpy as np
    import soxr

    from tests.conftest import ALSA_SAMPLES, read_wav_mono16

    pcm, rate = read_wav_mono16(ALSA_SAMPLES / "Front_Center.wav")
    samples = soxr.resample(np.frombuffer(pcm, dtype=np.int16).astype(np.float32), rate, 16_000)
    return np.clip(samples, -32768, 32767).astype(np.int16).tobytes()


def _make_audio(size: int, kind: str, seed: int) -> bytes:
    match kind:
        case "silence":
            return bytes(size)
        case "noise":
            return random.Random(seed).randbytes(size)
        case "speech":  # real speech from a random offset, so the echo backend answers
            speech = _speech()
            start = (seed % len(speech)) & ~1
            return (speech[start:] + speech * (size // len(speech) + 1))[:size]
        case _:  # a loud tone, which the VAD may take for speech
            period = 2 * (20 + seed % 60)
            wave = bytes(((i // period) % 2) * 0x3F for i in range(2 * period))
            return (wave * (size // len(wave) + 1))[:size]


audio_bytes: st.SearchStrategy[bytes] = st.builds(
    _make_audio,
    st.one_of(
        st.integers(0, 2_000),  # typical 20-60 ms chunks, odd sizes included
        st.sampled_from([1, 639, 640, 641, 65_534, 65_535, 65_536, 65_537, 65_538]),
        st.integers(65_537, 250_000),  # over the chunk limit, under the message limit
        st.integers(2_000, 24_000),  # up to 0.75 s at 16 kHz
    ),
    st.sampled_from(["silence", "noise", "tone", "speech"]),
    st.integers(0, 2**32),
)

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=12,
)

_schemas = st.one_of(
    st.just(""),
    st.just('{"type": "object"}'),
    json_values.map(json.dumps),
    st.dictionaries(
        st.sampled_from(["type", "properties", "required", "additionalProperties", "$ref"]),
        json_values,
        max_size=4,
    ).map(json.dumps),
    st.builds(
        lambda props, required: json.dumps(
            {"type": "object", "properties": props, "required": required}
        ),
        st.dictionaries(text, st.sampled_from([{"type": "string"}, {"type": 3}, {}]), max_size=3),
        st.lists(text, max_size=3),
    ),
    text,  # not JSON at all
)

_tool_names = st.one_of(
    st.from_regex(r"[a-zA-Z][a-zA-Z0-9_-]{0,63}", fullmatch=True),
    st.sampled_from(["get_date_time", "track_order", "x" * 65, "", "1abc", "a b"]),
    text,
)

_floats32 = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e-45, 3.4e38, 0.5, 1.0]),
    st.floats(width=32, allow_nan=True, allow_infinity=True),
)

_sample_rates = st.one_of(
    st.sampled_from([0, 8_000, 16_000, 24_000, 48_000, 44_100, 1, -16_000]),
    st.integers(-(2**31), 2**31 - 1),
)


def _big_text(size: int) -> str:
    return "é" * size


OVERRIDES: dict[str, st.SearchStrategy[Any]] = {
    "sonicwire.v1.AudioInput.audio": audio_bytes,
    "sonicwire.v1.AudioFormat.sample_rate_hz": _sample_rates,
    "sonicwire.v1.AudioFormat.channels": st.sampled_from([0, 1, 2, -1, 2**31 - 1]),
    "sonicwire.v1.ToolDefinition.name": _tool_names,
    "sonicwire.v1.ToolDefinition.parameters_json_schema": _schemas,
    "sonicwire.v1.ToolDefinition.timeout_ms": st.sampled_from([0, 1, 50, -1, 2**31 - 1]),
    "sonicwire.v1.SessionConfig.server_tools": st.lists(_tool_names, max_size=3),
    "sonicwire.v1.SessionConfig.system_prompt": st.one_of(
        text, st.sampled_from([19_999, 20_000, 20_001]).map(_big_text)
    ),
    "sonicwire.v1.TextInput.text": st.one_of(
        text, st.sampled_from([" ", "\n", "\u200b"]), st.sampled_from([2048, 2049]).map(_big_text)
    ),
    "sonicwire.v1.ToolResult.content": st.one_of(text, json_values.map(json.dumps)),
    "sonicwire.v1.PlaybackUpdate.turn_id": st.one_of(st.sampled_from(["t1", "t2", "u1"]), text),
}
for _name in ("confidence", "start_secs", "stop_secs", "min_volume"):
    OVERRIDES[f"sonicwire.v1.VadSettings.{_name}"] = _floats32
for _name in ("temperature", "top_p"):
    OVERRIDES[f"sonicwire.v1.InferenceSettings.{_name}"] = _floats32


# --- descriptor walking -----------------------------------------------------------------------


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    match field.type:
        case FieldDescriptor.TYPE_DOUBLE:
            return st.floats(allow_nan=True, allow_infinity=True)
        case FieldDescriptor.TYPE_FLOAT:
            return _floats32
        case FieldDescriptor.TYPE_BOOL:
            return st.booleans()
        case FieldDescriptor.TYPE_STRING:
            return text
        case FieldDescriptor.TYPE_BYTES:
            return st.binary(max_size=64)
        case FieldDescriptor.TYPE_ENUM:
            named = [value.number for value in field.enum_type.values]
            # proto3 enums are open: numbers the schema does not name must be handled too.
            return st.one_of(st.sampled_from(named), st.integers(-3, 50))
        case kind if kind in _INT_RANGES:
            return _integers(*_INT_RANGES[kind])
    raise TypeError(f"unsupported field type {field.type} of {field.full_name}")


def _field_value(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    override = OVERRIDES.get(field.full_name)
    if override is not None:
        return override
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        element: st.SearchStrategy[Any] = message_strategy(field.message_type, depth + 1)
    else:
        element = _scalar(field)
    if field.is_repeated:
        return st.lists(element, max_size=3)
    return element


def _assign(message: Message, field: FieldDescriptor, value: Any) -> None:
    if field.is_repeated:
        target = getattr(message, field.name)
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            for item in value:
                target.add().CopyFrom(item)
        else:
            target.extend(value)
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        getattr(message, field.name).CopyFrom(value)
    else:
        setattr(message, field.name, value)


_MAX_DEPTH = 4


def message_strategy(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Any message of type ``descriptor``: each field set or not, one member of each oneof."""
    cls = GetMessageClass(descriptor)
    if depth > _MAX_DEPTH:
        return st.builds(cls)
    plain = {f.name: f for f in descriptor.fields if f.containing_oneof is None}
    optional = {name: _field_value(field, depth) for name, field in plain.items()}
    oneofs = [
        st.one_of(
            st.none(),
            *(st.tuples(st.just(field), _field_value(field, depth)) for field in oneof.fields),
        )
        for oneof in descriptor.oneofs
    ]

    def build(values: dict[str, Any], chosen: tuple[Any, ...]) -> Message:
        message = cls()
        for name, value in values.items():
            _assign(message, plain[name], value)
        for choice in chosen:
            if choice is not None:
                _assign(message, choice[0], choice[1])
        return message

    return st.builds(build, st.fixed_dictionaries({}, optional=optional), st.tuples(*oneofs))


# --- streams ----------------------------------------------------------------------------------

session_configs: st.SearchStrategy[pb.SessionConfig] = message_strategy(pb.SessionConfig.DESCRIPTOR)  # type: ignore[assignment]

requests: st.SearchStrategy[pb.ConverseRequest] = message_strategy(pb.ConverseRequest.DESCRIPTOR)  # type: ignore[assignment]


def _first(config: pb.SessionConfig) -> pb.ConverseRequest:
    return pb.ConverseRequest(config=config)


def _stream(first: pb.ConverseRequest, rest: list[pb.ConverseRequest]) -> list[pb.ConverseRequest]:
    return [first, *rest]


def _member(name: str) -> st.SearchStrategy[pb.ConverseRequest]:
    """Requests carrying the oneof member ``name``, its fields fuzzed."""
    field = pb.ConverseRequest.DESCRIPTOR.fields_by_name[name]
    return message_strategy(field.message_type).map(
        lambda inner: pb.ConverseRequest(**{name: inner})
    )


_audio_requests = _member("audio")
_speech_requests = st.builds(
    lambda size, seed: pb.ConverseRequest(
        audio=pb.AudioInput(audio=_make_audio(size * 2, "speech", seed))
    ),
    st.integers(1_600, 24_000),
    st.integers(0, 2**32),
)
# After the config: mostly what a live stream carries, sometimes anything at all.
later_requests: st.SearchStrategy[pb.ConverseRequest] = st.one_of(
    _audio_requests,
    _audio_requests,
    _member("text"),
    _member("tool_result"),
    _member("playback"),
    requests,
)


def request_streams() -> st.SearchStrategy[list[pb.ConverseRequest]]:
    """Whole streams: mostly a config first (plain or fuzzed), then any requests."""
    first = st.one_of(
        st.just(pb.ConverseRequest(config=pb.SessionConfig())),
        session_configs.map(_first),
        requests,
    )
    plain = st.just(pb.ConverseRequest(config=pb.SessionConfig()))
    return st.one_of(
        st.just([]),
        st.builds(_stream, first, st.lists(later_requests, max_size=6)),
        # A live conversation: speech the echo backend answers (paced audio, turns, barge-in
        # by typed text), mixed with anything else.
        st.builds(
            _stream,
            plain,
            st.lists(st.one_of(_speech_requests, later_requests), min_size=1, max_size=6),
        ),
    )
