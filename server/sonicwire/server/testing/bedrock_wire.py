"""Bedrock's event-stream wire format, seen from the server side (for the fake endpoint).

`InvokeModelWithBidirectionalStream` frames both directions as AWS event-stream messages
(``application/vnd.amazon.eventstream``; prelude, headers, payload, CRCs):

- client -> server: every message is a *signed envelope* (headers ``:date`` and
  ``:chunk-signature``) whose payload is a whole inner message with headers
  ``:message-type=event``, ``:event-type=chunk``, ``:content-type=application/json`` and payload
  ``{"bytes": "<base64 of the Nova JSON event>"}``. An envelope with an empty payload marks the
  end of the client's input.
- server -> client: unsigned messages with the same inner headers, or modeled errors with
  ``:message-type=exception`` and ``:exception-type=<lowerCamel member name>``.

Use `MessageBuffer` to cut received bytes into messages, `decode_client_message` to unwrap one,
and `encode_chunk` / `encode_exception` to build what the server sends.
"""

from __future__ import annotations

import base64
import io
import json
import struct
from dataclasses import dataclass
from typing import Any

from smithy_aws_event_stream.events import Event, EventMessage

__all__ = [
    "EXCEPTION_TYPES",
    "ClientMessage",
    "MessageBuffer",
    "WireError",
    "decode_client_message",
    "encode_chunk",
    "encode_exception",
]

# Modeled stream errors of InvokeModelWithBidirectionalStream, by the class name the SDK raises.
EXCEPTION_TYPES: dict[str, str] = {
    "InternalServerException": "internalServerException",
    "ModelStreamErrorException": "modelStreamErrorException",
    "ValidationException": "validationException",
    "ThrottlingException": "throttlingException",
    "ModelTimeoutException": "modelTimeoutException",
    "ServiceUnavailableException": "serviceUnavailableException",
}

_PRELUDE = 12
_MAX_MESSAGE = 16 * 1024 * 1024 + 128 * 1024 + 16


class WireError(Exception):
    """The client sent bytes that are not a valid event-stream message."""


@dataclass(frozen=True, slots=True)
class ClientMessage:
    """One client envelope: ``event`` is the Nova JSON event, or None at the end of input."""

    event: dict[str, Any] | None
    signed: bool


class MessageBuffer:
    """Accumulates bytes and yields whole event-stream messages, however the bytes were split.

    Call `feed` with each DATA frame's bytes; it returns the messages completed so far.
    Raises `WireError` on a malformed prelude or a CRC mismatch.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[EventMessage]:
        self._buffer += data
        messages: list[EventMessage] = []
        while len(self._buffer) >= _PRELUDE:
            total, _headers = struct.unpack("!II", self._buffer[:8])
            if total < _PRELUDE + 4 or total > _MAX_MESSAGE:
                raise WireError(f"invalid event-stream message length {total}")
            if len(self._buffer) < total:
                break
            raw = bytes(self._buffer[:total])
            del self._buffer[:total]
            messages.append(_decode(raw))
        return messages

    @property
    def pending(self) -> int:
        """Bytes of an incomplete message still buffered."""
        return len(self._buffer)


def _decode(raw: bytes) -> EventMessage:
    try:
        event = Event.decode(io.BytesIO(raw))
    except Exception as exc:  # the decoder raises several unrelated types
        raise WireError(f"undecodable event-stream message: {exc}") from exc
    if event is None:
        raise WireError("empty event-stream message")
    return event.message


def decode_client_message(envelope: EventMessage) -> ClientMessage:
    """Unwrap a client envelope into the Nova JSON event it carries.

    Raises `WireError` when the inner message is not a ``chunk`` event with a JSON payload.
    """
    signed = ":chunk-signature" in envelope.headers
    if not envelope.payload:
        return ClientMessage(None, signed)
    inner = _decode(envelope.payload)
    headers = inner.headers
    if headers.get(":message-type") != "event" or headers.get(":event-type") != "chunk":
        raise WireError(f"unexpected inner message headers {dict(headers)!r}")
    try:
        outer = json.loads(inner.payload)
        event = json.loads(base64.b64decode(outer["bytes"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise WireError(f"inner payload is not a JSON chunk: {exc}") from exc
    if not isinstance(event, dict):
        raise WireError("Nova event is not a JSON object")
    return ClientMessage(event, signed)


def encode_chunk(event: dict[str, Any]) -> bytes:
    """Encode a Nova output event as the server sends it."""
    nova_json = json.dumps(event, separators=(",", ":")).encode()
    payload = json.dumps({"bytes": base64.b64encode(nova_json).decode()}).encode()
    return EventMessage(
        headers={
            ":message-type": "event",
            ":event-type": "chunk",
            ":content-type": "application/json",
        },
        payload=payload,
    ).encode()


def encode_exception(name: str, message: str) -> bytes:
    """Encode a modeled stream error; ``name`` is a key of `EXCEPTION_TYPES`."""
    return EventMessage(
        headers={
            ":message-type": "exception",
            ":exception-type": EXCEPTION_TYPES[name],
            ":content-type": "application/json",
        },
        payload=json.dumps({"message": message}).encode(),
    ).encode()
