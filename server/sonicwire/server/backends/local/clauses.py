"""First-clause synthesis: a reply's first sentence heard after its first clause's synthesis.

The user waits for a reply's first audio, and piper renders a sentence whole (150-250 ms for a
short one here). When the first sentence has a clause boundary ("Sorry, I didn't catch that."),
the session synthesises the first clause ("Sorry,") and sends it, and synthesises the rest ("I
didn't catch that.") while it plays. The transcript stays the whole sentence.

- `split_first_clause`: where a spoken sentence splits. A boundary is ",", ";" or ":" followed
  by a space, or a dash between spaces (or an em dash): "1,250", "3:47 PM", "forty-seven" and
  "2.5" never split. The punctuation stays with the clause: piper then renders the clause's
  end as it does inside the sentence (see docs/LOCAL_ENGINE.md, "First-clause synthesis").
- `SynthesisPace` and `PacedSynthesizer`: how fast the synthesiser has been lately, from its
  own recent calls (cache hits are not synthesis, so the reply cache wraps the paced one).
- `head_hold_s`: how long to keep the first clause back so the rest is ready before the clause
  has played. A gap mid-sentence is worse than a later start: under load the hold grows and
  the turn falls back to the sentence's old latency (the rest done, both sent together).
"""

from __future__ import annotations

import asyncio
import re
import statistics
import threading
import time
from collections import deque
from concurrent.futures import Executor

from .tts import Synthesizer, SynthesizerWrapper

__all__ = [
    "MIN_CLAUSE_LETTERS",
    "FirstClause",
    "PacedSynthesizer",
    "SynthesisPace",
    "head_hold_s",
    "split_first_clause",
]

#: The shortest first clause split off, in letters: a word, not a lone letter ("A, B and C").
#: piper renders a one-word clause that keeps its comma as it does inside the sentence
#: (measured, docs/LOCAL_ENGINE.md "First-clause synthesis": "Sorry," 355 ms of speech alone,
#: 390 ms in the sentence, the same falling pitch, 280 ms of silence to the rest against a
#: 310 ms pause in the whole rendering; "Oh," and "So," likewise, ~0.5 s of audio each), so
#: sound asks no longer clause. Time does: the clause must play while the rest is synthesised,
#: which `head_hold_s` checks turn by turn.
MIN_CLAUSE_LETTERS = 2
# A clause boundary: ",;:" and whitespace (so not "1,250", "3:47"), or a dash with spaces round
# it (not "forty-seven"), or an em dash.
_BOUNDARY = re.compile(r"([,;:])\s+|\s+[-\u2013\u2014]\s+|\u2014")  # hyphen, en and em dash
_LETTER = re.compile(r"[^\W\d_]")
# Recent synthesis calls the pace is taken from: enough to ride out one slow call, few enough
# to follow a load that changes within a minute.
_PACE_CALLS = 8
# A synthesis call costs about as much as this many characters more (onnxruntime's fixed
# cost): piper here took 51 ms for "Sorry,", 136 ms for "I didn't get the order number." and
# 173 ms for the whole sentence, i.e. ~4 ms per character and ~25 ms a call.
_CALL_CHARS = 6
# Seconds of synthesis per character (call cost included) before any call was timed: about
# twice piper's here (4-8 ms at a 1-minute load of 3).
_PRIOR_S_PER_CHAR = 0.015
# Kept in hand besides the estimate: an executor thread to free, the loop's own latency, and
# the client's jitter buffer running a little ahead of the server's pacing.
_MARGIN_S = 0.1


def split_first_clause(
    spoken: str, min_letters: int = MIN_CLAUSE_LETTERS
) -> tuple[str, str] | None:
    """(first clause, rest) of a sentence, at the first boundary whose clause has at least
    ``min_letters`` letters and leaves words after it; None when there is none."""
    for boundary in _BOUNDARY.finditer(spoken):
        # The clause keeps its punctuation, and a dash becomes a comma (piper would end a bare
        # clause as a sentence, or read the dash).
        head = spoken[: boundary.start()].rstrip() + (boundary.group(1) or ",")
        rest = spoken[boundary.end() :].strip()
        if len(_LETTER.findall(head)) >= min_letters and _LETTER.search(rest):
            return head, rest
    return None


class SynthesisPace:
    """Seconds of synthesis per character of text, a call's fixed cost counted as
    `_CALL_CHARS` more, from the last few calls (thread-safe). The estimate is the latest
    call's pace (the load now: usually the first clause's own synthesis) or the recent calls'
    median, whichever is slower: a load that rose shows at once, and one call slowed by a
    passing burst does not hold every clause of the next turns back."""

    def __init__(self, prior_s_per_char: float = _PRIOR_S_PER_CHAR) -> None:
        self._prior = prior_s_per_char
        self._recent: deque[float] = deque(maxlen=_PACE_CALLS)
        self._lock = threading.Lock()

    def record(self, text: str, seconds: float) -> None:
        if text:
            with self._lock:
                self._recent.append(seconds / (len(text) + _CALL_CHARS))

    def estimate_s(self, text: str) -> float:
        """How long synthesising ``text`` should take now."""
        with self._lock:
            recent = list(self._recent)
        per_char = max(recent[-1], statistics.median(recent)) if recent else self._prior
        return per_char * (len(text) + _CALL_CHARS)


class PacedSynthesizer(SynthesizerWrapper):
    """A `Synthesizer` that times its calls into a `SynthesisPace`."""

    def __init__(self, inner: Synthesizer, pace: SynthesisPace | None = None) -> None:
        super().__init__(inner)
        self.pace = pace or SynthesisPace()

    def synthesize(self, text: str) -> bytes:
        start = time.perf_counter()
        pcm = self._inner.synthesize(text)
        self.pace.record(text, time.perf_counter() - start)
        return pcm


def head_hold_s(pace: SynthesisPace, rest: str, head_seconds: float) -> float:
    """How long to keep a first clause of ``head_seconds`` of audio back, from the moment the
    synthesis of ``rest`` starts, so that the rest is ready before the clause has played."""
    return max(0.0, pace.estimate_s(rest) + _MARGIN_S - head_seconds)


class FirstClause:
    """A session's first-clause synthesis: `chunks` splits a first sentence, `start_rest`
    starts the rest's synthesis and returns when the clause may be sent. ``pace`` None: off
    (sentences are synthesised whole)."""

    def __init__(
        self, synthesizer: Synthesizer, executor: Executor, pace: SynthesisPace | None
    ) -> None:
        self._synthesizer = synthesizer
        self._executor = executor
        self._pace = pace

    def chunks(self, spoken: str) -> tuple[str, str]:
        """(what to synthesise first, the rest of the sentence or "")."""
        split = split_first_clause(spoken) if self._pace is not None else None
        return split or (spoken, "")

    async def start_rest(self, head: bytes, rest: str) -> asyncio.Future[bytes]:
        """Start synthesising ``rest`` and wait until the clause ``head`` may be sent: at
        once, or after `head_hold_s`, or when the rest is done, whichever is first. The caller
        cancels the future it gets when it stops (a barge-in: not yet started, it never runs);
        cancelled here, this cancels it too."""
        assert self._pace is not None, "chunks() gives no rest when off"
        loop = asyncio.get_running_loop()
        rest_audio = loop.run_in_executor(self._executor, self._synthesizer.synthesize, rest)
        seconds = len(head) / 2 / self._synthesizer.sample_rate
        hold = head_hold_s(self._pace, rest, seconds)
        if hold > 0:
            try:
                await asyncio.wait({rest_audio}, timeout=hold)
            except asyncio.CancelledError:
                rest_audio.cancel()
                raise
        return rest_audio
