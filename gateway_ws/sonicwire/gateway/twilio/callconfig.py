"""A call's session from Twilio's ``start`` message, with no I/O: the allow-listed
``customParameters`` (set with ``<Parameter>`` in the TwiML) become the ``SessionConfig``, and
keypad presses (``dtmf``) become typed user turns.

Parameters (names as in the TwiML; the operator's allow-list says which are honoured, the
others are logged by name and ignored; ``apiKey`` is read for authentication, never logged)::

    apiKey         key for the gRPC server (instead of a signed request)
    voice          a voice id from ListVoices
    systemPrompt   the assistant's instructions
    endpointing    high | medium | low
    bargeIn        true | false
    echoCancellation  true | false: the server's echo canceller (off when the phone or the
                   carrier already removes echo: barge-in is then not held while the canceller
                   looks for echo that never comes)
    serverTools    comma-separated names of server tools to offer
    timeZone       the caller's IANA time zone, e.g. Europe/Berlin
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from sonicwire.v1 import voice_service_pb2 as pb

__all__ = [
    "API_KEY_PARAMETER",
    "DEFAULT_ALLOWED_PARAMETERS",
    "KNOWN_PARAMETERS",
    "CallParameterError",
    "CallSettings",
    "DigitCollector",
    "call_settings",
    "session_config_for_call",
]

API_KEY_PARAMETER = "apiKey"
KNOWN_PARAMETERS = frozenset(
    {
        "voice",
        "systemPrompt",
        "endpointing",
        "bargeIn",
        "echoCancellation",
        "serverTools",
        "timeZone",
    }
)
DEFAULT_ALLOWED_PARAMETERS: tuple[str, ...] = (
    "voice",
    "endpointing",
    "bargeIn",
    "echoCancellation",
    "serverTools",
    "timeZone",
)
"""Honoured unless the operator says otherwise; ``systemPrompt`` must be allowed explicitly,
since whoever writes the TwiML then decides what the assistant is told."""

_ENDPOINTING = {
    "high": pb.ENDPOINTING_SENSITIVITY_HIGH,
    "medium": pb.ENDPOINTING_SENSITIVITY_MEDIUM,
    "low": pb.ENDPOINTING_SENSITIVITY_LOW,
}
_BOOLEAN = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_MAX_PROMPT = 8000


class CallParameterError(ValueError):
    """A ``customParameters`` value that cannot be used (the call is refused)."""


@dataclass(frozen=True, slots=True)
class CallSettings:
    """What a call's parameters ask for, validated."""

    api_key: str | None = None
    voice: str = ""
    system_prompt: str = ""
    endpointing: int = pb.ENDPOINTING_SENSITIVITY_UNSPECIFIED
    barge_in: bool = True
    echo_cancellation: bool = True
    server_tools: tuple[str, ...] = ()
    time_zone: str = ""
    ignored: tuple[str, ...] = ()
    """Names of parameters that were present but not honoured (unknown or not allowed)."""


def call_settings(parameters: Mapping[str, str], allowed: Collection[str]) -> CallSettings:
    """Validate a call's ``customParameters`` against the allow-list.

    Raises:
        CallParameterError: an allowed parameter with an unusable value.
    """
    values: dict[str, str] = {}
    ignored: list[str] = []
    for name, value in parameters.items():
        if name == API_KEY_PARAMETER:
            continue
        if name in KNOWN_PARAMETERS and name in allowed:
            values[name] = value.strip()
        else:
            ignored.append(name)
    endpointing = pb.ENDPOINTING_SENSITIVITY_UNSPECIFIED
    if "endpointing" in values:
        if values["endpointing"].lower() not in _ENDPOINTING:
            raise CallParameterError("endpointing must be high, medium or low")
        endpointing = _ENDPOINTING[values["endpointing"].lower()]
    barge_in = _flag(values, "bargeIn")
    echo_cancellation = _flag(values, "echoCancellation")
    prompt = values.get("systemPrompt", "")
    if len(prompt) > _MAX_PROMPT:
        raise CallParameterError(f"systemPrompt is longer than {_MAX_PROMPT} characters")
    tools = tuple(t.strip() for t in values.get("serverTools", "").split(",") if t.strip())
    key = parameters.get(API_KEY_PARAMETER) or None
    return CallSettings(
        api_key=key,
        voice=values.get("voice", ""),
        system_prompt=prompt,
        endpointing=endpointing,
        barge_in=barge_in,
        echo_cancellation=echo_cancellation,
        server_tools=tools,
        time_zone=values.get("timeZone", ""),
        ignored=tuple(sorted(ignored)),
    )


def _flag(values: Mapping[str, str], name: str) -> bool:
    if name not in values:
        return True
    if values[name].lower() not in _BOOLEAN:
        raise CallParameterError(f"{name} must be true or false")
    return _BOOLEAN[values[name].lower()]


def session_config_for_call(settings: CallSettings) -> pb.SessionConfig:
    """The ``SessionConfig`` of a phone call: mu-law at 8 kHz both ways, no resampling at the
    edge (the server decodes to PCM and its front end resamples to 16 kHz, once)."""
    mulaw = pb.AudioFormat(encoding=pb.AUDIO_ENCODING_MULAW, sample_rate_hz=8000, channels=1)
    config = pb.SessionConfig(
        input_format=mulaw,
        output_format=mulaw,
        voice=settings.voice,
        system_prompt=settings.system_prompt,
        barge_in=pb.BargeInSettings(disabled=not settings.barge_in),
        echo_cancellation=pb.EchoCancellationSettings(disabled=not settings.echo_cancellation),
        server_tools=list(settings.server_tools),
    )
    config.inference.endpointing_sensitivity = settings.endpointing  # type: ignore[assignment]
    config.time_zone = settings.time_zone
    return config


class DigitCollector:
    """Collects keypad presses into one typed turn: a number is pressed key by key, and each
    key as its own turn would interrupt the assistant once per digit.

    The entry ends with ``#`` (not included) or after ``timeout_s`` without a key; then
    `text` is what the assistant is told, e.g. "The caller pressed 1 2 3 4 on the phone keypad."
    Turns are at least ``min_gap_s`` apart: the server allows typed turns at 2 a second (burst
    10) and ends the stream past that (TEXT_RATE_EXCEEDED), and a caller who presses ``#`` again
    and again ends an entry with every press. An entry complete sooner is held and told with
    the entries after it, in one turn, once the gap has passed, each entry still its own ("The
    caller pressed 1 2, then 3 4 on the phone keypad.": not the number 1 2 3 4); at most
    ``max_digits`` keys are held (later ones are dropped). The caller's clock is passed in; the
    collector reads none.
    """

    def __init__(
        self, timeout_s: float = 1.5, max_digits: int = 32, min_gap_s: float = 1.0
    ) -> None:
        self.timeout_s = timeout_s
        self.max_digits = max_digits
        self.min_gap_s = min_gap_s
        self._digits: list[str] = []
        self._entry_deadline: float | None = None
        self._held: list[list[str]] = []  # complete entries waiting for the gap, in order
        self._last_turn: float | None = None

    @property
    def deadline(self) -> float | None:
        """When `expire` must be called, or None when no entry is open or held."""
        due = [self._gap_end()] if self._held else []
        if self._entry_deadline is not None:
            due.append(self._entry_deadline)
        return min(due) if due else None

    def press(self, digit: str, now: float) -> str | None:
        """One key; returns the turn's text when the entry is complete (and may be told)."""
        if digit == "#":
            return self._complete(self._digits or ["#"], now)
        self._digits.append(digit)
        if len(self._digits) >= self.max_digits:
            return self._complete(self._digits, now)
        self._entry_deadline = now + self.timeout_s
        return None

    def expire(self, now: float) -> str | None:
        """The turn's text if the entry timed out, or held entries may be told, by ``now``."""
        if self._entry_deadline is not None and now >= self._entry_deadline:
            return self._complete(self._digits, now)
        if self._held and now >= self._gap_end():
            return self._turn(now)
        return None

    def _gap_end(self) -> float:
        return float("-inf") if self._last_turn is None else self._last_turn + self.min_gap_s

    def _complete(self, keys: list[str], now: float) -> str | None:
        self._digits, self._entry_deadline = [], None
        room = self.max_digits - sum(len(entry) for entry in self._held)
        if room > 0:
            self._held.append(keys[:room])
        return self._turn(now) if now >= self._gap_end() else None

    def _turn(self, now: float) -> str:
        entries, self._held = self._held, []
        self._last_turn = now
        keys = ", then ".join(" ".join(entry) for entry in entries)
        return f"The caller pressed {keys} on the phone keypad."
