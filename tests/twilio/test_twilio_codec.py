"""The Twilio Media Streams codec against golden messages (Twilio's documented shapes)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from sonicwire.gateway.twilio.codec import (
    TwilioProtocolError,
    clear_message,
    mark_message,
    media_message,
    parse_message,
)

GOLDEN = Path(__file__).with_name("golden")
INBOUND = json.loads((GOLDEN / "inbound.json").read_text())
OUTBOUND = json.loads((GOLDEN / "outbound.json").read_text())


def _as_dict(event: Any) -> dict[str, Any]:
    fields = dataclasses.asdict(event)
    if "payload" in fields:
        fields["payload_hex"] = fields.pop("payload").hex()
    if "tracks" in fields:
        fields["tracks"] = list(fields["tracks"])
    return {"type": type(event).__name__, **fields}


@pytest.mark.parametrize("case", INBOUND, ids=[c["name"] for c in INBOUND])
def test_inbound_golden(case: dict[str, Any]) -> None:
    assert _as_dict(parse_message(json.dumps(case["message"]))) == case["expect"]


def test_outbound_golden() -> None:
    assert media_message("MZ2", b"\xff\xff\xff\xff") == OUTBOUND["media"]
    assert mark_message("MZ2", "t1:120") == OUTBOUND["mark"]
    assert clear_message("MZ2") == OUTBOUND["clear"]


def test_numbers_as_json_numbers_are_accepted() -> None:
    media = {"track": "inbound", "chunk": 2, "timestamp": 25, "payload": ""}
    event = parse_message(json.dumps({"event": "media", "sequenceNumber": 9, "media": media}))
    assert _as_dict(event)["chunk"] == 2


MALFORMED = [
    ("binary frame", b"\x00\x01"),
    ("not json", "{not json"),
    ("json array", "[1, 2]"),
    ("no event", json.dumps({"sequenceNumber": "1"})),
    ("media without payload", json.dumps({"event": "media", "media": {"track": "inbound"}})),
    ("media payload not base64", json.dumps({"event": "media", "media": {"payload": "!!!"}})),
    ("media is a string", json.dumps({"event": "media", "media": "x"})),
    ("bad sequence number", json.dumps({"event": "mark", "sequenceNumber": "x1", "mark": {}})),
    ("mark without name", json.dumps({"event": "mark", "mark": {}})),
    ("dtmf not a key", json.dumps({"event": "dtmf", "dtmf": {"digit": "12"}})),
    ("start without mediaFormat", json.dumps({"event": "start", "start": {"streamSid": "MZ"}})),
    (
        "custom parameter not a string",
        json.dumps(
            {
                "event": "start",
                "start": {
                    "streamSid": "MZ",
                    "accountSid": "AC",
                    "callSid": "CA",
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000},
                    "customParameters": {"voice": 3},
                },
            }
        ),
    ),
    ("deeply nested", "[" * 100_000 + "]" * 100_000),
    (
        "oversized payload",
        json.dumps({"event": "media", "media": {"payload": "A" * 40_000}}),
    ),
]


@pytest.mark.parametrize("data", [m[1] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_messages_raise_protocol_errors(data: str | bytes) -> None:
    with pytest.raises(TwilioProtocolError):
        parse_message(data)
