"""Scenarios for the fake Bedrock endpoint: what each successive stream does.

A `Scenario` is a tuple of `StreamPlan`s: the n-th ``InvokeModelWithBidirectionalStream``
request gets ``plans[n]`` (the last plan repeats). A plan either answers at the HTTP level with
an error status (as Bedrock does for bad credentials, throttling, an unknown model), or opens
the event stream and runs a *script*: ``async def script(stream: FakeStream) -> None``.
When the script returns, the server keeps the stream open until the client ends its input,
then ends the response, as Nova does after ``sessionEnd``. ``time_limit_s`` compresses Nova's
~8-minute stream limit: after that long the stream ends with ``ModelTimeoutException``.
``idle_timeout_s`` aborts a stream that got no input event for that long with the
``ValidationException`` Bedrock sends an idle stream ("Timed out waiting for input events").

Stock pieces: `answer_each_utterance` (a conversation partner), `fail_after` (a modeled
stream error once some input arrived), `http_error`, and the real service's failure modes
(issue 15): `system_instability` (the transient ValidationException Nova 2 sends early in
calls), `throttled_mid_call`, `dies_when_prepared` (a pre-opened stream that fails before any
audio), `idle_timeout_s` on a plan, ``tool_use(..., double_encoded=True)`` and
`barge_in_during_tool_call`. Anything else is a few lines of script.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sonicwire.server.testing.fake_stream import FakeStream

__all__ = [
    "IDLE_TIMEOUT_MESSAGE",
    "SYSTEM_INSTABILITY_MESSAGE",
    "Scenario",
    "StreamPlan",
    "StreamScript",
    "answer_each_utterance",
    "barge_in_during_tool_call",
    "dies_when_prepared",
    "fail_after",
    "http_error",
    "system_instability",
    "throttled_mid_call",
]

# What Bedrock says when a stream got no input for too long, and Nova 2's transient error.
IDLE_TIMEOUT_MESSAGE = "Timed out waiting for input events"
SYSTEM_INSTABILITY_MESSAGE = "System instability detected. Please retry your request."


type StreamScript = Callable[[FakeStream], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class StreamPlan:
    """What one stream does. ``script`` None: accept input silently until the client ends."""

    script: StreamScript | None = None
    http_status: int = 200
    # For HTTP errors: the ``x-amzn-errortype`` header and the JSON body's message.
    error_type: str = ""
    error_message: str = ""
    time_limit_s: float | None = None
    # Abort the stream after this many seconds without any input event (None: never).
    idle_timeout_s: float | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    """Plans for successive streams; the last one repeats for every later stream."""

    plans: tuple[StreamPlan, ...] = (StreamPlan(),)

    def plan_for(self, index: int) -> StreamPlan:
        return self.plans[min(index, len(self.plans) - 1)]

    @classmethod
    def each_stream(
        cls,
        script: StreamScript,
        *,
        time_limit_s: float | None = None,
        idle_timeout_s: float | None = None,
    ) -> Scenario:
        """Every stream runs ``script`` (and ends after ``time_limit_s``, or after
        ``idle_timeout_s`` without input, if given)."""
        return cls((StreamPlan(script, time_limit_s=time_limit_s, idle_timeout_s=idle_timeout_s),))

    @classmethod
    def sequence(cls, *plans: StreamPlan | StreamScript) -> Scenario:
        """Stream n runs the n-th plan (scripts are wrapped in a default plan)."""
        return cls(tuple(p if isinstance(p, StreamPlan) else StreamPlan(p) for p in plans))


def http_error(status: int, error_type: str, message: str = "") -> StreamPlan:
    """Refuse the request at the HTTP level, e.g. ``http_error(403, "AccessDeniedException")``."""
    return StreamPlan(
        http_status=status, error_type=error_type, error_message=message or error_type
    )


def answer_each_utterance(
    *,
    after_audio_ms: int = 300,
    user_text: str | Sequence[str] = "hello",
    assistant_text: str | Sequence[str] = "Hi there.",
    audio_ms: int = 300,
    max_turns: int | None = None,
    answer_text_input: bool = True,
) -> StreamScript:
    """A conversation partner: after every ``after_audio_ms`` of user audio (or an interactive
    text input), reply with a transcript and spoken answer. Lists cycle turn by turn."""

    def pick(value: str | Sequence[str], turn: int) -> str:
        return value if isinstance(value, str) else value[turn % len(value)]

    async def script(stream: FakeStream) -> None:
        turn = 0
        while max_turns is None or turn < max_turns:
            said = await _next_user_input(stream, after_audio_ms, answer_text_input)
            await stream.reply(
                said or pick(user_text, turn), pick(assistant_text, turn), audio_ms=audio_ms
            )
            turn += 1

    return script


async def _next_user_input(stream: FakeStream, audio_ms: int, texts: bool) -> str | None:
    """Wait for enough audio or an interactive user text; return the text, if any."""
    need = len(stream.audio) + audio_ms * 32
    seen = len(stream.events)
    typed: list[str] = []

    def ready() -> bool:
        nonlocal seen
        if texts:
            for event in stream.events[seen:]:
                text_input = event.get("event", {}).get("textInput")
                if isinstance(text_input, dict) and _is_interactive(stream, text_input):
                    typed.append(str(text_input.get("content", "")))
            seen = len(stream.events)
        return bool(typed) or len(stream.audio) >= need

    await stream.wait_for(ready, timeout=3600)
    return typed[0] if typed else None


def _is_interactive(stream: FakeStream, text_input: dict[str, object]) -> bool:
    name = text_input.get("contentName")
    for event in stream.events:
        start = event.get("event", {}).get("contentStart")
        if isinstance(start, dict) and start.get("contentName") == name:
            return bool(start.get("interactive")) and start.get("role") == "USER"
    return False


def fail_after(
    exception: str, *, audio_ms: int = 0, after_event: str = "promptStart", message: str = ""
) -> StreamPlan:
    """Send the modeled error ``exception`` (e.g. ``"ModelStreamErrorException"``) once
    ``after_event`` arrived and then ``audio_ms`` of user audio."""

    async def script(stream: FakeStream) -> None:
        await stream.wait_event(after_event, timeout=3600)
        if audio_ms:
            await stream.wait_audio(audio_ms, timeout=3600)
        await stream.send_exception(exception, message or f"scripted {exception}")

    return StreamPlan(script)


def system_instability(*, http: bool = False) -> StreamPlan:
    """Nova 2's transient ``ValidationException`` ("System instability detected. Please retry
    your request."), seen early in calls: as an HTTP 400 when ``http``, else as a modeled
    error right after ``promptStart``."""
    if http:
        return http_error(400, "ValidationException", SYSTEM_INSTABILITY_MESSAGE)
    return fail_after("ValidationException", message=SYSTEM_INSTABILITY_MESSAGE)


def throttled_mid_call(audio_ms: int = 200) -> StreamPlan:
    """A ``ThrottlingException`` once ``audio_ms`` of user audio arrived."""
    return fail_after("ThrottlingException", audio_ms=audio_ms)


def dies_when_prepared(exception: str = "ModelStreamErrorException") -> StreamPlan:
    """A stream that fails right after its opening events, before any audio: as a pre-opened
    continuation stream it is dead by the time the session wants to switch to it."""
    return fail_after(exception, after_event="promptStart", message=f"{exception} (prepared)")


def barge_in_during_tool_call(
    tool_name: str = "get_date_time",
    arguments: dict[str, object] | None = None,
    *,
    after_audio_ms: int = 60,
) -> StreamScript:
    """The user asks, Nova calls ``tool_name``; the script then waits for the tool result
    (whatever its status: a barge-in decided by the server still owes Nova one) and answers."""

    async def script(stream: FakeStream) -> None:
        await stream.wait_audio(after_audio_ms, timeout=3600)
        await stream.user_transcript("what time is it")
        await stream.tool_use(tool_name, arguments or {"timezone": "UTC"}, "tool-1")
        await stream.wait_tool_result("tool-1", timeout=3600)
        await stream.speak(["Done."], audio_ms=100)

    return script
