"""Session continuation: carrying one conversation across Nova streams.

A Nova stream lives at most ~8 minutes. Before that (``threshold_s``, default 6 min) the
session opens the next stream in the background, waits for a quiet moment (no answer being
generated, no tool call pending, the user not speaking, no utterance still waiting for its
answer) or at most ``max_defer_s``, then switches: the new stream gets the conversation so far
(`ReplayLog`, within Nova's history limits) and the last ``audio_replay_ms`` of user audio
(`AudioRing`), live audio goes to it from the same instant, and the old stream is closed.
The timer runs off the loop clock, not off audio, so it fires while the user is silent.

No audio is lost: every frame goes into the ring and to the stream that is current when it
arrives; the switch is one synchronous step, so a frame lands either before it (old stream,
and replayed if recent) or after it (new stream). The same replay serves a reconnect after a
transient failure, from a little before the failure.

Pieces: `ContinuationPolicy` (numbers), `AudioRing`, `ReplayLog`, `QuietTracker` (pure) and
`run_continuation` (the async timer loop, driving a `ContinuationHost`: the session).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sonicwire.server.core import events as ev
from sonicwire.server.core.errors import BackendError
from sonicwire.server.core.history import History, Message

__all__ = [
    "AudioRing",
    "ContinuationHost",
    "ContinuationPolicy",
    "QuietTracker",
    "ReplayLog",
    "ReplayMarks",
    "run_continuation",
]

_log = logging.getLogger(__name__)
_SAMPLE_RATE = 16_000


@dataclass(frozen=True, slots=True)
class ContinuationPolicy:
    """When to switch streams and how much audio to replay."""

    threshold_s: float = 360.0
    max_defer_s: float = 60.0
    audio_replay_ms: int = 3000
    # After a failed attempt to open the next stream, try again this much later.
    retry_s: float = 5.0
    # How often to look for a quiet moment once the next stream is ready.
    poll_s: float = 0.05
    # A prepared stream idle longer than this is replaced by a fresh one (Bedrock aborts
    # streams that get no input for a while; reports say about a minute).
    prepared_max_idle_s: float = 20.0
    # An utterance counts as answered after this long even if Nova stayed silent.
    answer_wait_s: float = 3.0


class AudioRing:
    """The most recent user audio (s16le at ``sample_rate``: the rate Nova gets, 16 kHz or
    8 kHz), as the frames that were sent.

    `append` every frame; `position` is the sample count so far; `since(position)` returns
    the kept frames that end after ``position`` (whole frames, so a replay repeats frames
    exactly as they were sent). Keeps at least ``keep_ms``.
    """

    def __init__(self, keep_ms: int, sample_rate: int = _SAMPLE_RATE) -> None:
        self._rate = sample_rate
        self._keep = max(keep_ms, 0) * sample_rate // 1000
        self._frames: deque[tuple[int, bytes]] = deque()  # (start sample, pcm)
        self._position = 0

    @property
    def position(self) -> int:
        return self._position

    def append(self, pcm: bytes) -> None:
        if not pcm:
            return
        self._frames.append((self._position, pcm))
        self._position += len(pcm) // 2
        horizon = self._position - self._keep
        while self._frames and self._frames[0][0] + len(self._frames[0][1]) // 2 <= horizon:
            self._frames.popleft()

    def since(self, position: int) -> list[bytes]:
        return [pcm for start, pcm in self._frames if start + len(pcm) // 2 > position]

    def last(self, ms: int) -> list[bytes]:
        return self.since(self._position - ms * self._rate // 1000)

    def samples(self, ms: int) -> int:
        return ms * self._rate // 1000


class ReplayLog:
    """The conversation as it must be replayed: user FINAL transcripts and typed turns, the
    assistant's FINAL (spoken) text, and an answer cut by a barge-in as the user heard it.

    Feed it every backend event (`observe`), typed turns (`user_typed`) and barge-ins
    (`cancelled`); read `messages`.
    """

    def __init__(self, initial: Sequence[Message] = ()) -> None:
        self._history = History(list(initial))
        self._answer: list[str] = []

    def observe(self, event: ev.BackendEvent) -> None:
        match event:
            case ev.UserTranscript(text, True):
                self._commit_answer()
                self._history.add(ev.Role.USER, text)
            case ev.AssistantText(text, True):
                self._answer.append(text)
            case ev.AssistantTurnEnded() | ev.AssistantInterrupted():
                self._commit_answer()
            case _:
                pass

    def user_typed(self, text: str) -> None:
        self._commit_answer()
        self._history.add(ev.Role.USER, text)

    def cancelled(self, heard_text: str, *, answer_open: bool) -> None:
        """The user heard only ``heard_text`` of the latest answer."""
        if answer_open or self._answer:
            self._answer = [heard_text] if heard_text.strip() else []
            self._commit_answer()
        else:
            self._history.replace_last_assistant(heard_text)

    def _commit_answer(self) -> None:
        if self._answer:
            self._history.add(ev.Role.ASSISTANT, " ".join(self._answer))
            self._answer = []

    @property
    def messages(self) -> tuple[Message, ...]:
        """Committed messages plus the answer in progress (what was spoken of it so far)."""
        pending = " ".join(self._answer).strip()
        if not pending:
            return self._history.messages
        snapshot = History(list(self._history.messages))
        snapshot.add(ev.Role.ASSISTANT, pending)
        return snapshot.messages


class ReplayMarks:
    """Where the conversation's text ends in the user's audio (`AudioRing` positions), so a new
    stream hears each utterance once: as text in the replayed history or as replayed audio,
    never both (AWS's session-continuation sample buffers only audio captured after the
    assistant started speaking, and drops the trailing USER turn when it replays its audio).

    Pure: callers pass ring positions. `plan` gives the messages and the audio start to replay.
    """

    def __init__(self, preroll: int = 0) -> None:
        # VAD reports speech a little after it began: replay from this many samples earlier.
        self._preroll = max(preroll, 0)
        self._covered = 0  # audio before this is reflected in the history's text
        self._speech_start: int | None = None
        self._answering = False
        # The history ends with a USER turn transcribed from audio that has no answer yet.
        self._unanswered = False

    def speech_started(self, position: int) -> None:
        self._speech_start = max(position - self._preroll, 0)

    def transcript(self, position: int) -> None:
        """A USER FINAL transcript arrived: the audio so far is in the history as text."""
        self._covered = max(self._covered, position)
        self._answering = False
        self._unanswered = True

    def typed(self) -> None:
        """A typed USER turn went into the history: it has no audio to replay instead."""
        self._answering = False
        self._unanswered = False

    def answer_started(self, position: int) -> None:
        """Assistant output arrived; the first of a turn marks where its answer began."""
        self._unanswered = False
        if not self._answering:
            self._answering = True
            self._covered = max(self._covered, position)

    def plan(
        self, messages: tuple[Message, ...], position: int, window: int
    ) -> tuple[tuple[Message, ...], int]:
        """What a new stream gets: the messages to replay and the ring position from which
        to replay audio, looking back at most ``window`` samples from ``position``."""
        floor = max(position - window, 0)
        start = self._speech_start
        if (
            self._unanswered
            and messages
            and messages[-1].role is ev.Role.USER
            and start is not None
            and floor <= start <= self._covered
        ):
            # The whole unanswered question is in the replayed audio: Nova hears it again
            # (and answers it) instead of reading it as history it would not answer.
            return messages[:-1], start
        return messages, max(floor, self._covered)


class QuietTracker:
    """Whether now is a good moment to switch streams. Pure: callers pass the loop time."""

    def __init__(self, answer_wait_s: float) -> None:
        self._answer_wait_s = answer_wait_s
        self._speaking = False
        self._awaiting_since: float | None = None

    def speech_started(self) -> None:
        self._speaking = True

    def speech_stopped(self, now: float) -> None:
        self._speaking = False
        self._awaiting_since = now

    def user_turn_sent(self, now: float) -> None:
        self._awaiting_since = now

    def answer_started(self) -> None:
        self._awaiting_since = None

    def quiet(self, now: float, *, assistant_busy: bool) -> bool:
        if assistant_busy or self._speaking:
            return False
        waiting = self._awaiting_since
        return waiting is None or now - waiting >= self._answer_wait_s


class ContinuationHost(Protocol):
    """What `run_continuation` needs from the session."""

    def stream_age(self) -> float | None:
        """Seconds the current stream has been open; None while there is none."""
        ...

    def is_quiet(self) -> bool: ...

    def window(self) -> tuple[float, float]:
        """(age at which to continue the current stream, longest wait for a quiet moment
        after it): the policy's, or sooner when the stream's credentials expire sooner."""
        ...

    async def prepare_stream(self) -> object:
        """Open the next stream (opening events sent). Raises `BackendError`."""
        ...

    def prepared_failed(self, prepared: object) -> bool:
        """Whether the prepared stream has already failed (Bedrock aborted it)."""
        ...

    def switch_to(self, prepared: object) -> bool:
        """Replay and switch; False if the prepared stream is stale (a reconnect happened)
        or has failed."""
        ...

    async def discard(self, prepared: object) -> None: ...


async def run_continuation(host: ContinuationHost, policy: ContinuationPolicy) -> None:
    """Switch streams before Nova's limit, forever (cancel the task to stop).

    A prepared stream carries only its opening events until the switch, and Bedrock aborts a
    stream that gets no input for a while ("Timed out waiting for input events"). So a
    prepared stream is never kept longer than ``prepared_max_idle_s``: past that (or as soon as
    it failed) it is closed and a fresh one opened, until the quiet moment or the deadline.
    """
    loop = asyncio.get_running_loop()
    while True:
        age = host.stream_age()
        if age is None:
            await asyncio.sleep(policy.poll_s)  # reconnecting: the new stream resets the clock
            continue
        threshold, max_defer = host.window()
        if age < threshold:
            # Bounded sleeps: the window can change (a reconnect opens a new stream).
            await asyncio.sleep(min(threshold - age, max(policy.poll_s, 1.0)))
            continue
        deadline = loop.time() + max(max_defer - (age - threshold), 0.0)
        prepared: object | None = None
        try:
            while True:
                if prepared is None:
                    prepared = await host.prepare_stream()
                    prepared_at = loop.time()
                if host.prepared_failed(prepared) or (
                    loop.time() - prepared_at >= policy.prepared_max_idle_s
                ):
                    stale, prepared = prepared, None
                    _log.info("nova: re-opening the next stream (failed or idle too long)")
                    await host.discard(stale)
                    continue
                # Quietness depends on elapsed time too (an unanswered utterance expires),
                # so this polls rather than waiting for an event.
                if host.is_quiet() or loop.time() >= deadline:
                    break
                await asyncio.sleep(policy.poll_s)
        except BackendError as exc:
            _log.warning("nova: could not open the next stream (%s); retrying", exc.message)
            await asyncio.sleep(policy.retry_s)
            continue
        except BaseException:
            if prepared is not None:
                await host.discard(prepared)
            raise
        if not host.switch_to(prepared):
            await host.discard(prepared)
