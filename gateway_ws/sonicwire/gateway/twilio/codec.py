"""Twilio Media Streams wire format, with no I/O: JSON text frames in, typed events out, and
the three messages the gateway sends back.

From Twilio (every message but ``connected`` carries ``sequenceNumber``, a decimal string
counting from 1, and ``streamSid``)::

    {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    {"event": "start", "sequenceNumber": "1", "streamSid": "MZ..", "start": {
        "streamSid": "MZ..", "accountSid": "AC..", "callSid": "CA..", "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {"voice": "..."}}}
    {"event": "media", "sequenceNumber": "3", "streamSid": "MZ..", "media": {
        "track": "inbound", "chunk": "1", "timestamp": "5", "payload": "<base64 mu-law>"}}
    {"event": "mark", "sequenceNumber": "4", "streamSid": "MZ..", "mark": {"name": "t1:120"}}
    {"event": "dtmf", "sequenceNumber": "5", "streamSid": "MZ..", "dtmf": {
        "track": "inbound_track", "digit": "1"}}
    {"event": "stop", "sequenceNumber": "6", "streamSid": "MZ..", "stop": {
        "accountSid": "AC..", "callSid": "CA.."}}

To Twilio: ``media`` (base64 mu-law to play), ``mark`` (echoed back once the audio sent
before it has played, or at once when a ``clear`` drops it) and ``clear`` (drop everything
buffered). `parse_message` raises `TwilioProtocolError` for anything malformed; an event kind
it does not know becomes `UnknownEvent` (Twilio may add kinds; they are not errors).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DTMF_DIGITS",
    "MAX_PAYLOAD_BYTES",
    "TWILIO_ENCODING",
    "TWILIO_SAMPLE_RATE",
    "Connected",
    "Dtmf",
    "Mark",
    "Media",
    "Start",
    "Stop",
    "TwilioEvent",
    "TwilioProtocolError",
    "UnknownEvent",
    "clear_message",
    "mark_message",
    "media_message",
    "parse_message",
]

TWILIO_ENCODING = "audio/x-mulaw"
"""The only media format Twilio Media Streams use, both ways."""
TWILIO_SAMPLE_RATE = 8000
MAX_PAYLOAD_BYTES = 16_000
"""Largest decoded ``media`` payload accepted (2 s of mu-law; Twilio sends 160-byte chunks)."""
DTMF_DIGITS = frozenset("0123456789*#ABCD")
_MAX_NAME = 256
_MAX_PARAMETERS = 64


class TwilioProtocolError(ValueError):
    """A message that is not valid Twilio Media Streams JSON (the call is closed)."""


@dataclass(frozen=True, slots=True)
class Connected:
    protocol: str
    version: str


@dataclass(frozen=True, slots=True)
class Start:
    sequence: int | None
    stream_sid: str
    account_sid: str
    call_sid: str
    tracks: tuple[str, ...]
    encoding: str
    sample_rate: int
    channels: int
    custom_parameters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Media:
    sequence: int | None
    stream_sid: str
    track: str
    chunk: int
    timestamp_ms: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Mark:
    sequence: int | None
    stream_sid: str
    name: str


@dataclass(frozen=True, slots=True)
class Dtmf:
    sequence: int | None
    stream_sid: str
    track: str
    digit: str


@dataclass(frozen=True, slots=True)
class Stop:
    sequence: int | None
    stream_sid: str
    account_sid: str
    call_sid: str


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    event: str
    sequence: int | None


TwilioEvent = Connected | Start | Media | Mark | Dtmf | Stop | UnknownEvent


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TwilioProtocolError(f"{where} must be a JSON object")
    return value


def _string(obj: dict[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = obj.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise TwilioProtocolError(f"{where}.{key} must be a non-empty string")
    if len(value) > _MAX_NAME:
        raise TwilioProtocolError(f"{where}.{key} is longer than {_MAX_NAME} characters")
    return value


def _counter(obj: dict[str, Any], key: str, where: str, *, required: bool) -> int | None:
    """Twilio writes counters as decimal strings ("1"); plain numbers are accepted too."""
    value = obj.get(key)
    if value is None:
        if required:
            raise TwilioProtocolError(f"{where}.{key} is missing")
        return None
    if isinstance(value, bool):
        raise TwilioProtocolError(f"{where}.{key} must be a number")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        number = int(value)
    else:
        raise TwilioProtocolError(f"{where}.{key} must be a decimal number, got {value!r}")
    if number < 0:
        raise TwilioProtocolError(f"{where}.{key} must not be negative")
    return number


def _parameters(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    params = _object(value, "start.customParameters")
    if len(params) > _MAX_PARAMETERS:
        raise TwilioProtocolError(f"more than {_MAX_PARAMETERS} customParameters")
    out: dict[str, str] = {}
    for key, item in params.items():
        if not isinstance(item, str):
            raise TwilioProtocolError(f"customParameters.{key} must be a string")
        out[key] = item
    return out


def _start(message: dict[str, Any], sequence: int | None) -> Start:
    start = _object(message.get("start"), "start")
    media_format = _object(start.get("mediaFormat"), "start.mediaFormat")
    tracks = start.get("tracks", ["inbound"])
    if not isinstance(tracks, list) or not all(isinstance(t, str) for t in tracks):
        raise TwilioProtocolError("start.tracks must be a list of strings")
    encoding = _string(media_format, "encoding", "start.mediaFormat")
    rate = _counter(media_format, "sampleRate", "start.mediaFormat", required=True)
    channels = _counter(media_format, "channels", "start.mediaFormat", required=False)
    return Start(
        sequence=sequence,
        stream_sid=_string(start, "streamSid", "start"),
        account_sid=_string(start, "accountSid", "start"),
        call_sid=_string(start, "callSid", "start"),
        tracks=tuple(tracks),
        encoding=encoding,
        sample_rate=rate or 0,
        channels=1 if channels is None else channels,
        custom_parameters=_parameters(start.get("customParameters")),
    )


def _media(message: dict[str, Any], sequence: int | None, stream_sid: str) -> Media:
    media = _object(message.get("media"), "media")
    payload_text = media.get("payload")
    if not isinstance(payload_text, str):
        raise TwilioProtocolError("media.payload must be a base64 string")
    if len(payload_text) > MAX_PAYLOAD_BYTES * 4 // 3 + 4:
        raise TwilioProtocolError(f"media.payload exceeds {MAX_PAYLOAD_BYTES} bytes")
    try:
        payload = base64.b64decode(payload_text, validate=True)
    except (binascii.Error, ValueError):
        raise TwilioProtocolError("media.payload is not valid base64") from None
    return Media(
        sequence=sequence,
        stream_sid=stream_sid,
        track=_string(media, "track", "media", required=False) or "inbound",
        chunk=_counter(media, "chunk", "media", required=False) or 0,
        timestamp_ms=_counter(media, "timestamp", "media", required=False) or 0,
        payload=payload,
    )


def parse_message(data: str | bytes) -> TwilioEvent:
    """Parse one WebSocket message from Twilio.

    Raises:
        TwilioProtocolError: not a JSON object, a binary frame, or a known event with missing
            or mistyped fields.
    """
    if isinstance(data, bytes):
        raise TwilioProtocolError("binary frames are not part of the Twilio protocol")
    try:
        message = json.loads(data)
    except (json.JSONDecodeError, RecursionError):
        raise TwilioProtocolError("message is not valid JSON") from None
    message = _object(message, "message")
    event = message.get("event")
    if not isinstance(event, str) or not event:
        raise TwilioProtocolError("message has no 'event'")
    if event == "connected":
        return Connected(
            protocol=str(message.get("protocol", "")), version=str(message.get("version", ""))
        )
    sequence = _counter(message, "sequenceNumber", "message", required=False)
    stream_sid = message.get("streamSid", "")
    if not isinstance(stream_sid, str):
        raise TwilioProtocolError("streamSid must be a string")
    match event:
        case "start":
            return _start(message, sequence)
        case "media":
            return _media(message, sequence, stream_sid)
        case "mark":
            mark = _object(message.get("mark"), "mark")
            return Mark(sequence, stream_sid, _string(mark, "name", "mark"))
        case "dtmf":
            dtmf = _object(message.get("dtmf"), "dtmf")
            digit = _string(dtmf, "digit", "dtmf")
            if digit not in DTMF_DIGITS:
                raise TwilioProtocolError(f"dtmf.digit {digit!r} is not a keypad key")
            track = _string(dtmf, "track", "dtmf", required=False) or "inbound_track"
            return Dtmf(sequence, stream_sid, track, digit)
        case "stop":
            stop = _object(message.get("stop", {}), "stop")
            return Stop(
                sequence,
                stream_sid,
                _string(stop, "accountSid", "stop", required=False),
                _string(stop, "callSid", "stop", required=False),
            )
        case _:
            return UnknownEvent(event[:_MAX_NAME], sequence)


def _encode(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


def media_message(stream_sid: str, payload: bytes) -> str:
    """Audio for Twilio to play: ``payload`` is raw mu-law at 8 kHz."""
    return _encode(
        {
            "event": "media",
            "streamSid": stream_sid,
            "media": {"payload": base64.b64encode(payload).decode("ascii")},
        }
    )


def mark_message(stream_sid: str, name: str) -> str:
    """A mark Twilio echoes once the audio sent before it has played."""
    return _encode({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def clear_message(stream_sid: str) -> str:
    """Drop every buffered audio message at Twilio (pending marks come back at once)."""
    return _encode({"event": "clear", "streamSid": stream_sid})
