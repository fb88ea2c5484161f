"""How a local session speaks a reply: sentence by sentence, each one's text, then its audio.

Synthesis blocks (tts.py), so it runs in the executor, never on the loop, and a reply is spoken
a sentence at a time: the first is heard while the next is synthesised, and a barge-in (which
cancels the turn) wastes at most one sentence of work. The first sentence's first clause is
synthesised alone and the rest while it plays (clauses.py); a first sentence prepared in the
VAD's stop wait (foresight.py) is used when it is, word for word, what is to be said.

Audio goes to the core in chunks, and how long each one plays is reported so that the session
can estimate on the mic timeline when it stops talking (session.py: speech over the assistant).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor

from sonicwire.server.core import events as ev

from .clauses import FirstClause, SynthesisPace
from .dialogue import Reply
from .jobs import Prepared
from .tts import Synthesizer

__all__ = ["Speaker"]

# Assistant audio goes to the core in chunks of this length: small enough to start playback
# and to cut it on barge-in with fine grain, big enough to keep the event count low.
_CHUNK_MS = 200


class Speaker:
    """A session's voice. ``pace``: first-clause synthesis (None: off, sentences are
    synthesised whole). ``send`` puts an event out to the core (the session's response output);
    ``played`` is told each piece of audio sent, as (samples, their rate)."""

    def __init__(
        self,
        synthesizer: Synthesizer,
        executor: Executor,
        pace: SynthesisPace | None,
        *,
        send: Callable[[ev.BackendEvent], None],
        played: Callable[[int, int], None],
    ) -> None:
        self._synthesizer = synthesizer
        self._executor = executor
        self._clause = FirstClause(synthesizer, executor, pace)
        self._send = send
        self._played = played
        self._loop = asyncio.get_running_loop()

    def first_part(self, sentence: str) -> str:
        """What `speak` synthesises first of a reply's first ``sentence``: its first clause,
        or the whole sentence."""
        return self._clause.chunks(sentence)[0]

    def synthesis(self, text: str) -> asyncio.Future[bytes]:
        """Start synthesising ``text`` now (in the executor); the audio comes as the future's
        result."""
        return self._loop.run_in_executor(self._executor, self._synthesizer.synthesize, text)

    async def speak(
        self, reply: Reply, prepared: Prepared | None = None, *, said: str = ""
    ) -> None:
        """Speak ``reply``; ``said`` is the start of its first sentence, already played;
        ``prepared``, what the stop wait prepared for it (its first part's audio)."""
        for index, line in enumerate(reply.lines):
            spoken, rest = line.spoken, ""
            if index == 0 and said:
                # The rest of the sentence whose start was played; a reply that does not
                # start that way (an error, another shape) is spoken whole.
                spoken = spoken[len(said) :].strip() if spoken.startswith(said) else spoken
            elif index == 0:
                spoken, rest = self._clause.chunks(spoken)  # its first clause first
            if (
                index == 0
                and not said
                and prepared is not None
                and prepared.audio is not None
                and prepared.spoken == spoken
            ):
                pcm = await prepared.audio  # synthesised in the stop wait
            elif spoken:
                pcm = await self.synthesis(spoken)
            else:
                pcm = b""
            # The rest is synthesised while the clause plays (sent when it may: clauses.py).
            rest_audio = await self._clause.start_rest(pcm, rest) if rest else None
            self.send_text(line.text)  # the whole sentence, as clients see it
            self.play(pcm)
            if rest_audio is not None:
                try:
                    self.play(await rest_audio)
                finally:
                    rest_audio.cancel()  # a barge-in: a rest not started never runs

    def send_text(self, text: str) -> None:
        """Show a sentence of the reply (final: the whole sentence)."""
        self._send(ev.AssistantText(text, True))

    def play(self, pcm: bytes) -> None:
        """Send audio to the core in chunks, and report how long it plays."""
        rate = self._synthesizer.sample_rate
        step = rate * 2 * _CHUNK_MS // 1000
        for start in range(0, len(pcm), step):
            self._send(ev.AssistantAudio(pcm[start : start + step], rate))
        self._played(len(pcm) // 2, rate)
