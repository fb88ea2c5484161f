"""First-clause synthesis (clauses.py, `first_clause`): where a sentence splits (never inside a
number), the clause sent before the rest is synthesised and the rest sent before the clause
has played, the clause held back when the rest would be late, the whole sentence as the
transcript, barge-in, the reply cache on chunks, the answer prepared in the stop wait, the
option off. With synthesiser and recogniser doubles."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from datetime import time as clock_time
from typing import Any

import numpy as np
import pytest

from sonicwire.server.backends.base import BackendOptions
from sonicwire.server.backends.local.clauses import (
    PacedSynthesizer,
    SynthesisPace,
    head_hold_s,
    split_first_clause,
)
from sonicwire.server.backends.local.engine import LocalBackend
from sonicwire.server.backends.local.saying import say_date, say_time
from sonicwire.server.backends.local.session import LocalSession
from sonicwire.server.backends.local.toolmodel import ToolModel
from sonicwire.server.backends.local.tts import CachedSynthesizer, Synthesizer
from sonicwire.server.core import events as ev
from sonicwire.server.core.errors import BackendError
from sonicwire.server.testing.local_harness import MicStream, ToolBox, run_turn

from .conftest import FIXED_NOW, ScriptedRecognizer

_SORRY = "Sorry, I didn't catch that."
# ... and the suggestion after it, a sentence of its own: only a reply's first sentence splits
_SUGGESTION = (
    "You can ask me things like: what time is it, or where is my order one zero zero zero."
)
_SPLIT = ["Sorry,", "I didn't catch that.", _SUGGESTION]
_NONSENSE = "purple elephants juggling"  # like no tool: the answer is _SORRY
_RATE = 16_000


class TimedVoice:
    """A synthesiser double: ``fixed_s`` + ``per_char_s`` per character of synthesis (a
    sleep), ``audio_per_char_s`` of audio per character; ``slow`` texts take that long
    instead. Records (text, start, end) per call."""

    voice, sample_rate = "timed", _RATE

    def __init__(
        self,
        *,
        fixed_s: float = 0.01,
        per_char_s: float = 0.002,
        audio_per_char_s: float = 0.06,
        slow: dict[str, float] | None = None,
    ) -> None:
        self.fixed_s, self.per_char_s, self.audio_per_char_s = fixed_s, per_char_s, audio_per_char_s
        self.slow = slow or {}
        self.calls: list[tuple[str, float, float]] = []
        self._lock = threading.Lock()

    def synthesize(self, text: str) -> bytes:
        start = time.perf_counter()
        time.sleep(self.slow.get(text, self.fixed_s + self.per_char_s * len(text)))
        samples = int(len(text) * self.audio_per_char_s * _RATE)
        with self._lock:
            self.calls.append((text, start, time.perf_counter()))
        return np.full(samples, 100, np.int16).tobytes()

    def texts(self) -> list[str]:
        return [c[0] for c in self.calls]

    def ended(self, text: str) -> float:
        return next(c[2] for c in self.calls if c[0] == text)


def _session(
    voice: Synthesizer,
    toolbox: ToolBox,
    executor: ThreadPoolExecutor,
    recognizer: Any = None,
    **options: Any,
) -> LocalSession:
    return LocalSession(
        BackendOptions(session_id="t", tools=toolbox.descriptions),
        recognizer=recognizer or ScriptedRecognizer([""], [""]),
        synthesizer=voice,
        executor=executor,
        clock=lambda: FIXED_NOW,
        tool_model=ToolModel(toolbox.descriptions),
        **options,
    )


async def _typed(session: LocalSession, text: str) -> list[tuple[float, ev.BackendEvent]]:
    """The events of one typed turn, with when each came."""
    events = session.events()
    await session.send(ev.SendText(text))
    seen: list[tuple[float, ev.BackendEvent]] = []
    async with asyncio.timeout(10):
        async for event in events:
            seen.append((time.perf_counter(), event))
            if isinstance(event, ev.AssistantTurnEnded):
                break
    return seen


def _audio(seen: list[tuple[float, ev.BackendEvent]]) -> list[tuple[float, float]]:
    """(when it came, seconds) of each audio chunk."""
    return [
        (t, len(e.pcm) / 2 / e.sample_rate) for t, e in seen if isinstance(e, ev.AssistantAudio)
    ]


# --- where a sentence splits -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spoken", "split"),
    [
        (_SORRY, ("Sorry,", "I didn't catch that.")),
        (
            "In Paris today it will be sunny, 21 degrees.",
            ("In Paris today it will be sunny,", "21 degrees."),
        ),
        ("You can ask me things like: the time.", ("You can ask me things like:", "the time.")),
        ("First this; then that.", ("First this;", "then that.")),
        ("It will rain - take a coat.", ("It will rain,", "take a coat.")),  # dash: a comma
        ("It will rain—take a coat.", ("It will rain,", "take a coat.")),
        # numbers, clock times and hyphenated words are no boundary
        ("That comes to 1,250 dollars.", None),
        ("That is 1,250, give or take.", ("That is 1,250,", "give or take.")),
        ("It's 3:47 PM.", None),
        ("Rain at 3:47 PM, then sun.", ("Rain at 3:47 PM,", "then sun.")),
        ("It's three forty-seven PM.", None),
        ("It is 2.5 degrees.", None),
        # the clause must be a word, not a lone letter, and words must follow it
        ("Oh, fine.", ("Oh,", "fine.")),
        ("A, B and C.", None),
        ("A, B, and then C.", ("A, B,", "and then C.")),
        ("Hello!", None),
        ("Sorry, 42.", None),
    ],
)
def test_where_a_sentence_splits(spoken: str, split: tuple[str, str] | None) -> None:
    assert split_first_clause(spoken) == split


def test_spoken_times_and_dates_keep_their_numbers_whole() -> None:
    assert split_first_clause(say_time(clock_time(15, 47))[1]) is None
    assert split_first_clause(say_time(clock_time(15, 47))[0]) is None  # "3:47 PM"
    text, spoken = say_date(date(2026, 5, 5), year=True)  # "Tuesday, May 5, 2026"
    assert split_first_clause(text) == ("Tuesday,", "May 5, 2026")
    assert split_first_clause(spoken) == ("Tuesday,", "May fifth, twenty twenty-six")


def test_the_hold_covers_the_rest_synthesis_from_the_recent_pace() -> None:
    pace = SynthesisPace(prior_s_per_char=0.05)
    assert pace.estimate_s("I didn't catch that.") == pytest.approx(0.05 * 26)  # untimed
    pace.record("Sorry,", 0.06)  # 5 ms per character, the call's cost counted
    assert pace.estimate_s("I didn't catch that.") == pytest.approx(0.005 * 26)
    assert head_hold_s(pace, "I didn't catch that.", head_seconds=0.6) == 0.0
    pace.record("Sorry,", 0.6)  # the machine got ten times slower: the latest call counts
    assert head_hold_s(pace, "I didn't catch that.", 0.6) == pytest.approx(0.05 * 26 + 0.1 - 0.6)
    for _ in range(3):
        pace.record("Sorry,", 0.06)  # ... and fast again: one slow call is outvoted
    assert pace.estimate_s("I didn't catch that.") == pytest.approx(0.005 * 26)


# --- the session -------------------------------------------------------------------------------


async def test_the_first_clause_is_sent_before_the_rest_is_synthesised(
    toolbox: ToolBox, executor: ThreadPoolExecutor
) -> None:
    voice = TimedVoice(slow={"I didn't catch that.": 0.25}, audio_per_char_s=0.12)
    paced = PacedSynthesizer(voice)  # the clause's own synthesis sets the pace, as in the engine
    session = _session(paced, toolbox, executor, synthesis_pace=paced.pace)
    seen = await _typed(session, _NONSENSE)
    await session.aclose()
    assert voice.texts() == _SPLIT
    # One transcript per sentence, the whole sentence, before its audio.
    texts = [e.text for _, e in seen if isinstance(e, ev.AssistantText)]
    assert texts == [_SORRY, _SUGGESTION]
    kinds = [type(e) for _, e in seen]
    assert kinds.index(ev.AssistantText) < kinds.index(ev.AssistantAudio)
    audio = _audio(seen)
    first = audio[0][0]
    head_s = 6 * voice.audio_per_char_s  # "Sorry," plays 0.72 s
    assert first < voice.ended("I didn't catch that.") - 0.1  # heard before the rest was done
    # ... and the rest came before the clause had played: no gap.
    rest_came = next(t for t, _ in audio if t > first + 0.05)
    assert rest_came - first < head_s
    sentence = sum(s for t, s in audio if t < rest_came + 0.05)
    assert sentence == pytest.approx(26 * voice.audio_per_char_s, abs=0.01)


async def test_a_slow_synthesiser_holds_the_clause_until_the_rest_is_ready(
    toolbox: ToolBox, executor: ThreadPoolExecutor
) -> None:
    """When the rest would not be ready before the clause has played, the clause waits:
    the sentence starts as late as it would whole, and plays without a gap."""
    voice = TimedVoice(slow={"I didn't catch that.": 0.3})
    slow_lately = SynthesisPace()
    slow_lately.record("Sorry, I didn't catch that.", 2.0)
    session = _session(voice, toolbox, executor, synthesis_pace=slow_lately)
    seen = await _typed(session, _NONSENSE)
    await session.aclose()
    assert voice.texts() == _SPLIT
    audio = _audio(seen)
    assert audio[0][0] >= voice.ended("I didn't catch that.")
    sent_with_it = [s for t, s in audio if t - audio[0][0] < 0.05]
    assert sum(sent_with_it) == pytest.approx(26 * voice.audio_per_char_s, abs=0.01)


async def test_barge_in_stops_the_sentence_and_drops_its_rest(
    toolbox: ToolBox, executor: ThreadPoolExecutor
) -> None:
    voice = TimedVoice(slow={"I didn't catch that.": 1.5})
    session = _session(voice, toolbox, executor, synthesis_pace=SynthesisPace(0.001))
    events = session.events()
    await session.send(ev.SendText(_NONSENSE))
    async with asyncio.timeout(5):
        while not isinstance(await anext(events), ev.AssistantAudio):
            pass
        await session.send(ev.CancelResponse(heard_text="", played_ms=0))
        cut = time.perf_counter()
        after = [event async for event in _until_end(events)]
    assert after[-1] == ev.AssistantTurnEnded(ev.StopReason.INTERRUPTED)
    assert time.perf_counter() - cut < 0.5  # at once, not after the rest's 1.5 s synthesis
    # the clause's own chunks may follow (sent with the first), never the rest's 1.2 s
    late = sum(len(e.pcm) for e in after if isinstance(e, ev.AssistantAudio)) / 2 / _RATE
    assert late < 6 * voice.audio_per_char_s
    # at most the rest was wasted (if a thread had taken it up; else it never ran); the next
    # sentence was never synthesised
    await asyncio.sleep(1.6)
    await session.aclose()
    assert voice.texts() in (_SPLIT[:1], _SPLIT[:2])


async def _until_end(events: Any) -> Any:
    async for event in events:
        yield event
        if isinstance(event, ev.AssistantTurnEnded):
            return


async def test_the_reply_cache_keeps_the_chunks(
    toolbox: ToolBox, executor: ThreadPoolExecutor
) -> None:
    voice = TimedVoice()
    cached = CachedSynthesizer(PacedSynthesizer(voice))
    session = _session(cached, toolbox, executor)
    first = await _typed(session, _NONSENSE)
    second = await _typed(session, "green bananas dancing")
    await session.aclose()
    assert voice.texts() == _SPLIT  # the second turn: all cached
    pcm = [
        b"".join(e.pcm for _, e in seen if isinstance(e, ev.AssistantAudio))
        for seen in (first, second)
    ]
    assert pcm[0] == pcm[1] and pcm[0]


async def test_the_option_off_synthesises_sentences_whole(
    toolbox: ToolBox, executor: ThreadPoolExecutor
) -> None:
    voice = TimedVoice()
    session = _session(voice, toolbox, executor, first_clause=False)
    seen = await _typed(session, _NONSENSE)
    await session.aclose()
    assert voice.texts() == [_SORRY, _SUGGESTION]
    assert [e.text for _, e in seen if isinstance(e, ev.AssistantText)] == [_SORRY, _SUGGESTION]


async def test_the_stop_wait_prepares_the_first_clause_only(
    toolbox: ToolBox, executor: ThreadPoolExecutor
) -> None:
    """An early guess prepares the answer's first clause (less to synthesise before the
    turn can start); the turn uses it, and synthesises the rest."""
    voice = TimedVoice()
    recognizer = ScriptedRecognizer([_NONSENSE], [_NONSENSE])
    session = _session(voice, toolbox, executor, recognizer)
    t = np.arange(16 * 800) / 16_000
    tone = (8000 * np.sin(2 * np.pi * 220 * t)).astype(np.int16).tobytes()
    turn = await run_turn(session, MicStream().utterance(tone).commands, toolbox=toolbox)
    await session.aclose()
    assert turn.assistant_text == [_SORRY, _SUGGESTION]
    assert voice.texts() == _SPLIT  # "Sorry," once: in the stop wait


def test_the_backend_option() -> None:
    assert LocalBackend.from_options()._first_clause is True
    assert LocalBackend.from_options(first_clause="false")._first_clause is False
    with pytest.raises(BackendError):
        LocalBackend.from_options(first_clause="sometimes")
