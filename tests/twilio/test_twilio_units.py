"""The pure parts of the telephony edge: playback framing and marks, keypad turns, call
parameters, request signatures."""

from __future__ import annotations

import base64
import json
import subprocess

import grpc
import pytest

from sonicwire.client import ConversationClosedError, SonicwireError
from sonicwire.gateway.twilio.auth import expected_signature, signature_valid, signed_urls
from sonicwire.gateway.twilio.callconfig import (
    DEFAULT_ALLOWED_PARAMETERS,
    CallParameterError,
    DigitCollector,
    call_settings,
    session_config_for_call,
)
from sonicwire.gateway.twilio.closing import close_code_for_error
from sonicwire.gateway.twilio.playback import FRAME_BYTES, Playback
from sonicwire.v1 import voice_service_pb2 as pb


def _decoded(messages: list[str]) -> list[dict[str, object]]:
    return [json.loads(m) for m in messages]


def test_audio_becomes_20ms_frames_and_one_mark_per_chunk() -> None:
    out = Playback("MZ1")
    messages = _decoded(out.audio("t1", b"\x01" * 800, offset_ms=0))  # 100 ms
    assert [m["event"] for m in messages] == ["media"] * 5 + ["mark"]
    assert all(len(base64.b64decode(m["media"]["payload"])) == FRAME_BYTES for m in messages[:5])  # type: ignore[index]
    assert messages[-1]["mark"] == {"name": "t1:100"}
    assert out.mark_played("t1:100") == ("t1", 100)
    assert out.mark_played("t1:100") is None  # each mark counts once


def test_a_partial_frame_waits_for_the_next_chunk_and_is_padded_at_turn_end() -> None:
    out = Playback("MZ1")
    first = _decoded(out.audio("t1", b"\x01" * 200, offset_ms=0))  # 25 ms: one frame + 5 ms
    assert [m["event"] for m in first] == ["media", "mark"]
    assert first[1]["mark"] == {"name": "t1:20"}
    second = _decoded(out.audio("t1", b"\x02" * 120, offset_ms=25))  # 5 + 15 ms = one frame
    payload = base64.b64decode(second[0]["media"]["payload"])  # type: ignore[index]
    assert payload == b"\x01" * 40 + b"\x02" * 120
    assert second[1]["mark"] == {"name": "t1:40"}
    assert out.turn_complete("t1") == []  # nothing left over
    out.audio("t1", b"\x03" * 80, offset_ms=40)  # 10 ms: held back
    last = _decoded(out.turn_complete("t1"))
    payload = base64.b64decode(last[0]["media"]["payload"])  # type: ignore[index]
    assert payload == b"\x03" * 80 + b"\xff" * 80  # padded with mu-law silence
    assert last[1]["mark"] == {"name": "t1:60"}


def test_marks_echo_in_order_and_settle_the_earlier_ones() -> None:
    out = Playback("MZ1")
    for i in range(3):
        out.audio("t1", b"\x01" * 160, offset_ms=20 * i)
    assert out.pending_marks == 3
    assert out.mark_played("t1:40") == ("t1", 40)
    assert out.pending_marks == 1  # t1:20 settled with it, t1:60 still playing
    assert out.mark_played("t1:20") is None


def test_interrupt_clears_and_voids_pending_marks_and_late_audio() -> None:
    out = Playback("MZ1")
    out.audio("t1", b"\x01" * 480, offset_ms=0)
    assert _decoded(out.interrupt("t1")) == [{"event": "clear", "streamSid": "MZ1"}]
    # Twilio echoes the marks the clear dropped: they report nothing.
    assert out.mark_played("t1:60") is None
    # Audio of the cut turn still in flight from the server is not framed.
    assert out.audio("t1", b"\x01" * 160, offset_ms=60) == []
    assert out.audio("t2", b"\x01" * 160, offset_ms=0) != []


def test_keypad_digits_become_one_turn() -> None:
    keys = DigitCollector(timeout_s=1.5)
    assert keys.press("1", now=10.0) is None
    assert keys.press("0", now=10.5) is None
    assert keys.deadline == 12.0
    assert keys.expire(11.9) is None
    assert keys.expire(12.0) == "The caller pressed 1 0 on the phone keypad."
    assert keys.deadline is None
    assert keys.press("4", now=20.0) is None
    assert keys.press("#", now=20.2) == "The caller pressed 4 on the phone keypad."
    assert keys.press("#", now=30.0) == "The caller pressed # on the phone keypad."


def test_keypad_turns_are_spaced_and_nothing_pressed_is_lost() -> None:
    # A caller pressing # ten times in half a second: before, ten turns at once (the server
    # allows 2 a second, burst 10: an eleventh ended the call, TEXT_RATE_EXCEEDED).
    keys = DigitCollector(timeout_s=1.5, min_gap_s=1.0)
    assert keys.press("#", now=10.0) == "The caller pressed # on the phone keypad."
    for i in range(9):
        assert keys.press("#", now=10.05 + i * 0.05) is None
    assert keys.press("4", now=10.6) is None
    assert keys.deadline == 11.0  # the held presses, before the open entry's 12.1
    assert keys.expire(10.99) is None
    assert (
        keys.expire(11.0) == f"The caller pressed {', then '.join(['#'] * 9)} on the phone keypad."
    )
    assert keys.press("#", now=11.5) is None  # the entry "4" is complete, told at 12.0
    assert keys.expire(12.0) == "The caller pressed 4 on the phone keypad."
    assert keys.deadline is None


def test_held_keypad_presses_are_bounded() -> None:
    keys = DigitCollector(max_digits=4, min_gap_s=1.0)
    keys.press("#", now=0.0)
    for i in range(100):
        assert keys.press("#", now=0.001 * (i + 1)) is None
    assert keys.expire(1.0) == "The caller pressed #, then #, then #, then # on the phone keypad."


def test_held_keypad_entries_stay_apart() -> None:
    # 1 2 # and 3 4 # within the gap after a turn: two entries, not the number 1 2 3 4.
    keys = DigitCollector(timeout_s=1.5, min_gap_s=1.0)
    assert keys.press("#", now=10.0) == "The caller pressed # on the phone keypad."
    for at, key in [(10.1, "1"), (10.2, "2"), (10.3, "#"), (10.4, "3"), (10.5, "4")]:
        assert keys.press(key, now=at) is None
    assert keys.press("#", now=10.6) is None
    assert keys.expire(11.0) == "The caller pressed 1 2, then 3 4 on the phone keypad."
    # the bound counts every held key, whichever entry it is in
    bounded = DigitCollector(max_digits=3, min_gap_s=1.0)
    bounded.press("#", now=0.0)
    for at, key in [(0.1, "1"), (0.2, "2"), (0.3, "#"), (0.4, "3"), (0.5, "4"), (0.6, "#")]:
        bounded.press(key, now=at)
    assert bounded.expire(1.0) == "The caller pressed 1 2, then 3 on the phone keypad."


def test_call_parameters_follow_the_allow_list() -> None:
    settings = call_settings(
        {
            "apiKey": "k",
            "voice": "joe",
            "systemPrompt": "be rude",
            "bargeIn": "false",
            "endpointing": "HIGH",
            "colour": "blue",
        },
        DEFAULT_ALLOWED_PARAMETERS,
    )
    assert settings.api_key == "k"
    assert settings.voice == "joe"
    assert settings.system_prompt == ""  # not allowed by default
    assert settings.ignored == ("colour", "systemPrompt")
    config = session_config_for_call(settings)
    assert config.input_format.encoding == pb.AUDIO_ENCODING_MULAW
    assert config.output_format.sample_rate_hz == 8000
    assert config.barge_in.disabled
    assert config.inference.endpointing_sensitivity == pb.ENDPOINTING_SENSITIVITY_HIGH
    allowed = (*DEFAULT_ALLOWED_PARAMETERS, "systemPrompt")
    assert call_settings({"systemPrompt": "be kind"}, allowed).system_prompt == "be kind"


def test_echo_cancellation_can_be_turned_off_per_call_and_defaults_agree() -> None:
    from sonicwire.gateway import GatewayConfig

    assert GatewayConfig().twilio_parameters == DEFAULT_ALLOWED_PARAMETERS
    off = call_settings({"echoCancellation": "false"}, DEFAULT_ALLOWED_PARAMETERS)
    assert session_config_for_call(off).echo_cancellation.disabled
    on = call_settings({}, DEFAULT_ALLOWED_PARAMETERS)
    assert not session_config_for_call(on).echo_cancellation.disabled


@pytest.mark.parametrize(
    "parameters",
    [{"bargeIn": "maybe"}, {"endpointing": "fast"}, {"echoCancellation": "2"}],
    ids=["bargeIn", "endpointing", "echoCancellation"],
)
def test_bad_parameter_values_are_refused(parameters: dict[str, str]) -> None:
    with pytest.raises(CallParameterError):
        call_settings(parameters, DEFAULT_ALLOWED_PARAMETERS)


def _openssl_signature(token: str, url: str) -> str:
    """An independent implementation: openssl's HMAC-SHA1, base64 encoded."""
    digest = subprocess.run(
        ["openssl", "dgst", "-sha1", "-hmac", token, "-binary"],
        input=url.encode(),
        capture_output=True,
        check=True,
    ).stdout
    return base64.b64encode(digest).decode()


def test_signature_matches_openssl_and_is_checked_on_the_url_twilio_used() -> None:
    token = "12345abcde"
    url = "wss://calls.example.com/twilio?team=support"
    signature = _openssl_signature(token, url)
    assert expected_signature(token, url) == signature
    urls = signed_urls("/twilio?team=support", "calls.example.com", "")
    assert url in urls
    assert signature_valid(token, signature, urls)
    assert not signature_valid("wrong", signature, urls)
    assert not signature_valid(token, None, urls)
    assert not signature_valid(token, signature, signed_urls("/twilio", "calls.example.com", ""))
    # Behind a tunnel the gateway sees another host; the configured public URL is signed.
    behind = signed_urls("/twilio?team=support", "127.0.0.1:8000", "wss://calls.example.com")
    assert signature_valid(token, signature, behind)
    # Twilio's validators accept the URL with the default port spelled out too.
    with_port = _openssl_signature(token, "wss://calls.example.com:443/twilio?team=support")
    assert signature_valid(token, with_port, urls)


@pytest.mark.parametrize(
    ("code", "reason", "close"),
    [
        ("INVALID_ARGUMENT", "TIME_ZONE_INVALID", 1008),
        ("FAILED_PRECONDITION", "", 1008),
        ("NOT_FOUND", "SESSION_NOT_FOUND", 1008),
        ("UNAUTHENTICATED", "", 1008),
        ("PERMISSION_DENIED", "", 1008),
        ("RESOURCE_EXHAUSTED", "TEXT_RATE_EXCEEDED", 1008),
        ("UNAVAILABLE", "SERVER_DRAINING", 1001),
        ("CANCELLED", "", 1001),  # a proxy's report of a replica gone (the shim's reconnect)
        ("ABORTED", "SESSION_RESUMED_ELSEWHERE", 1011),
        ("UNAVAILABLE", "BACKEND_UNAVAILABLE", 1011),
        ("DEADLINE_EXCEEDED", "BACKEND_TIMEOUT", 1011),
        ("INTERNAL", "INTERNAL", 1011),
        ("UNKNOWN", "", 1011),
    ],
)
def test_a_status_closes_a_call_with_one_code_whichever_side_saw_it(
    code: str, reason: str, close: int
) -> None:
    # One table for the refusal at the start and the end of a live call: both pass through
    # close_code_for_error, which judges by the browser shim's status table.
    error = SonicwireError("details", code=getattr(grpc.StatusCode, code), reason=reason)
    assert close_code_for_error(error) == close


def test_an_error_without_a_status_closes_a_call_as_internal() -> None:
    assert close_code_for_error(ConversationClosedError("closed")) == 1011
