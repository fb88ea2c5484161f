"""An early end of the user's turn (`events.UserTurnEnded`): the core, fed scripted VAD frames
with made-up clocks. The backend ends the turn in the VAD's stop wait; the rest of that wait is
hangover, not a barge-in; voiced frames after it are the user going on."""

from __future__ import annotations

from dataclasses import dataclass

from sonicwire.server.core import events as ev
from sonicwire.server.core.session import Session
from sonicwire.server.core.settings import SessionSettings
from sonicwire.server.core.state import TurnState
from sonicwire.server.dsp.settings import SpeechStarted, SpeechStopped

FRAME = 640
ONE_SECOND = bytes(32_000)


@dataclass(frozen=True)
class Frame:
    pcm: bytes
    offset: int
    in_speech: bool
    events: tuple[SpeechStarted | SpeechStopped, ...]
    voiced: bool


class ScriptedFrontEnd:
    """One frame per script character: ``S`` voiced speech, ``^`` voiced speech with the
    VAD's start marker (onset 10 frames back), ``h`` the stop wait (in speech, not voiced),
    ``v`` the stop marker (silence since the last voiced frame), ``.`` quiet."""

    def __init__(self) -> None:
        self.script = ""
        self.frames = 0
        self._silence_from = 0

    @property
    def mic_position(self) -> int:
        return self.frames * FRAME // 2

    def process(self, pcm: bytes) -> list[Frame]:
        out = []
        for _ in range(len(pcm) // FRAME):
            kind = self.script[self.frames]
            offset = self.mic_position
            events: tuple[SpeechStarted | SpeechStopped, ...] = ()
            if kind == "^":
                events = (SpeechStarted(offset - 10 * FRAME // 2),)
            elif kind == "v":
                events = (SpeechStopped(self._silence_from),)
            if kind in "S^":
                self._silence_from = offset + FRAME // 2
            out.append(Frame(bytes(FRAME), offset, kind in "S^h", events, kind in "S^"))
            self.frames += 1
        return out

    def push_far_end(self, pcm: bytes) -> None:
        pass

    def report_playback(self, played_samples: int, output_latency: int = 0) -> None:
        pass

    def truncate_far_end(self, played_samples: int) -> None:
        pass

    def close(self) -> None:
        pass


class Identity:
    def __init__(self, rate_in: int, rate_out: int) -> None:
        pass

    def process(self, pcm: bytes) -> bytes:
        return pcm

    def flush(self) -> bytes:
        return b""


class Live:
    """A core over the scripted front end; ``say(script)`` feeds one frame per character
    at 20 ms per frame and keeps everything the core sent."""

    def __init__(self, **settings: object) -> None:
        self.front = ScriptedFrontEnd()
        self.core = Session(
            "s",
            SessionSettings(**settings),
            front_end=self.front,
            resampler=Identity,  # type: ignore[arg-type]
        )
        self.now = 0.0
        self.outputs: list[ev.ClientOutput] = []
        self.commands: list[ev.BackendCommand] = []

    def say(self, script: str) -> None:
        self.front.script += script
        for _ in script:
            self.core.receive_client(ev.AudioReceived(bytes(FRAME)), self.now)
            self.now += 0.02
            self.drain()

    def backend(self, event: ev.BackendEvent) -> None:
        self.core.receive_backend(event, self.now)
        self.drain()

    def drain(self) -> None:
        self.outputs += self.core.outputs_to_send()
        self.commands += self.core.commands_to_send()

    def of[T](self, kind: type[T]) -> list[T]:
        return [x for x in [*self.outputs, *self.commands] if isinstance(x, kind)]


def _answer(live: Live) -> None:
    live.backend(ev.AssistantText("It's 3:47 PM.", True))
    live.backend(ev.AssistantAudio(ONE_SECOND, 16_000))


def test_an_early_end_of_turn_is_no_barge_in() -> None:
    live = Live()
    live.say("." * 5 + "^" + "S" * 30 + "h" * 10)  # the user stopped 200 ms ago
    assert live.core.state is TurnState.USER_SPEAKING
    live.backend(ev.UserTurnEnded(live.front.mic_position))
    assert live.core.state is TurnState.THINKING
    _answer(live)
    live.say("h" * 15 + "v" + "." * 20)  # the rest of the stop wait: the VAD's hangover
    assert not live.of(ev.InterruptionOut) and not live.of(ev.CancelResponse)
    assert live.core.state is TurnState.RESPONDING
    assert len(live.of(ev.UserSpeechStopped)) == 1  # the backend still gets the marker
    live.backend(ev.AssistantTurnEnded(ev.StopReason.END_TURN))
    live.core.tick(live.now + 2)
    live.drain()
    done = live.of(ev.TurnCompleteOut)
    assert [d.stop_reason for d in done] == [ev.StopReason.END_TURN]
    # measured from the early end, 10 frames after the speech (the marker came 15 later)
    assert 0 < done[0].first_audio_ms < 100


def test_the_user_going_on_cancels_the_early_answer_and_keeps_the_turn() -> None:
    live = Live(barge_in_min_ms=200)
    live.say("." * 5 + "^" + "S" * 30 + "h" * 10)
    live.backend(ev.UserTurnEnded(live.front.mic_position))
    _answer(live)
    live.say("S" * 9)  # 180 ms of voice: not yet
    assert not live.of(ev.InterruptionOut)
    live.say("S")
    (interruption,) = live.of(ev.InterruptionOut)
    assert interruption.source is ev.InterruptionSource.BARGE_IN
    assert len(live.of(ev.CancelResponse)) == 1
    assert live.core.state is TurnState.USER_SPEAKING
    live.backend(ev.AssistantTurnEnded(ev.StopReason.INTERRUPTED))
    live.say("S" * 20 + "h" * 24 + "v")
    assert live.core.state is TurnState.THINKING  # the marker ends the whole utterance
    assert len(live.of(ev.InterruptionOut)) == 1


def test_going_on_before_any_answer_cancels_what_the_backend_prepares() -> None:
    live = Live(barge_in_min_ms=200)
    live.say("." * 5 + "^" + "S" * 30 + "h" * 10)
    live.backend(ev.UserTurnEnded(live.front.mic_position))
    live.say("S" * 10)
    assert live.of(ev.CancelResponse) == [ev.CancelResponse("", 0)]
    assert not live.of(ev.InterruptionOut)  # no assistant turn was open
    assert live.core.state is TurnState.USER_SPEAKING
    # what the backend had under way is dropped until it ends the cancelled answer: its
    # transcript of the guess (the user had not finished) and its tool call too
    live.backend(ev.UserTranscript("what time is it", True))
    live.backend(ev.ToolRequested("c1", "get_date_time", "{}"))
    live.backend(ev.AssistantText("It's 3:47 PM.", True))
    live.backend(ev.AssistantTurnEnded(ev.StopReason.INTERRUPTED))
    assert not live.of(ev.TranscriptOut) and live.core.current_turn_id is None
    assert not live.core.tool_actions() and live.core.history.messages == ()
    assert [r.status for r in live.of(ev.SendToolResult)] == [ev.ToolStatus.CANCELLED]
    live.say("S" * 5 + "h" * 24 + "v")
    _answer(live)  # the answer to the whole utterance is not dropped
    assert len(live.of(ev.AudioOut)) > 0


def test_short_noise_after_an_early_end_is_no_barge_in() -> None:
    live = Live(barge_in_min_ms=200)
    live.say("." * 5 + "^" + "S" * 30 + "h" * 10)
    live.backend(ev.UserTurnEnded(live.front.mic_position))
    _answer(live)
    live.say("SSS" + "h" * 24 + "v")  # a cough: 60 ms of voice
    assert not live.of(ev.InterruptionOut) and not live.of(ev.CancelResponse)


def test_an_early_end_is_refused_while_the_user_speaks_or_with_barge_in_off() -> None:
    """Refused in the middle of an utterance, the early answer is cancelled before any of it
    is heard, its transcript of the guess and its tool call included: the backend answers
    the whole utterance at the marker instead (it would otherwise answer its start and drop
    the rest)."""
    for live, script in (
        (Live(), "." * 5 + "^" + "S" * 30),  # still voiced
        (Live(barge_in=False), "." * 5 + "^" + "S" * 30 + "h" * 10),  # nobody could barge in
    ):
        live.say(script)
        live.backend(ev.UserTurnEnded(live.front.mic_position))
        assert live.core.state is TurnState.USER_SPEAKING
        assert live.of(ev.CancelResponse) == [ev.CancelResponse("", 0)]
        live.backend(ev.UserTranscript("what time is it", True))
        live.backend(ev.ToolRequested("c1", "get_date_time", "{}"))
        _answer(live)
        live.backend(ev.AssistantTurnEnded(ev.StopReason.INTERRUPTED))
        assert not live.of(ev.TranscriptOut) and not live.of(ev.AudioOut)
        assert not live.core.tool_actions() and not live.of(ev.ToolCallOut)
        (result,) = live.of(ev.SendToolResult)  # the backend hears the call is off
        assert (result.call_id, result.status) == ("c1", ev.ToolStatus.CANCELLED)
        assert live.core.history.messages == ()
        live.say("S" * 5 + "h" * 24 + "v")
        assert live.core.state is TurnState.THINKING
        live.backend(ev.UserTranscript("what time is it in tokyo", True))
        _answer(live)  # the answer to the whole utterance is not dropped
        assert [t.text for t in live.of(ev.TranscriptOut)] == [
            "what time is it in tokyo",
            "It's 3:47 PM.",
        ]
        assert live.of(ev.AudioOut) and not live.of(ev.InterruptionOut)


def test_an_early_end_after_the_marker_stands() -> None:
    """The backend decided just before the marker reached it: the marker already ended the
    turn, the backend answers the guess and drops the utterance, so the answer must stand."""
    live = Live()
    live.say("." * 5 + "^" + "S" * 30 + "h" * 24 + "v")
    assert live.core.state is TurnState.THINKING
    live.backend(ev.UserTurnEnded(live.front.mic_position - 25 * FRAME // 2))
    live.backend(ev.UserTranscript("what time is it", True))
    _answer(live)
    assert not live.of(ev.CancelResponse)
    assert [t.text for t in live.of(ev.TranscriptOut)] == ["what time is it", "It's 3:47 PM."]
    assert live.of(ev.AudioOut)


def test_an_early_end_without_an_utterance_is_ignored() -> None:
    quiet = Live()
    quiet.say("." * 10)
    quiet.backend(ev.UserTurnEnded(0))  # no utterance at all
    assert quiet.core.state is TurnState.IDLE
    assert not quiet.of(ev.CancelResponse)


def test_going_on_cancels_the_early_answers_tool_calls_even_those_that_survive_barge_in() -> None:
    """A tool that continues on interruption keeps running through a barge-in, and its result
    is answered in a turn of its own. An early answer the user talks on over was a call for a
    request the user had not finished: it is cancelled (the whole utterance is answered
    at the marker), or the tool would run twice and two answers come."""
    live = Live(barge_in_min_ms=200, tools_surviving_interruption=frozenset({"book_table"}))
    live.say("." * 5 + "^" + "S" * 30 + "h" * 10)
    live.backend(ev.UserTurnEnded(live.front.mic_position))
    live.backend(ev.ToolRequested("c1", "book_table", '{"people": 2}'))
    assert [type(a) for a in live.core.tool_actions()] == [ev.RunTool]
    live.backend(ev.AssistantAudio(ONE_SECOND, 16_000))
    live.say("S" * 10)  # the user goes on
    assert live.of(ev.InterruptionOut)
    cancels = [a for a in live.core.tool_actions() if isinstance(a, ev.CancelTools)]
    assert len(cancels) == 1 and cancels[0].call_ids in (None, ("c1",))
