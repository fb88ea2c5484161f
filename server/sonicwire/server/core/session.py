"""The session core: one conversation, no I/O.

A driver (the gRPC servicer, a test, the benchmark) owns a `Session` per stream and:

1. feeds it: `receive_client` (client messages), `receive_backend` (backend events),
   `receive_tool_result` (tool outcomes), `tick` (time passes), `close` (client half-closed);
2. then drains it: `outputs_to_send` (to the client), `commands_to_send` (to the backend),
   `tool_actions` (to the tool runner); and calls `tick` again at `next_deadline`.

Every input takes ``now``, a monotonic time in seconds read by the driver: the core never reads
a clock, so tests drive it with made-up times. Client rule violations raise `ProtocolError`;
a fatal backend event raises `BackendError`.

Turn-taking: the VAD's markers end and start the user's turn; a backend may end it earlier, in
the VAD's stop wait (`ev.UserTurnEnded`, a semantic end of turn), and the user's raw voice
activity then tells the rest of that wait (hangover) from the user going on (`core.speech`).

Audio path: client audio -> resample to 16 kHz -> `FrontEnd` (echo cancel, noise suppress, VAD)
-> backend. Assistant audio -> queued -> released paced at real time plus a small lead -> the
client, and (resampled to 16 kHz) into the front end as the echo reference.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sonicwire.server.core import events as ev
from sonicwire.server.core.errors import BackendError
from sonicwire.server.core.history import History, Message, truncate_to_heard
from sonicwire.server.core.input_rules import check_audio, check_playback, check_text, quoted
from sonicwire.server.core.playout import AssistantTurn, TurnResamplers, release_batch_ms
from sonicwire.server.core.ports import FrontEndPort, ResamplerFactory
from sonicwire.server.core.settings import SessionSettings
from sonicwire.server.core.speech import Heard, UserSpeech
from sonicwire.server.core.state import Trigger, TurnMachine, TurnState
from sonicwire.server.core.tool_calls import ToolCalls
from sonicwire.server.dsp.frames import SAMPLE_RATE
from sonicwire.server.dsp.settings import SpeechStarted, SpeechStopped

__all__ = ["Session"]

_CANCELLED_GUESS = json.dumps(
    {"error": {"type": "cancelled", "message": "the user had not finished speaking"}}
)


# The C-backed defaults, imported only when the caller injects none: the core itself stays
# importable without libspeexdsp, webrtcvad, numpy and soxr.
def _production_front_end(settings: SessionSettings) -> FrontEndPort:
    from sonicwire.server.dsp.pipeline import FrontEnd

    return FrontEnd(settings.front_end)


def _production_resampler() -> ResamplerFactory:
    from sonicwire.server.dsp.resample import Resampler

    return Resampler


def _samples_to_ms(samples: int, rate: int = SAMPLE_RATE) -> int:
    return samples * 1000 // rate


class Session:
    """One conversation's state: turns, barge-in, audio pacing, far-end reference, history."""

    def __init__(
        self,
        session_id: str,
        settings: SessionSettings,
        *,
        front_end: FrontEndPort | None = None,
        resampler: ResamplerFactory | None = None,
        input_resampler: ResamplerFactory | None = None,
    ) -> None:
        """``front_end`` and ``resampler`` are injected by the driver (`core.ports`); left out,
        the production ones are built (`dsp.pipeline.FrontEnd` from ``settings.front_end``,
        `dsp.resample.Resampler`), which need the DSP's C libraries; ``input_resampler``, if
        given, converts the client's audio (its latency delays the VAD's end-of-speech)."""
        self.session_id = session_id
        self.settings = settings
        self.history = History()
        self._machine = TurnMachine()
        if front_end is None:
            front_end = _production_front_end(settings)
        if resampler is None:
            resampler = _production_resampler()
        self._front_end: FrontEndPort = front_end
        make_input = input_resampler or resampler
        self._input_resampler = make_input(settings.input_sample_rate, SAMPLE_RATE)
        self._resamplers = TurnResamplers(resampler, settings.output_sample_rate)
        self._outputs: list[ev.ClientOutput] = []
        self._commands: list[ev.BackendCommand] = []
        self._tool_actions: list[ev.ToolAction] = []
        self._turn: AssistantTurn | None = None
        self._turn_count = 0
        self._far_end_pushed = 0  # 16 kHz samples of assistant audio released so far
        self._batch_ms = release_batch_ms(settings.playback_batch_ms, settings.playback_lead_ms)
        self._turn_far_starts: dict[str, int] = {}
        # After a barge-in the backend may still deliver audio of the cut turn; it is dropped
        # until the backend confirms the turn ended.
        self._discarding = False
        # A cancelled early answer's transcript of its guess is dropped too (the user had not
        # finished): `_end_user_turn_early`, `_resume_user_turn`.
        self._discarding_guess = False
        self._user_stopped_at: float | None = None
        self._transcript_ms = 0
        self._speech = UserSpeech(settings.barge_in_min_ms)
        self._tools = ToolCalls(settings.client_tools, settings.tools_surviving_interruption)
        self._client_closed = False
        self._ended = False
        self._user_turn = 0

    def resume_from(self, history: Sequence[Message], turn_count: int, user_turn: int) -> None:
        """Continue a saved conversation (`core.snapshot`): its history and turn numbering.

        Call before any input; turn ids then go on where the saved conversation stopped.
        """
        self.history = History(list(history))
        self._turn_count = max(0, turn_count)
        self._user_turn = max(0, user_turn)

    @property
    def turn_counters(self) -> tuple[int, int]:
        """``(assistant turns, user turns)`` so far, for `core.snapshot.ConversationState`."""
        return self._turn_count, self._user_turn

    # --- state -----------------------------------------------------------------------------

    @property
    def state(self) -> TurnState:
        return self._machine.state

    @property
    def ended(self) -> bool:
        """True once the conversation is over and `EndSession` was queued for the backend."""
        return self._ended

    @property
    def awaiting_response(self) -> bool:
        """True while the user waits for the assistant: a turn or a tool call is open, or the
        user finished speaking and nothing has come back yet."""
        return (
            self._turn is not None
            or self._tools.pending
            or self._machine.state is TurnState.THINKING
        )

    @property
    def waiting_on_client_tool(self) -> bool:
        """True while a call the client executes is open: the server waits on the client,
        whose silence meanwhile is not idleness."""
        return self._tools.client_pending

    @property
    def pending_output_bytes(self) -> int:
        """Assistant audio received but not yet released (echo reference + client format).

        The driver stops reading client input while this is over its budget, so a backend
        that answers faster than real time cannot grow the session without bound.
        """
        turn = self._turn
        return 0 if turn is None else len(turn.ref_queue) + len(turn.out_queue)

    @property
    def current_turn_id(self) -> str | None:
        return self._turn.turn_id if self._turn else None

    # --- inputs ----------------------------------------------------------------------------

    def receive_client(self, event: ev.ClientEvent, now: float) -> None:
        """Handle a client message. Raises `ProtocolError` on a rule violation."""
        if self._ended:
            return
        if type(event) is ev.AudioReceived:  # ~50 a second: before the match (a final class)
            self._receive_audio(event.audio, now)
            return
        match event:
            case ev.AudioReceived(audio):
                self._receive_audio(audio, now)
            case ev.TextReceived(text):
                self._receive_text(text, now)
            case ev.ToolResultReceived(call_id, content, is_error):
                if self._tools.is_client_call(call_id):
                    self._tool_actions.append(ev.DeliverToolResult(call_id, content, is_error))
                else:
                    self._outputs.append(
                        ev.WarningOut(
                            "TOOL_RESULT_UNEXPECTED",
                            f"no client tool call {quoted(call_id)} is waiting for a result",
                        )
                    )
            case ev.PlaybackReported(turn_id, played_ms, output_latency_ms):
                self._receive_playback(turn_id, played_ms, output_latency_ms)

    def receive_backend(self, event: ev.BackendEvent, now: float) -> None:
        """Handle a backend event. Raises `BackendError` for `BackendFailed`."""
        if self._ended:
            return
        match event:
            case ev.AssistantAudio(pcm, rate):
                if not self._discarding and pcm:
                    self._queue_audio(pcm, rate, now)
            case ev.AssistantText(text, final):
                if self._discarding:
                    return
                turn = self._open_turn(now)
                if final:
                    turn.final_text.append(text)
                self._outputs.append(ev.TranscriptOut(ev.Role.ASSISTANT, text, final, turn.turn_id))
            case ev.UserTurnEnded():
                self._end_user_turn_early(now)
            case ev.UserTranscript(text, final):
                if self._discarding_guess:
                    return
                if final:
                    self.history.add(ev.Role.USER, text)
                    if self._user_stopped_at is not None:
                        self._transcript_ms = _measured_ms(self._user_stopped_at, now)
                self._outputs.append(
                    ev.TranscriptOut(ev.Role.USER, text, final, f"u{self._user_turn}")
                )
            case ev.ToolRequested(call_id, name, arguments_json) if self._discarding_guess:
                # A call of a cancelled early answer: never run (the whole utterance will be
                # answered); CANCELLED, so the backend answers no late result either.
                self._commands.append(
                    ev.SendToolResult(call_id, name, _CANCELLED_GUESS, ev.ToolStatus.CANCELLED)
                )
            case ev.ToolRequested(call_id, name, arguments_json):
                turn = self._open_turn(now)
                executor = self._tools.executor(name)
                if executor is ev.ToolExecutor.CLIENT and self._client_closed:
                    # A half-closed client can no longer send a ToolResult: answer the model
                    # at once instead of letting the call run into its timeout.
                    result = json.dumps(
                        {"error": {"type": "unavailable", "message": "the client has ended input"}}
                    )
                    self._outputs.append(
                        ev.ToolCallResultOut(call_id, name, ev.ToolStatus.CANCELLED, result, 0)
                    )
                    self._commands.append(
                        ev.SendToolResult(call_id, name, result, ev.ToolStatus.CANCELLED)
                    )
                    return
                call = ev.ToolCallOut(call_id, name, arguments_json, executor, turn.turn_id)
                if (announced := self._tools.open(call)) is not None:
                    self._outputs.append(announced)
                self._tool_actions.append(ev.RunTool(call_id, name, arguments_json, executor))
            case ev.AssistantTurnEnded(reason):
                if self._discarding:
                    self._discarding = self._discarding_guess = False
                elif self._turn is not None and reason is not ev.StopReason.TOOL_USE:
                    self._resamplers.flush(self._turn)
                    self._turn.generation_ended = reason
                    self._release(now)
            case ev.AssistantInterrupted():
                if self._turn is not None and not self._discarding:
                    self._interrupt(now, ev.InterruptionSource.BACKEND, tell_backend=False)
                self._discarding = self._discarding_guess = False
            case ev.UsageReported(inp, out, total):
                self._outputs.append(ev.UsageOut(inp, out, total))
            case ev.BackendFailed(reason, message, retryable, code):
                raise BackendError(reason, message, code=code, retryable=retryable)
        self._maybe_end()

    def receive_tool_dispatched(self, call_id: str) -> None:
        """The runner accepted a call's arguments: a client-executed call goes to the client."""
        call = self._tools.dispatched(call_id)
        if call is not None and not self._ended:
            self._outputs.append(call)

    def receive_tool_result(self, result: ev.ToolCompleted, now: float) -> None:
        """Handle a tool call's outcome from the runner."""
        if not self._tools.complete(result.call_id) or self._ended:
            return
        if self._turn is not None:
            self._turn.tools_ms += result.duration_ms
        self._outputs.append(
            ev.ToolCallResultOut(
                result.call_id, result.name, result.status, result.result_json, result.duration_ms
            )
        )
        self._commands.append(
            ev.SendToolResult(result.call_id, result.name, result.result_json, result.status)
        )
        self._maybe_end()

    def tick(self, now: float) -> None:
        """Let time pass: release paced audio and finish turns whose audio is all out."""
        if self._ended:
            return
        if self._turn is not None:
            self._release(now)
        self._maybe_end()

    def close(self, now: float) -> None:
        """The client half-closed: end after the current turn (speech in progress counts)."""
        if self._client_closed:
            return
        self._client_closed = True
        if (cancel := self._tools.client_closed()) is not None:
            # Its pending client calls can no longer be answered: the model hears so now,
            # not after each call's timeout (or a BACKEND_TIMEOUT blaming the backend).
            self._tool_actions.append(cancel)
        if self._speech.onset is not None:
            # The stream ended mid-utterance: treat its end as the end of speech so the last
            # thing the user said is still answered.
            self._on_speech_stopped(self._front_end_position(), now)
        self._commands.append(ev.InputEnded())
        self._maybe_end()

    def go_away(self, reason: str, grace_ms: int) -> None:
        """Tell the client the server is shutting down."""
        self._outputs.append(ev.GoingAwayOut(reason, grace_ms))

    def abort(self) -> None:
        """The stream is gone (cancel, error): drop everything, close the backend and tools."""
        if not self._ended:
            self._ended = True
            if (cancel := self._tools.cancel_all("session ended")) is not None:
                self._tool_actions.append(cancel)
            self._commands.append(ev.EndSession())
            self._machine.fire(Trigger.CLOSE)
        self._front_end.close()

    # --- outputs ---------------------------------------------------------------------------

    def outputs_to_send(self) -> list[ev.ClientOutput]:
        out, self._outputs = self._outputs, []
        return out

    def commands_to_send(self) -> list[ev.BackendCommand]:
        out, self._commands = self._commands, []
        return out

    def tool_actions(self) -> list[ev.ToolAction]:
        out, self._tool_actions = self._tool_actions, []
        return out

    def next_deadline(self) -> float | None:
        """When `tick` must be called next to keep audio flowing, or None if nothing waits."""
        turn = self._turn
        if turn is None:
            return None
        return turn.next_due(self.settings.playback_lead_ms, self._batch_ms)

    # --- client audio and text -------------------------------------------------------------

    def _receive_audio(self, audio: bytes, now: float) -> None:
        check_audio(audio, self.settings.max_audio_chunk_bytes)
        if self._client_closed:
            return
        pcm = self._input_resampler.process(audio)
        for frame in self._front_end.process(pcm):
            self._commands.append(ev.SendAudio(frame.pcm))
            for vad_event in frame.events:
                match vad_event:
                    case SpeechStarted(offset):
                        self._on_speech_started(offset, now)
                    case SpeechStopped(offset):
                        self._on_speech_stopped(offset, now)
            heard = self._speech.hear(frame)
            if heard is Heard.RESUMED:
                self._resume_user_turn(now)
            elif (
                heard is Heard.LONG
                and self._machine.state is TurnState.RESPONDING
                and self.settings.barge_in
                and not self._discarding
            ):
                self._barge_in(now)
        self.tick(now)

    def _barge_in(self, now: float, *, survive: bool = True) -> None:
        self._interrupt(now, ev.InterruptionSource.BARGE_IN, tell_backend=True, survive=survive)
        self._machine.fire(Trigger.BARGE_IN)
        self._begin_user_turn()

    def _end_user_turn_early(self, now: float) -> None:
        """The backend ended the user's turn before the stop marker (`ev.UserTurnEnded`):
        taken in the stop wait of a silent user, as the marker would be, when barge-in is on
        (otherwise a user who goes on could not take the floor back). Refused while the
        utterance goes on, the answer is cancelled at once (its output dropped until the
        backend ends it): the backend then answers the whole utterance at the marker, instead
        of answering its start and dropping the rest. After the marker it stands."""
        if (
            self._machine.state is TurnState.USER_SPEAKING
            and self.settings.barge_in
            and self._speech.end_early()
        ):
            self._user_stopped_at = now
            self._transcript_ms = 0
            self._machine.fire(Trigger.SPEECH_STOPPED)
        elif self._speech.onset is not None and not self._speech.ended_early:
            self._commands.append(ev.CancelResponse("", 0))
            self._discarding = self._discarding_guess = True

    def _resume_user_turn(self, now: float) -> None:
        """The user spoke again after an early end of turn: the early answer goes (as at a
        barge-in), the user's turn goes on; the backend keeps the utterance whole."""
        state = self._machine.state
        if state is TurnState.RESPONDING and not self._discarding:
            # no call of it survives: the request was not finished (answered whole later)
            self._barge_in(now, survive=False)
            return
        # No answer out yet (or all of it already played): cancel what is being prepared.
        self._commands.append(ev.CancelResponse("", 0))
        # the backend ends a cancelled early answer with AssistantTurnEnded (INTERRUPTED)
        # unless it had ended; its output until then is dropped
        self._discarding = self._discarding_guess = state is TurnState.THINKING
        self._user_stopped_at = None
        self._machine.fire(Trigger.SPEECH_STARTED)
        self._begin_user_turn()

    def _on_speech_started(self, offset: int, now: float) -> None:
        self._speech.started(offset)
        self._outputs.append(ev.SpeechActivityOut(True, _samples_to_ms(offset)))
        self._commands.append(ev.UserSpeechStarted(offset))
        if self._machine.state is not TurnState.RESPONDING:
            self._begin_user_turn()
        self._machine.fire(Trigger.SPEECH_STARTED)

    def _on_speech_stopped(self, offset: int, now: float) -> None:
        self._speech.stopped()
        self._outputs.append(ev.SpeechActivityOut(False, _samples_to_ms(offset)))
        self._commands.append(ev.UserSpeechStopped(offset))
        if self._machine.state is TurnState.USER_SPEAKING:
            self._user_stopped_at = now
            self._transcript_ms = 0
        self._machine.fire(Trigger.SPEECH_STOPPED)

    def _begin_user_turn(self) -> None:
        self._user_turn += 1

    def _front_end_position(self) -> int:
        return self._front_end.mic_position

    def _receive_text(self, text: str, now: float) -> None:
        check_text(text, self.settings.max_text_bytes)
        if self._client_closed:
            return
        if self._turn is not None:
            self._interrupt(now, ev.InterruptionSource.TEXT_INPUT, tell_backend=True)
        self._begin_user_turn()
        self._machine.fire(Trigger.TEXT_INPUT)
        self._user_stopped_at = now
        self._transcript_ms = 0
        self.history.add(ev.Role.USER, text)
        self._outputs.append(ev.TranscriptOut(ev.Role.USER, text, True, f"u{self._user_turn}"))
        self._commands.append(ev.SendText(text))

    def _receive_playback(self, turn_id: str, played_ms: int, output_latency_ms: int = 0) -> None:
        check_playback(played_ms, output_latency_ms)
        far_start = self._turn_far_starts.get(turn_id)
        if far_start is None:
            return  # an old or unknown turn: nothing to align any more
        turn = self._turn
        if turn is not None and turn.turn_id == turn_id:
            played_ms = min(played_ms, turn.released_ms)
            turn.reported_played_ms = played_ms
        self._front_end.report_playback(
            far_start + played_ms * SAMPLE_RATE // 1000,
            output_latency_ms * SAMPLE_RATE // 1000,
        )

    # --- assistant turns -------------------------------------------------------------------

    def _open_turn(self, now: float) -> AssistantTurn:
        if self._turn is None:
            self._turn_count += 1
            turn_id = f"t{self._turn_count}"
            self._turn = AssistantTurn(turn_id=turn_id, far_end_start=self._far_end_pushed)
            self._turn_far_starts[turn_id] = self._far_end_pushed
            if len(self._turn_far_starts) > 8:
                del self._turn_far_starts[next(iter(self._turn_far_starts))]
            self._machine.fire(Trigger.ASSISTANT_OUTPUT)
        return self._turn

    def _queue_audio(self, pcm: bytes, rate: int, now: float) -> None:
        turn = self._open_turn(now)
        ref, out = self._resamplers.convert(pcm, rate)
        turn.queue(ref, out, len(pcm) / 2 * 1000 / rate, now)
        self._release(now)

    def _release(self, now: float) -> None:
        """Send queued audio up to real time plus the lead; finish the turn when done."""
        turn = self._turn
        if turn is None:
            return
        settings = self.settings
        due = turn.take_due(
            now, settings.playback_lead_ms, settings.output_sample_rate, self._batch_ms
        )
        if due is not None:
            ref, out, offset_ms = due
            self._front_end.push_far_end(ref)
            self._far_end_pushed += len(ref) // 2
            if out:
                self._outputs.append(ev.AudioOut(out, turn.turn_id, offset_ms))
        if turn.generation_ended is not None and not turn.ref_queue:
            self._finish_turn(turn.generation_ended)

    def _interrupt(
        self, now: float, source: ev.InterruptionSource, *, tell_backend: bool, survive: bool = True
    ) -> None:
        turn = self._turn
        if turn is None:
            return
        played = turn.played_ms(now)
        text = " ".join(turn.final_text)
        heard = truncate_to_heard(text, played, round(turn.received_ms))
        dropped_ms = _samples_to_ms(len(turn.ref_queue) // 2)
        self._outputs.append(ev.InterruptionOut(turn.turn_id, played, source, dropped_ms))
        # Audio the client flushed will never reach the speaker, so it must leave the echo
        # reference too, or the canceller would model echo that never comes.
        self._front_end.truncate_far_end(turn.far_end_start + played * SAMPLE_RATE // 1000)
        self._far_end_pushed = turn.far_end_start + played * SAMPLE_RATE // 1000
        turn.ref_queue.clear()
        turn.out_queue.clear()
        self._resamplers.flush(None)
        turn.final_text = [heard] if heard else []
        if tell_backend:
            self._commands.append(ev.CancelResponse(heard, played))
            if turn.generation_ended is None:
                self._discarding = True
        if (cancel := self._tools.interrupted(survive=survive)) is not None:
            self._tool_actions.append(cancel)
        self._finish_turn(ev.StopReason.INTERRUPTED, played_ms=played, now=now)

    def _finish_turn(
        self, reason: ev.StopReason, *, played_ms: int | None = None, now: float | None = None
    ) -> None:
        turn = self._turn
        if turn is None:
            return
        self._turn = None
        text = " ".join(turn.final_text)
        if text:
            self.history.add(ev.Role.ASSISTANT, text)
        first_audio_ms = 0
        if turn.first_audio_at is not None and self._user_stopped_at is not None:
            first_audio_ms = _measured_ms(self._user_stopped_at, turn.first_audio_at)
        self._outputs.append(
            ev.TurnCompleteOut(
                turn.turn_id,
                reason,
                first_audio_ms,
                self._transcript_ms,
                turn.tools_ms,
                turn.released_out_bytes * 1000 // (2 * self.settings.output_sample_rate),
            )
        )
        self._user_stopped_at = None
        if reason is not ev.StopReason.INTERRUPTED:
            self._machine.fire(Trigger.TURN_FINISHED)

    def _maybe_end(self) -> None:
        if (
            self._client_closed
            and not self._ended
            and self._turn is None
            and not self._tools.pending
            and self._machine.state in (TurnState.IDLE, TurnState.USER_SPEAKING)
        ):
            self._ended = True
            self._commands.append(ev.EndSession())
            self._machine.fire(Trigger.CLOSE)


def _measured_ms(start: float, end: float) -> int:
    """A latency in whole milliseconds, at least 1: on the wire 0 means "not measured", and an
    answer within the same millisecond (the echo backend's) was measured."""
    return max(1, round((end - start) * 1000))
