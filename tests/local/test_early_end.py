"""A semantic early end of turn, live: the session core (its real front end: echo canceller, noise
suppression, webrtc VAD) and a local session wired as the server's driver wires them.

A complete request is answered before the VAD's stop marker, without the rest of the stop wait
counting as a barge-in; a pause inside a request ("where is my order ... ten oh one") is not
answered; a user who goes on after an early end ("what time is it ... in tokyo") cancels the
early answer and is answered whole; a request no tool serves is answered after 400 ms of
silence, and a user who goes on after it is answered whole too. The early guess is awaited
before the audio goes on, so what is decided does not depend on how fast the machine is (no
wall-clock assertion)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import soxr

from sonicwire.server.backends.base import BackendOptions
from sonicwire.server.backends.local.endpoint import ASK_END_SILENCE_MS, UNKNOWN_END_SILENCE_MS
from sonicwire.server.backends.local.engine import LocalBackend
from sonicwire.server.backends.local.session import LocalSession
from sonicwire.server.core import events as ev
from sonicwire.server.core.session import Session
from sonicwire.server.core.settings import SessionSettings
from sonicwire.server.core.state import TurnState
from sonicwire.server.testing.local_harness import ToolBox

Say = Callable[..., bytes]
_FRAME = 640


def _mic(speech: bytes, *, tail_ms: int = 10_000) -> list[bytes]:
    """400 ms of room noise (-60 dBFS), the speech, then noise: 20 ms frames."""
    voice = np.frombuffer(speech, dtype=np.int16).astype(np.float64)
    signal = np.zeros(16 * 400 + voice.size + 16 * tail_ms)
    signal[16 * 400 : 16 * 400 + voice.size] = voice
    signal += np.random.default_rng(0).normal(0.0, 32768 * 10 ** (-60 / 20), signal.size)
    pcm = np.clip(np.rint(signal), -32768, 32767).astype(np.int16).tobytes()
    return [pcm[i : i + _FRAME] for i in range(0, len(pcm) - _FRAME + 1, _FRAME)]


class Live:
    """Core + local session + tools, fed 20 ms mic frames (the core's clock: 20 ms each)."""

    def __init__(self, core: Session, session: LocalSession, toolbox: ToolBox) -> None:
        self.core, self.session, self.toolbox = core, session, toolbox
        self.now = 0.0
        self.step = 0.02  # seconds of audio per fed chunk
        self.outputs: list[ev.ClientOutput] = []
        self.commands: list[ev.BackendCommand] = []
        self._events: asyncio.Queue[ev.BackendEvent] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for event in self.session.events():
            await self._events.put(event)

    async def pump(self) -> None:
        for _ in range(3):
            await asyncio.sleep(0)
            while not self._events.empty():
                self.core.receive_backend(self._events.get_nowait(), self.now)
            for action in self.core.tool_actions():
                if isinstance(action, ev.RunTool):
                    call = action.call_id, action.name, action.arguments_json
                    done = await self.toolbox.call(*call)
                    self.core.receive_tool_result(
                        ev.ToolCompleted(done.call_id, done.name, done.status, done.result_json, 1),
                        self.now,
                    )
            for command in self.core.commands_to_send():
                self.commands.append(command)
                await self.session.send(command)
            self.outputs += self.core.outputs_to_send()

    async def feed(self, frame: bytes, *, paced: bool) -> None:
        self.core.receive_client(ev.AudioReceived(frame), self.now)
        self.now += self.step
        await self.pump()
        if paced:
            await asyncio.sleep(self.step)  # the engine works while the audio goes on, as live

    async def until_guess(self, frames: list[bytes], start: int, *, paced: bool) -> tuple[int, Any]:
        """Feed until the session guesses the end of speech; returns the next frame's index and
        the answer prepared for the guess, awaited; a complete request's early end waits for
        200 ms of silence, which is fed too (its decision then depends on the audio only)."""
        before = self.session._guess
        for index in range(start, len(frames)):
            await self.feed(frames[index], paced=paced)
            guess = self.session._guess
            if guess is not None and guess is not before:
                prepared = await guess[1]
                await self.pump()
                index += 1
                while self.session._end_pending is not None:
                    await self.feed(frames[index], paced=paced)
                    index += 1
                return index, prepared
        raise AssertionError("no early guess")

    async def finish(self, frames: list[bytes], start: int, *, most_s: float = 60.0) -> None:
        """Feed the rest, then more of the room's noise, until an assistant turn ends with
        END_TURN and the VAD has stopped: at most ``most_s`` seconds of audio in all.

        The bound is on the audio, not on the wall clock: paced, a frame costs at least its
        20 ms of wall time, and a loaded machine answers in more wall time, not after more of
        the user's audio. With the mic's 10 s of noise as the end (and a 60 s wall-clock
        deadline), a recognition slowed to 8 s a call (as at a high load) failed with "did not
        finish" though every answer was right; a live microphone goes on until the answer."""
        frames = frames[start:]
        room = itertools.repeat(frames[-1])  # the mic's last frame: room noise
        for frame in itertools.islice(itertools.chain(frames, room), round(most_s / self.step)):
            await self.feed(frame, paced=True)
            ends = [t.stop_reason for t in self.of(ev.TurnCompleteOut)]
            if ev.StopReason.END_TURN in ends and self.stopped:
                return
        raise AssertionError(f"the assistant did not finish its answer in {most_s:g} s of audio")

    @property
    def stopped(self) -> bool:
        return any(isinstance(o, ev.SpeechActivityOut) and not o.started for o in self.outputs)

    def of[T](self, kind: type[T]) -> list[T]:
        return [x for x in [*self.outputs, *self.commands] if isinstance(x, kind)]

    def calls(self) -> list[tuple[str, Any]]:
        return [(c.name, json.loads(c.arguments_json)) for c in self.of(ev.ToolCallOut)]

    def said(self, role: ev.Role) -> list[str]:
        return [t.text for t in self.of(ev.TranscriptOut) if t.role is role and t.final]

    async def aclose(self) -> None:
        self.core.abort()
        await self.session.aclose()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)


async def _live(backend: LocalBackend, toolbox: ToolBox, **settings: Any) -> Live:
    session = await backend.open(BackendOptions(session_id="t", tools=toolbox.descriptions))
    return Live(Session("t", SessionSettings(**settings)), session, toolbox)


async def test_a_complete_request_is_answered_before_the_stop_marker(
    backend: LocalBackend, toolbox: ToolBox, say: Say
) -> None:
    live = await _live(backend, toolbox)
    frames = _mic(say("what time is it", "espeak:en-us"))
    try:
        sent, prepared = await live.until_guess(frames, 0, paced=False)
        assert prepared.complete
        # the turn ended in the VAD's stop wait: the core waits for the answer, the VAD
        # has not stopped yet
        assert live.core.state in (TurnState.THINKING, TurnState.RESPONDING)
        assert not live.stopped
        await live.finish(frames, sent)
    finally:
        await live.aclose()
    assert live.calls() == [("get_date_time", {})]
    assert live.said(ev.Role.USER) == ["what time is it"]
    assert not live.of(ev.InterruptionOut) and not live.of(ev.CancelResponse)
    turns = live.of(ev.TurnCompleteOut)
    assert [t.stop_reason for t in turns] == [ev.StopReason.END_TURN]  # answered once
    assert live.said(ev.Role.ASSISTANT)[0] == "It's 3:47 PM."


async def test_a_pause_inside_a_request_is_not_answered(
    backend: LocalBackend, toolbox: ToolBox, say: Say
) -> None:
    live = await _live(backend, toolbox)
    pause = bytes(2 * 16 * 350)  # longer than the guess's 200 ms, shorter than stop_secs
    speech = say("where is my order", "espeak:en-us") + pause + say("ten oh one", "espeak:en-us")
    frames = _mic(speech)
    try:
        sent, prepared = await live.until_guess(frames, 0, paced=False)  # in the pause
        assert not prepared.complete  # the order number is still to come
        assert live.core.state is TurnState.USER_SPEAKING
        sent, prepared = await live.until_guess(frames, sent, paced=True)  # after the number
        assert prepared.complete
        await live.finish(frames, sent)
    finally:
        await live.aclose()
    assert live.said(ev.Role.USER) == ["where is my order ten oh one"]
    assert live.calls() == [("track_order", {"order_id": "1001"})]
    assert "Sure. What's the order number?" not in live.said(ev.Role.ASSISTANT)
    assert not live.of(ev.InterruptionOut) and not live.of(ev.CancelResponse)


async def test_a_user_who_goes_on_after_an_early_end_is_answered_whole(
    backend: LocalBackend, toolbox: ToolBox, say: Say
) -> None:
    live = await _live(backend, toolbox)
    pause = bytes(2 * 16 * 400)
    speech = say("what time is it", "espeak:en-us") + pause + say("in tokyo", "espeak:en-us")
    frames = _mic(speech)
    try:
        sent, prepared = await live.until_guess(frames, 0, paced=False)  # in the pause
        assert prepared.complete  # "what time is it" is a whole request: the turn ends
        assert live.core.state in (TurnState.THINKING, TurnState.RESPONDING)
        await live.finish(frames, sent)
    finally:
        await live.aclose()
    # the early answer was cancelled when the user went on ...
    assert len(live.of(ev.CancelResponse)) == 1
    # ... and the whole utterance, not a part of it, was answered
    assert live.said(ev.Role.USER)[-1] == "what time is it in tokyo"
    assert live.calls()[-1] == ("get_date_time", {"timezone": "Asia/Tokyo"})
    assert live.said(ev.Role.ASSISTANT)[-2:] == ["It's 12:47 AM.", "Today is Wednesday, May 6."]
    ended = [t.stop_reason for t in live.of(ev.TurnCompleteOut)]
    assert ended.count(ev.StopReason.END_TURN) == 1


async def test_a_request_missing_its_argument_is_asked_for_after_a_longer_silence(
    backend: LocalBackend, toolbox: ToolBox, say: Say
) -> None:
    """ "where is my order" is answered with a question, and the number may come after a
    pause: the turn ends before the stop marker, but only after 400 ms of silence, not 200."""
    live = await _live(backend, toolbox)
    frames = _mic(say("where is my order", "espeak:en-us"))
    try:
        before, sent = live.session._guess, 0
        for frame in frames:  # up to the guess
            await live.feed(frame, paced=False)
            sent += 1
            if live.session._guess is not None and live.session._guess is not before:
                break
        guess, preparing = live.session._guess  # type: ignore[misc]
        prepared = await preparing
        assert not prepared.complete
        assert prepared.end_after == 16 * ASK_END_SILENCE_MS
        while live.session._ended_early is None and not live.stopped:
            await live.feed(frames[sent], paced=False)
            sent += 1
        # the turn ended after 400 ms of silence (not at 200), before the VAD's marker
        silence_ms = (live.session._position - guess.silence_start) // 16
        assert live.session._ended_early is not None
        assert ASK_END_SILENCE_MS <= silence_ms < ASK_END_SILENCE_MS + 40
        assert live.core.state in (TurnState.THINKING, TurnState.RESPONDING)
        assert not live.stopped
        await live.finish(frames, sent)
    finally:
        await live.aclose()
    assert live.said(ev.Role.USER) == ["where is my order"]
    assert live.said(ev.Role.ASSISTANT) == ["Sure. What's the order number?"]
    assert not live.calls() and not live.of(ev.CancelResponse)


async def test_a_user_who_says_the_number_after_a_longer_pause_is_answered_whole(
    backend: LocalBackend, toolbox: ToolBox, say: Say
) -> None:
    """The question is cancelled when the user goes on, and the whole request is answered:
    no words lost, the question's start at most."""
    live = await _live(backend, toolbox)
    pause = bytes(2 * 16 * 450)  # longer than ASK_END_SILENCE_MS, shorter than stop_secs
    speech = say("where is my order", "espeak:en-us") + pause + say("ten oh one", "espeak:en-us")
    frames = _mic(speech)
    try:
        sent, prepared = await live.until_guess(frames, 0, paced=False)  # in the pause
        assert prepared.end_after == 16 * ASK_END_SILENCE_MS
        await live.finish(frames, sent)
    finally:
        await live.aclose()
    assert len(live.of(ev.CancelResponse)) == 1
    assert live.said(ev.Role.USER)[-1] == "where is my order ten oh one"
    assert live.calls() == [("track_order", {"order_id": "1001"})]
    ended = [t.stop_reason for t in live.of(ev.TurnCompleteOut)]
    assert ended.count(ev.StopReason.END_TURN) == 1


async def test_a_short_pause_after_a_complete_request_does_not_end_the_turn(
    backend: LocalBackend, toolbox: ToolBox, say: Say
) -> None:
    """The guess is recognised 100 ms into a pause, but the turn ends only after 200 ms of
    silence: "what time is it" (150 ms) "in tokyo" is one request, answered once."""
    live = await _live(backend, toolbox)
    pause = bytes(2 * 16 * 150)
    speech = say("what time is it", "espeak:en-us") + pause + say("in tokyo", "espeak:en-us")
    frames = _mic(speech)
    try:
        before, sent = live.session._guess, 0
        for frame in frames:  # up to the guess in the pause
            await live.feed(frame, paced=False)
            sent += 1
            if live.session._guess is not None and live.session._guess is not before:
                break
        prepared = await live.session._guess[1]  # type: ignore[index]
        assert prepared.complete and live.session._end_pending is not None
        await live.finish(frames, sent)
    finally:
        await live.aclose()
    assert not live.of(ev.CancelResponse) and not live.of(ev.InterruptionOut)
    assert live.said(ev.Role.USER) == ["what time is it in tokyo"]
    assert live.calls() == [("get_date_time", {"timezone": "Asia/Tokyo"})]


async def test_with_barge_in_off_a_pause_inside_a_request_loses_no_words(
    backend: LocalBackend, toolbox: ToolBox, say: Say
) -> None:
    """Barge-in off: the core refuses the early end (a user who goes on could not take the
    floor back), so the engine must not answer the guess; the whole utterance is answered
    at the marker, once."""
    live = await _live(backend, toolbox, barge_in=False)
    pause = bytes(2 * 16 * 400)
    speech = say("what time is it", "espeak:en-us") + pause + say("in tokyo", "espeak:en-us")
    frames = _mic(speech)
    try:
        sent, prepared = await live.until_guess(frames, 0, paced=False)  # in the pause
        assert prepared.complete  # the engine would end the turn here ...
        assert live.core.state is TurnState.USER_SPEAKING  # ... the core does not take it
        await live.finish(frames, sent)
    finally:
        await live.aclose()
    assert live.said(ev.Role.USER) == ["what time is it in tokyo"]
    assert live.calls() == [("get_date_time", {"timezone": "Asia/Tokyo"})]
    assert "It's 3:47 PM." not in live.said(ev.Role.ASSISTANT)  # the guess was not answered
    ended = [t.stop_reason for t in live.of(ev.TurnCompleteOut)]
    assert ended == [ev.StopReason.END_TURN]


@pytest.mark.parametrize("rate", [16_000, 8_000], ids=["16k", "8k"])
async def test_a_client_sending_100_ms_chunks_who_goes_on_is_answered_whole(
    backend: LocalBackend, toolbox: ToolBox, say: Say, rate: int
) -> None:
    """As above, from a client that sends 100 ms chunks (five front-end frames per message),
    at 16 kHz and at a telephone's 8 kHz (the core resamples up): the early end, the user
    going on and the answer to the whole utterance do not depend on the chunking."""
    live = await _live(backend, toolbox, input_sample_rate=rate)
    live.step = 0.1
    pause = bytes(2 * 16 * 400)
    speech = say("what time is it", "espeak:en-us") + pause + say("in tokyo", "espeak:en-us")
    pcm = b"".join(_mic(speech))
    if rate != 16_000:
        wide = np.frombuffer(pcm, dtype=np.int16)
        pcm = soxr.resample(wide, 16_000, rate).astype(np.int16).tobytes()
    size = rate * 2 // 10
    chunks = [pcm[i : i + size] for i in range(0, len(pcm) - size + 1, size)]
    try:
        # the guess in the pause is awaited before the audio goes on (as in the tests above):
        # on a loaded machine its recognition could otherwise outlast the 400 ms pause
        sent, prepared = await live.until_guess(chunks, 0, paced=False)
        assert prepared.complete
        await live.finish(chunks, sent)
    finally:
        await live.aclose()
    # the turn ended early, the user went on, the early answer was cancelled ...
    assert len(live.of(ev.CancelResponse)) == 1
    # ... and the whole utterance was answered, once (the phone band may cost a word)
    assert live.said(ev.Role.USER)[-1].endswith("in tokyo")
    assert live.calls()[-1] == ("get_date_time", {"timezone": "Asia/Tokyo"})
    ended = [t.stop_reason for t in live.of(ev.TurnCompleteOut)]
    assert ended.count(ev.StopReason.END_TURN) == 1
    assert "It's 12:47 AM." in live.said(ev.Role.ASSISTANT)


async def test_a_reading_not_understood_ends_the_turn_after_a_longer_silence(
    backend: LocalBackend, toolbox: ToolBox, say: Say
) -> None:
    """A request no tool serves, read as like no tool, is answered ("Sorry, I didn't catch
    that.") after 400 ms of silence instead of at the VAD's marker: the marker would answer
    the same reading of the same audio (it confirms the guess), only later."""
    live = await _live(backend, toolbox)
    frames = _mic(say("play some music", "espeak:en-us"))
    try:
        before, sent = live.session._guess, 0
        for frame in frames:  # up to the guess
            await live.feed(frame, paced=False)
            sent += 1
            if live.session._guess is not None and live.session._guess is not before:
                break
        guess, preparing = live.session._guess  # type: ignore[misc]
        prepared = await preparing
        assert not prepared.complete
        assert prepared.end_after == 16 * UNKNOWN_END_SILENCE_MS
        while live.session._ended_early is None and not live.stopped:
            await live.feed(frames[sent], paced=False)
            sent += 1
        silence_ms = (live.session._position - guess.silence_start) // 16
        assert live.session._ended_early is not None
        assert UNKNOWN_END_SILENCE_MS <= silence_ms < UNKNOWN_END_SILENCE_MS + 40
        assert live.core.state in (TurnState.THINKING, TurnState.RESPONDING)
        assert not live.stopped  # before the VAD's marker
        await live.finish(frames, sent)
    finally:
        await live.aclose()
    assert live.said(ev.Role.ASSISTANT)[0] == "Sorry, I didn't catch that."
    assert not live.calls() and not live.of(ev.CancelResponse)
    ended = [t.stop_reason for t in live.of(ev.TurnCompleteOut)]
    assert ended == [ev.StopReason.END_TURN]


async def test_a_user_who_goes_on_after_a_reading_not_understood_is_answered_whole(
    backend: LocalBackend, toolbox: ToolBox, say: Say
) -> None:
    """A user who pauses 450 ms (past the 400 ms, before the marker) after words no tool
    serves and then asks: the early "Sorry" is cancelled and the whole utterance answered."""
    live = await _live(backend, toolbox)
    pause = bytes(2 * 16 * 450)
    speech = say("play some music", "espeak:en-us") + pause + say("what time is it", "espeak:en-us")
    frames = _mic(speech)
    try:
        sent, prepared = await live.until_guess(frames, 0, paced=False)  # in the pause
        assert prepared.end_after == 16 * UNKNOWN_END_SILENCE_MS
        await live.finish(frames, sent)
    finally:
        await live.aclose()
    assert len(live.of(ev.CancelResponse)) == 1
    assert live.said(ev.Role.USER)[-1].endswith("what time is it")
    assert live.calls() == [("get_date_time", {})]
    ended = [t.stop_reason for t in live.of(ev.TurnCompleteOut)]
    assert ended.count(ev.StopReason.END_TURN) == 1
