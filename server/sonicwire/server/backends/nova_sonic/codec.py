"""Sonicwire -> Nova Sonic: the input events of the protocol. Pure: no I/O, no clock, no SDK.

Input side (what Sonicwire sends): functions that return one event as a dict, or a list of
events for a whole content block; `encode` turns one into the bytes the SDK sends. A stream
opens with `opening_events` (``sessionStart``, ``promptStart``, system prompt), then
`history_events` (replayed conversation), then `audio_start` and `audio_input` forever;
`text_turn` and `tool_result` are content blocks sent mid-session; `closing_events` end it.

Output side: ``decoder.py`` (Nova's output events -> core events).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sonicwire.server.backends.base import ToolDescription
from sonicwire.server.core import events as ev
from sonicwire.server.core.history import Message
from sonicwire.server.core.settings import InferenceSettings

__all__ = [
    "DEFAULT_INFERENCE",
    "INPUT_SAMPLE_RATE",
    "MAX_HISTORY_BYTES",
    "MAX_TEXT_INPUT_BYTES",
    "StreamSetup",
    "audio_input",
    "audio_start",
    "closing_events",
    "content_end",
    "encode",
    "history_events",
    "iter_names",
    "opening_events",
    "split_text",
    "text_block",
    "text_turn",
    "tool_choice",
    "tool_result",
    "tool_result_object",
]

INPUT_SAMPLE_RATE = 16_000
# Nova's documented limits for replayed history: about 1 KB per textInput, 40 KB in all.
MAX_TEXT_INPUT_BYTES = 1024
MAX_HISTORY_BYTES = 40 * 1024
# At most this many history messages are replayed (the AWS continuation sample's cap).
MAX_HISTORY_MESSAGES = 40
# AWS's samples use these; Nova requires all three in sessionStart.
DEFAULT_INFERENCE = {"maxTokens": 1024, "topP": 0.9, "temperature": 0.7}
_SENSITIVITIES = frozenset({"HIGH", "MEDIUM", "LOW"})


@dataclass(frozen=True, slots=True)
class StreamSetup:
    """Everything that goes into a stream's opening events (fixed for the conversation)."""

    voice: str
    output_sample_rate: int
    system_prompt: str = ""
    inference: InferenceSettings = field(default_factory=InferenceSettings)
    tools: Sequence[ToolDescription] = ()
    # Nova 2 takes turn-detection settings and interactive text input; Nova 1 rejects both.
    nova2: bool = True
    # The rate of the user audio Nova gets (`audio_start`): 16 kHz, or 8 kHz for a telephone
    # call brought back down to the caller's band (both models take 8000, 16000 and 24000).
    input_sample_rate: int = INPUT_SAMPLE_RATE


def encode(event: dict[str, Any]) -> bytes:
    """The UTF-8 JSON bytes of one input event, as `BidirectionalInputPayloadPart` carries."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


def _event(name: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {"event": {name: fields}}


# --- input: opening -----------------------------------------------------------------------


def session_start(inference: InferenceSettings, *, nova2: bool) -> dict[str, Any]:
    config: dict[str, Any] = dict(DEFAULT_INFERENCE)
    if inference.max_tokens is not None:
        config["maxTokens"] = inference.max_tokens
    if inference.top_p is not None:
        config["topP"] = inference.top_p
    if inference.temperature is not None:
        config["temperature"] = inference.temperature
    fields: dict[str, Any] = {"inferenceConfiguration": config}
    sensitivity = (inference.endpointing_sensitivity or "").upper()
    if sensitivity and nova2:
        if sensitivity not in _SENSITIVITIES:
            raise ValueError(f"endpointing sensitivity must be HIGH, MEDIUM or LOW: {sensitivity}")
        fields["turnDetectionConfiguration"] = {"endpointingSensitivity": sensitivity}
    return _event("sessionStart", fields)


def prompt_start(prompt_name: str, setup: StreamSetup) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "promptName": prompt_name,
        "textOutputConfiguration": {"mediaType": "text/plain"},
        "audioOutputConfiguration": {
            "mediaType": "audio/lpcm",
            "sampleRateHertz": setup.output_sample_rate,
            "sampleSizeBits": 16,
            "channelCount": 1,
            "voiceId": setup.voice,
            "encoding": "base64",
            "audioType": "SPEECH",
        },
    }
    if setup.tools:
        fields["toolUseOutputConfiguration"] = {"mediaType": "application/json"}
        fields["toolConfiguration"] = {
            "tools": [
                {
                    "toolSpec": {
                        "name": tool.name,
                        "description": tool.description,
                        # Nova wants the JSON schema as a string, not an object.
                        "inputSchema": {"json": json.dumps(tool.parameters)},
                    }
                }
                for tool in setup.tools
            ]
        }
        choice = tool_choice(setup.inference)
        if choice is not None:
            fields["toolConfiguration"]["toolChoice"] = choice
    return _event("promptStart", fields)


def tool_choice(inference: InferenceSettings) -> dict[str, Any] | None:
    """Nova's ``toolChoice`` (Bedrock's ToolChoice shape: ``{"auto": {}}``, ``{"any": {}}`` or
    ``{"tool": {"name": ...}}``), or None to leave Nova's default (auto)."""
    match inference.tool_choice:
        case "auto" | "any" as mode:
            return {mode: {}}
        case "tool":
            return {"tool": {"name": inference.tool_choice_name}}
        case _:
            return None


def opening_events(
    setup: StreamSetup, prompt_name: str, new_name: Callable[[], str]
) -> list[dict[str, Any]]:
    """``sessionStart``, ``promptStart`` and the system prompt (if any), in order."""
    events = [session_start(setup.inference, nova2=setup.nova2), prompt_start(prompt_name, setup)]
    if setup.system_prompt.strip():
        events += text_block(prompt_name, new_name(), "SYSTEM", setup.system_prompt, split=False)
    return events


# --- input: text blocks, history ----------------------------------------------------------


def split_text(text: str, limit: int = MAX_TEXT_INPUT_BYTES) -> list[str]:
    """Cut ``text`` into pieces of at most ``limit`` UTF-8 bytes, preferring word boundaries.
    Joining the pieces gives ``text`` back exactly."""
    pieces: list[str] = []
    rest = text
    while len(rest.encode()) > limit:
        cut = len(rest.encode()[:limit].decode(errors="ignore"))  # whole characters only
        space = rest.rfind(" ", 0, cut)
        if space > cut // 2:
            cut = space + 1  # keep the space with the left piece
        pieces.append(rest[:cut])
        rest = rest[cut:]
    if rest or not pieces:
        pieces.append(rest)
    return pieces


def text_block(
    prompt_name: str,
    content_name: str,
    role: str,
    text: str,
    *,
    interactive: bool = False,
    split: bool = True,
) -> list[dict[str, Any]]:
    """A TEXT content block: ``contentStart``, one ``textInput`` per <=1 KB piece,
    ``contentEnd``."""
    events = [
        _event(
            "contentStart",
            {
                "promptName": prompt_name,
                "contentName": content_name,
                "type": "TEXT",
                "interactive": interactive,
                "role": role,
                "textInputConfiguration": {"mediaType": "text/plain"},
            },
        )
    ]
    for piece in split_text(text) if split else [text]:
        events.append(
            _event(
                "textInput",
                {"promptName": prompt_name, "contentName": content_name, "content": piece},
            )
        )
    events.append(content_end(prompt_name, content_name))
    return events


def _replayable(messages: Sequence[Message]) -> list[Message]:
    """The newest messages that fit Nova's history rules: at most `MAX_HISTORY_BYTES` of text
    and `MAX_HISTORY_MESSAGES` messages,
    starting with USER, roles alternating (consecutive same-role messages are merged)."""
    merged: list[Message] = []
    for message in messages:
        text = message.text.strip()
        if not text:
            continue
        if merged and merged[-1].role is message.role:
            merged[-1] = Message(message.role, f"{merged[-1].text} {text}")
        else:
            merged.append(Message(message.role, text))
    kept: list[Message] = []
    budget = MAX_HISTORY_BYTES
    for message in reversed(merged):
        if len(kept) >= MAX_HISTORY_MESSAGES:
            break
        size = len(message.text.encode())
        if size > budget:
            if budget > 0 and not kept:
                # A single huge message: keep its end, the part nearest the present.
                tail = message.text.encode()[-budget:].decode(errors="ignore")
                kept.append(Message(message.role, tail.lstrip()))
            break
        kept.append(message)
        budget -= size
    kept.reverse()
    while kept and kept[0].role is not ev.Role.USER:
        kept.pop(0)
    return kept


def history_events(
    prompt_name: str, messages: Sequence[Message], new_name: Callable[[], str]
) -> list[dict[str, Any]]:
    """Replay ``messages`` as non-interactive USER/ASSISTANT text blocks within Nova's limits
    (see `_replayable`); returns no events for an empty history."""
    events: list[dict[str, Any]] = []
    for message in _replayable(messages):
        role = "USER" if message.role is ev.Role.USER else "ASSISTANT"
        events += text_block(prompt_name, new_name(), role, message.text)
    return events


def text_turn(prompt_name: str, content_name: str, text: str) -> list[dict[str, Any]]:
    """A typed user turn (Nova 2): an interactive USER text block."""
    return text_block(prompt_name, content_name, "USER", text, interactive=True)


# --- input: audio, tools, close -----------------------------------------------------------


def audio_start(
    prompt_name: str, content_name: str, sample_rate: int = INPUT_SAMPLE_RATE
) -> dict[str, Any]:
    """Open the long-lived interactive USER audio block (mono s16le at ``sample_rate``)."""
    return _event(
        "contentStart",
        {
            "promptName": prompt_name,
            "contentName": content_name,
            "type": "AUDIO",
            "interactive": True,
            "role": "USER",
            "audioInputConfiguration": {
                "mediaType": "audio/lpcm",
                "sampleRateHertz": sample_rate,
                "sampleSizeBits": 16,
                "channelCount": 1,
                "audioType": "SPEECH",
                "encoding": "base64",
            },
        },
    )


def audio_input(prompt_name: str, content_name: str, pcm: bytes) -> dict[str, Any]:
    return _event(
        "audioInput",
        {
            "promptName": prompt_name,
            "contentName": content_name,
            "content": base64.b64encode(pcm).decode(),
        },
    )


def content_end(prompt_name: str, content_name: str) -> dict[str, Any]:
    return _event("contentEnd", {"promptName": prompt_name, "contentName": content_name})


def tool_result(
    prompt_name: str, content_name: str, tool_use_id: str, result_json: str
) -> list[dict[str, Any]]:
    """A TOOL block answering ``toolUseId``; the result travels as a JSON *string*.

    Nova's parser wants a JSON *object*: anything else (a list, a bare string or number, or
    text that is not JSON at all) is wrapped as ``{"result": ...}``.
    """
    result_json = tool_result_object(result_json)
    return [
        _event(
            "contentStart",
            {
                "promptName": prompt_name,
                "contentName": content_name,
                "type": "TOOL",
                "interactive": False,
                "role": "TOOL",
                "toolResultInputConfiguration": {
                    "toolUseId": tool_use_id,
                    "type": "TEXT",
                    "textInputConfiguration": {"mediaType": "text/plain"},
                },
            },
        ),
        _event(
            "toolResult",
            {"promptName": prompt_name, "contentName": content_name, "content": result_json},
        ),
        content_end(prompt_name, content_name),
    ]


def tool_result_object(result_json: str) -> str:
    """``result_json`` as the text of a JSON object: objects pass unchanged, other values are
    wrapped as ``{"result": value}`` (invalid JSON as ``{"result": "<the text>"}``)."""
    try:
        value = json.loads(result_json)
    except ValueError:
        value = result_json
    if isinstance(value, dict):
        return result_json
    return json.dumps({"result": value}, ensure_ascii=False, separators=(",", ":"))


def closing_events(prompt_name: str, audio_content_name: str | None) -> list[dict[str, Any]]:
    """End the audio block (if open), the prompt and the session, in that order."""
    events = [content_end(prompt_name, audio_content_name)] if audio_content_name else []
    return [*events, _event("promptEnd", {"promptName": prompt_name}), _event("sessionEnd", {})]


def iter_names(events: Sequence[dict[str, Any]]) -> Iterator[str]:
    """The event names of ``events``, in order (handy in logs and tests)."""
    for event in events:
        body = event.get("event", {})
        yield next(iter(body), "?")
