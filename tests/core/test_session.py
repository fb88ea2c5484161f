"""The session core, fed events with made-up clocks: no sockets, no asyncio."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from sonicwire.server.core import events as ev
from sonicwire.server.core.errors import BackendError, ProtocolError
from sonicwire.server.core.session import Session
from sonicwire.server.core.settings import SessionSettings
from sonicwire.server.core.state import IllegalTransition, Trigger, TurnMachine, TurnState
from sonicwire.server.dsp.pipeline import FrontEnd, FrontEndSettings

SILENCE = bytes(640)
ONE_SECOND = bytes(32_000)  # 16 kHz s16le


def quiet_settings(**overrides: object) -> SessionSettings:
    # Echo cancellation off keeps these tests about the core's logic, not the canceller's.
    front = FrontEndSettings(echo_cancellation=False, noise_suppression=False)
    return SessionSettings(front_end=front, **overrides)  # type: ignore[arg-type]


def of_type[T](items: list[object], kind: type[T]) -> list[T]:
    return [item for item in items if isinstance(item, kind)]


@pytest.mark.parametrize("batch_ms", [20, 40])
def test_audio_is_paced_at_real_time_plus_lead(batch_ms: int) -> None:
    session = Session("s", quiet_settings(playback_lead_ms=100, playback_batch_ms=batch_ms))
    session.receive_backend(ev.AssistantAudio(ONE_SECOND, 16_000), now=10.0)
    first = of_type(session.outputs_to_send(), ev.AudioOut)
    assert sum(len(a.audio) for a in first) == 100 * 32  # only the lead goes out at once
    assert session.state is TurnState.RESPONDING
    # The next release falls due once a whole batch fits in real time plus the lead.
    assert session.next_deadline() == pytest.approx(10.0 + batch_ms / 1000)
    session.tick(10.0 + batch_ms / 1000 - 0.001)
    assert not session.outputs_to_send()  # a step is due (batch 40), not a batch: nothing yet
    session.tick(10.5)
    second = of_type(session.outputs_to_send(), ev.AudioOut)
    assert sum(len(a.audio) for a in second) == 500 * 32
    assert second[0].offset_ms == 100


def test_turn_completes_when_all_audio_is_out() -> None:
    session = Session("s", quiet_settings())
    session.receive_backend(ev.AssistantText("Hello there.", True), now=0.0)
    session.receive_backend(ev.AssistantAudio(ONE_SECOND, 16_000), now=0.0)
    session.receive_backend(ev.AssistantTurnEnded(ev.StopReason.END_TURN), now=0.0)
    assert not of_type(session.outputs_to_send(), ev.TurnCompleteOut)
    session.tick(2.0)
    done = of_type(session.outputs_to_send(), ev.TurnCompleteOut)
    assert len(done) == 1 and done[0].stop_reason is ev.StopReason.END_TURN
    assert done[0].audio_ms == 1000
    assert session.state is TurnState.IDLE
    assert [m.text for m in session.history.messages] == ["Hello there."]


def test_output_resampled_to_client_rate() -> None:
    session = Session("s", quiet_settings(output_sample_rate=8_000))
    session.receive_backend(ev.AssistantAudio(ONE_SECOND, 16_000), now=0.0)
    session.receive_backend(ev.AssistantTurnEnded(ev.StopReason.END_TURN), now=0.0)
    session.tick(5.0)
    out = of_type(session.outputs_to_send(), ev.AudioOut)
    assert sum(len(a.audio) for a in out) == pytest.approx(16_000, rel=0.02)


def test_speech_during_playback_barges_in(speech_16k: bytes) -> None:
    session = Session("s", quiet_settings(barge_in_min_ms=200))
    session.receive_backend(ev.AssistantText("one two three four five six", True), now=0.0)
    session.receive_backend(ev.AssistantAudio(ONE_SECOND * 3, 16_000), now=0.0)
    session.tick(1.0)
    session.outputs_to_send()
    session.commands_to_send()
    session.receive_client(ev.AudioReceived(speech_16k), now=1.5)
    outputs = session.outputs_to_send()
    interruption = of_type(outputs, ev.InterruptionOut)
    assert len(interruption) == 1
    assert interruption[0].source is ev.InterruptionSource.BARGE_IN
    assert 900 <= interruption[0].played_ms <= 1500
    cancel = of_type(session.commands_to_send(), ev.CancelResponse)
    assert len(cancel) == 1
    # Half of "one two three four five six" was heard: the history keeps only that.
    heard = session.history.messages[-1].text
    assert heard == cancel[0].heard_text
    assert 0 < len(heard.split()) < 6
    done = of_type(outputs, ev.TurnCompleteOut)
    assert done[0].stop_reason is ev.StopReason.INTERRUPTED
    # Audio of the cut turn that the backend still sends is dropped until it confirms.
    session.receive_backend(ev.AssistantAudio(ONE_SECOND, 16_000), now=1.6)
    assert not of_type(session.outputs_to_send(), ev.AudioOut)
    session.receive_backend(ev.AssistantTurnEnded(ev.StopReason.INTERRUPTED), now=1.7)
    session.receive_backend(ev.AssistantAudio(ONE_SECOND, 16_000), now=1.8)
    assert of_type(session.outputs_to_send(), ev.AudioOut)


@pytest.mark.parametrize("min_ms", [200, 300])
def test_barge_in_interrupts_in_the_frame_the_minimum_is_reached(
    speech_16k: bytes, min_ms: int
) -> None:
    # No delay in the core: with the default minimum (= the VAD's start_secs, 200 ms) the
    # Interruption comes out of the same 20 ms frame as SpeechStarted; a longer minimum
    # adds exactly the difference, counted from the speech onset.
    session = Session("s", quiet_settings(barge_in_min_ms=min_ms))
    session.receive_backend(ev.AssistantAudio(ONE_SECOND * 10, 16_000), now=0.0)
    session.outputs_to_send()
    started_at = interrupted_at = None
    onset_ms = 0
    for k in range(len(speech_16k) // 640):
        session.receive_client(ev.AudioReceived(speech_16k[k * 640 : (k + 1) * 640]), 1 + k / 50)
        for out in session.outputs_to_send():
            if isinstance(out, ev.SpeechActivityOut) and out.started and started_at is None:
                started_at, onset_ms = k, out.offset_ms
            if isinstance(out, ev.InterruptionOut):
                interrupted_at = k
        if interrupted_at is not None:
            break
    assert started_at is not None and interrupted_at is not None
    assert interrupted_at - started_at == (min_ms - 200) // 20
    # the frame that interrupts ends min_ms after the onset (20 ms frames, so within one)
    assert 0 <= (interrupted_at + 1) * 20 - onset_ms - min_ms < 20


def test_no_barge_in_when_disabled(speech_16k: bytes) -> None:
    session = Session("s", quiet_settings(barge_in=False))
    session.receive_backend(ev.AssistantAudio(ONE_SECOND * 3, 16_000), now=0.0)
    session.receive_client(ev.AudioReceived(speech_16k), now=1.0)
    assert not of_type(session.outputs_to_send(), ev.InterruptionOut)


def test_playback_report_sets_played_ms() -> None:
    session = Session("s", quiet_settings())
    session.receive_backend(ev.AssistantAudio(ONE_SECOND * 2, 16_000), now=0.0)
    session.tick(1.0)
    turn_id = session.current_turn_id
    assert turn_id == "t1"
    session.receive_client(ev.PlaybackReported(turn_id, 420), now=1.0)
    session.receive_backend(ev.AssistantInterrupted(), now=1.0)
    interruption = of_type(session.outputs_to_send(), ev.InterruptionOut)
    assert interruption[0].played_ms == 420
    assert interruption[0].source is ev.InterruptionSource.BACKEND


def test_playback_report_passes_the_output_latency_to_the_front_end() -> None:
    # A wrapper, not a subclass: FrontEnd may be a compiled class (sonicwire.server.native)
    class Recording:
        def __init__(self, settings: FrontEndSettings) -> None:
            self.inner = FrontEnd(settings)
            self.reports: list[tuple[int, int]] = []

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def report_playback(self, played_samples: int, output_latency: int = 0) -> None:
            self.reports.append((played_samples, output_latency))
            self.inner.report_playback(played_samples, output_latency)

    settings = quiet_settings()
    front = Recording(settings.front_end)
    session = Session("s", settings, front_end=front)
    session.receive_backend(ev.AssistantAudio(ONE_SECOND * 2, 16_000), now=0.0)
    session.tick(1.0)
    assert session.current_turn_id == "t1"
    session.receive_client(ev.PlaybackReported("t1", 420, 85), now=1.0)
    assert front.reports == [(420 * 16, 85 * 16)]  # the turn's audio starts at sample 0


def test_text_input_interrupts_and_is_sent() -> None:
    session = Session("s", quiet_settings())
    session.receive_backend(ev.AssistantAudio(ONE_SECOND, 16_000), now=0.0)
    session.receive_client(ev.TextReceived("stop, what time is it?"), now=0.3)
    outputs = session.outputs_to_send()
    assert of_type(outputs, ev.InterruptionOut)[0].source is ev.InterruptionSource.TEXT_INPUT
    assert of_type(session.commands_to_send(), ev.SendText) == [
        ev.SendText("stop, what time is it?")
    ]
    assert session.state is TurnState.THINKING


@pytest.mark.parametrize(("delay_s", "expected_ms"), [(0.0, 1), (0.25, 250)])
def test_turn_latency_is_measured_and_never_reported_as_not_measured(
    delay_s: float, expected_ms: int
) -> None:
    """0 means "not measured" on the wire: an answer in the same millisecond reads as 1 ms."""
    session = Session("s", quiet_settings())
    session.receive_client(ev.TextReceived("what time is it?"), now=5.0)
    session.receive_backend(ev.AssistantAudio(bytes(3_200), 16_000), now=5.0 + delay_s)
    session.receive_backend(ev.AssistantTurnEnded(ev.StopReason.END_TURN), now=5.0 + delay_s)
    session.tick(7.0)
    (done,) = of_type(session.outputs_to_send(), ev.TurnCompleteOut)
    assert done.first_audio_ms == expected_ms


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (ev.AudioReceived(bytes(641)), "AUDIO_CHUNK_INVALID"),
        (ev.AudioReceived(bytes(70_000)), "AUDIO_CHUNK_TOO_LARGE"),
        (ev.TextReceived(""), "TEXT_EMPTY"),
        (ev.TextReceived("x" * 5000), "TEXT_TOO_LONG"),
        (ev.PlaybackReported("t1", -5), "PLAYBACK_INVALID"),
        (ev.PlaybackReported("t1", 5, -1), "PLAYBACK_INVALID"),
        (ev.PlaybackReported("t1", 5, 10_001), "PLAYBACK_INVALID"),
    ],
)
def test_client_rule_violations(event: ev.ClientEvent, reason: str) -> None:
    session = Session("s", quiet_settings())
    with pytest.raises(ProtocolError) as caught:
        session.receive_client(event, now=0.0)
    assert caught.value.reason == reason


def test_backend_failure_raises() -> None:
    session = Session("s", quiet_settings())
    with pytest.raises(BackendError) as caught:
        session.receive_backend(ev.BackendFailed("BACKEND_THROTTLED", "slow down", True), 0.0)
    assert caught.value.retryable


def test_client_tool_call_is_announced_after_dispatch() -> None:
    session = Session("s", quiet_settings(client_tools=frozenset({"lookup"})))
    session.receive_backend(ev.ToolRequested("c1", "lookup", "{}"), now=0.0)
    assert not of_type(session.outputs_to_send(), ev.ToolCallOut)
    assert session.tool_actions() == [ev.RunTool("c1", "lookup", "{}", ev.ToolExecutor.CLIENT)]
    session.receive_tool_dispatched("c1")
    assert of_type(session.outputs_to_send(), ev.ToolCallOut)[0].call_id == "c1"
    session.receive_client(ev.ToolResultReceived("c1", "{}", False), now=0.1)
    assert session.tool_actions() == [ev.DeliverToolResult("c1", "{}", False)]
    session.receive_tool_result(
        ev.ToolCompleted("c1", "lookup", ev.ToolStatus.OK, "{}", 100), now=0.2
    )
    assert of_type(session.commands_to_send(), ev.SendToolResult)


def test_half_close_ends_after_turn() -> None:
    session = Session("s", quiet_settings())
    session.receive_backend(ev.AssistantAudio(ONE_SECOND, 16_000), now=0.0)
    session.close(now=0.1)
    assert not session.ended
    session.receive_backend(ev.AssistantTurnEnded(ev.StopReason.END_TURN), now=0.2)
    session.tick(2.0)
    assert session.ended
    assert ev.EndSession() in session.commands_to_send()


def test_audio_split_at_odd_boundaries_gives_same_commands(speech_16k: bytes) -> None:
    whole = Session("a", quiet_settings())
    whole.receive_client(ev.AudioReceived(speech_16k), now=0.0)
    split = Session("b", quiet_settings())
    cuts = [0, 2, 642, 644, 9000, 9002, len(speech_16k)]
    for lo, hi in itertools.pairwise(cuts):
        split.receive_client(ev.AudioReceived(speech_16k[lo:hi]), now=0.0)
    assert whole.commands_to_send() == split.commands_to_send()
    assert whole.outputs_to_send() == split.outputs_to_send()


def test_transition_table_rejects_illegal_moves() -> None:
    machine = TurnMachine()
    machine.fire(Trigger.CLOSE)
    with pytest.raises(IllegalTransition, match="speech_started in state CLOSED"):
        machine.fire(Trigger.SPEECH_STARTED)
    fresh = TurnMachine()
    with pytest.raises(IllegalTransition):
        fresh.fire(Trigger.BARGE_IN)


def test_client_tool_after_half_close_is_answered_at_once() -> None:
    session = Session("s", quiet_settings(client_tools=frozenset({"lookup"})))
    session.receive_backend(ev.AssistantAudio(ONE_SECOND, 16_000), now=0.0)
    session.close(now=0.1)
    session.receive_backend(ev.ToolRequested("c9", "lookup", "{}"), now=0.2)
    assert session.tool_actions() == []
    [result] = of_type(session.commands_to_send(), ev.SendToolResult)
    assert result.status is ev.ToolStatus.CANCELLED and "error" in result.result_json


def test_half_close_cancels_the_pending_client_calls_only() -> None:
    # Found by the red-team session (s36): a client that half-closed with a client call
    # pending could never answer it, and the turn waited for the call's timeout (10 s by
    # default; with a longer tool timeout the stream ended BACKEND_TIMEOUT, blaming the backend).
    session = Session("s", quiet_settings(client_tools=frozenset({"lookup"})))
    session.receive_backend(ev.ToolRequested("c1", "lookup", "{}"), now=0.0)
    session.receive_backend(ev.ToolRequested("s1", "get_date_time", "{}"), now=0.0)
    session.tool_actions()
    session.close(now=0.1)
    assert session.tool_actions() == [
        ev.CancelTools("the client ended its input before returning a result", ("c1",))
    ]
    assert ev.InputEnded() in session.commands_to_send()
    assert not session.ended  # both calls still pending until the runner reports them


def test_waiting_on_client_tool_only_while_a_client_call_is_open() -> None:
    session = Session("s", quiet_settings(client_tools=frozenset({"lookup"})))
    session.receive_backend(ev.ToolRequested("s1", "get_date_time", "{}"), now=0.0)
    assert not session.waiting_on_client_tool  # the server runs that one
    session.receive_backend(ev.ToolRequested("c1", "lookup", "{}"), now=0.0)
    assert session.waiting_on_client_tool
    session.receive_tool_result(
        ev.ToolCompleted("c1", "lookup", ev.ToolStatus.TIMEOUT, "{}", 100), now=0.2
    )
    assert not session.waiting_on_client_tool
