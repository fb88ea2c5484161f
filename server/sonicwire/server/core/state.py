"""The conversation's turn state machine.

Everything that decides a transition lives in this file: the states, the triggers and the
table. The session (``session.py``) only calls `TurnMachine.fire` and acts on the new state.

States::

    IDLE           nobody speaks; the assistant has no open turn
    USER_SPEAKING  the user is speaking (front-end VAD)
    THINKING       the user finished (or typed); the backend is preparing the answer
    RESPONDING     an assistant turn is open: audio is being generated and/or played
    CLOSED         the session ended

Real backends are not tidy (Nova Sonic endpoints speech itself and may answer while our VAD
still hears the tail of the user's speech), so the table allows the moves such backends make;
moves that can only come from a bug raise `IllegalTransition` naming state and trigger.
"""

from __future__ import annotations

import enum

__all__ = ["IllegalTransition", "Trigger", "TurnMachine", "TurnState"]


class TurnState(enum.IntEnum):
    IDLE = 0
    USER_SPEAKING = 1
    THINKING = 2
    RESPONDING = 3
    CLOSED = 4


class Trigger(enum.Enum):
    SPEECH_STARTED = "speech_started"
    SPEECH_STOPPED = "speech_stopped"
    TEXT_INPUT = "text_input"
    ASSISTANT_OUTPUT = "assistant_output"
    TURN_FINISHED = "turn_finished"
    BARGE_IN = "barge_in"
    CLOSE = "close"


S = TurnState
T = Trigger

TRANSITIONS: dict[TurnState, dict[Trigger, TurnState]] = {
    S.IDLE: {
        T.SPEECH_STARTED: S.USER_SPEAKING,
        T.SPEECH_STOPPED: S.IDLE,
        T.TEXT_INPUT: S.THINKING,
        T.ASSISTANT_OUTPUT: S.RESPONDING,
        T.TURN_FINISHED: S.IDLE,
        T.CLOSE: S.CLOSED,
    },
    S.USER_SPEAKING: {
        T.SPEECH_STARTED: S.USER_SPEAKING,
        T.SPEECH_STOPPED: S.THINKING,
        T.TEXT_INPUT: S.THINKING,
        T.ASSISTANT_OUTPUT: S.RESPONDING,
        T.TURN_FINISHED: S.USER_SPEAKING,
        T.CLOSE: S.CLOSED,
    },
    S.THINKING: {
        T.SPEECH_STARTED: S.USER_SPEAKING,
        T.SPEECH_STOPPED: S.THINKING,
        T.TEXT_INPUT: S.THINKING,
        T.ASSISTANT_OUTPUT: S.RESPONDING,
        T.TURN_FINISHED: S.IDLE,
        T.CLOSE: S.CLOSED,
    },
    S.RESPONDING: {
        # Speech during playback is only a barge-in once it lasted the minimum; until then the
        # assistant keeps the floor.
        T.SPEECH_STARTED: S.RESPONDING,
        T.SPEECH_STOPPED: S.RESPONDING,
        T.TEXT_INPUT: S.THINKING,
        T.ASSISTANT_OUTPUT: S.RESPONDING,
        T.TURN_FINISHED: S.IDLE,
        T.BARGE_IN: S.USER_SPEAKING,
        T.CLOSE: S.CLOSED,
    },
    S.CLOSED: {
        T.CLOSE: S.CLOSED,
    },
}


class IllegalTransition(RuntimeError):
    def __init__(self, state: TurnState, trigger: Trigger) -> None:
        super().__init__(f"illegal transition: {trigger.value} in state {state.name}")
        self.state = state
        self.trigger = trigger


class TurnMachine:
    """Holds the current `TurnState` and applies `TRANSITIONS`."""

    def __init__(self) -> None:
        self.state = TurnState.IDLE

    def fire(self, trigger: Trigger) -> TurnState:
        """Apply ``trigger``; return the new state. Raises `IllegalTransition`."""
        try:
            self.state = TRANSITIONS[self.state][trigger]
        except KeyError:
            raise IllegalTransition(self.state, trigger) from None
        return self.state
