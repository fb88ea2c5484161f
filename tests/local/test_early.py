"""EarlyCut: guessing the end of an utterance before the VAD's stop marker (pure)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from sonicwire.server.backends.local.early import EarlyCut, Guess
from sonicwire.server.testing.local_harness import MicStream, ToolBox

from .conftest import ScriptedRecognizer, double_session

FRAME = 320  # 20 ms at 16 kHz


def _frames(level_dbfs: float, ms: int, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    amplitude = 32768 * 10 ** (level_dbfs / 20)
    signal = np.clip(rng.normal(0, amplitude, 16 * ms), -32768, 32767).astype(np.int16)
    return [signal[i : i + FRAME].tobytes() for i in range(0, signal.size, FRAME)]


def _feed(cut: EarlyCut, frames: list[bytes]) -> list[Guess]:
    return [g for g in (cut.push_audio(f) for f in frames) if g is not None]


def test_guess_after_silence_matches_the_stop_marker() -> None:
    cut = EarlyCut(pad_ms=300, silence_ms=200)
    assert _feed(cut, _frames(-60, 1000)) == []  # room noise, no utterance yet
    assert _feed(cut, _frames(-15, 200)) == []
    cut.speech_started(16 * 1000)  # onset at 1.0 s, marker 0.2 s later
    assert _feed(cut, _frames(-15, 800)) == []
    guesses = _feed(cut, _frames(-60, 600))
    assert len(guesses) == 1  # one guess per silence
    guess = guesses[0]
    speech_end = 16 * 2000
    assert guess.silence_start == speech_end
    # From onset - pad to 200 ms into the silence.
    assert len(guess.pcm) == 2 * 16 * (2000 - 700 + 200)
    assert cut.speech_stopped(speech_end) is guess


def test_resumed_speech_voids_the_guess() -> None:
    cut = EarlyCut()
    cut.speech_started(0)
    _feed(cut, _frames(-15, 500))
    assert len(_feed(cut, _frames(-60, 300))) == 1
    _feed(cut, _frames(-15, 300))  # the user goes on after a pause
    assert cut.speech_stopped(16 * 800) is None


def test_second_pause_makes_a_new_guess() -> None:
    cut = EarlyCut()
    cut.speech_started(0)
    _feed(cut, _frames(-15, 500))
    first = _feed(cut, _frames(-60, 300))
    _feed(cut, _frames(-15, 300))
    second = _feed(cut, _frames(-60, 300))
    assert len(first) == len(second) == 1
    assert second[0].number == first[0].number + 1
    assert cut.speech_stopped(16 * 1100) is second[0]


def test_marker_far_from_the_guess_rejects_it() -> None:
    cut = EarlyCut(tolerance_ms=100)
    cut.speech_started(0)
    _feed(cut, _frames(-15, 500))
    assert _feed(cut, _frames(-60, 300))
    assert cut.speech_stopped(16 * 700) is None


def test_loud_room_makes_no_guess() -> None:
    cut = EarlyCut(floor_dbfs=-35)
    cut.speech_started(0)
    _feed(cut, _frames(-10, 500))
    assert _feed(cut, _frames(-30, 500)) == []  # 20 dB down, but above the floor


def test_no_guess_outside_an_utterance_or_past_the_limit() -> None:
    cut = EarlyCut(max_ms=1000)
    _feed(cut, _frames(-15, 300))
    assert _feed(cut, _frames(-60, 500)) == []
    cut.speech_started(16 * 800)
    _feed(cut, _frames(-15, 1500))
    assert _feed(cut, _frames(-60, 500)) == []


def test_current_is_the_standing_guess() -> None:
    cut = EarlyCut(pad_ms=300, silence_ms=200)
    _feed(cut, _frames(-60, 400))
    cut.speech_started(16 * 400)
    _feed(cut, _frames(-15, 600, seed=1))
    assert cut.current is None
    (guess,) = _feed(cut, _frames(-60, 240, seed=2))
    assert cut.current is guess
    _feed(cut, _frames(-15, 100, seed=3))  # speech resumed
    assert cut.current is None
    (again,) = _feed(cut, _frames(-60, 240, seed=4))
    assert cut.current is again
    cut.speech_stopped(again.silence_start)
    assert cut.current is None


def test_a_guess_is_read_with_the_collectors_tail() -> None:
    """The guess ends ~100 ms into the silence; it is recognised lengthened to the collector's
    300 ms tail by repeating its last 100 ms (the room's noise)."""
    from sonicwire.server.backends.local.early import Guess

    speech, quiet = b"\x10\x00" * 3200, b"\x01\x00" * 1600  # 200 ms of "speech", 100 ms quiet
    guess = Guess(1, speech + quiet, silence_start=3200, tail=1600)
    padded = guess.padded(4800)
    assert padded == speech + quiet * 3  # ends 300 ms after the silence start
    assert guess.padded(1600) == guess.pcm  # long enough already
    assert Guess(1, speech, 3200).padded(4800) == speech  # no silence to repeat


# --- noisy rooms: quiet relative to the room's own level ------------------------------------


def _noisy_turn(cut: EarlyCut, room_dbfs: float, speech_dbfs: float) -> list[Guess]:
    """A second of room noise, 800 ms of speech in it (start marker 200 ms after the onset),
    then 600 ms of the room again; the guesses made."""
    assert _feed(cut, _frames(room_dbfs, 1000, seed=5)) == []
    _feed(cut, _frames(speech_dbfs, 200, seed=6))
    cut.speech_started(16 * 1000)
    _feed(cut, _frames(speech_dbfs, 600, seed=7))
    return _feed(cut, _frames(room_dbfs, 600, seed=8))


def test_a_noisy_room_is_guessed_from_its_own_level() -> None:
    """Room noise at -32 dBFS never reaches the absolute floor (-35): the silence after the
    speech is the room's level again, 27 dB under the speech, so it is guessed (previous main:
    no guess in such a room)."""
    cut = EarlyCut(pad_ms=300, silence_ms=100)
    (guess,) = _noisy_turn(cut, -32, -5)
    assert abs(cut.room_db - -32) < 1  # measured before the pad, not on the speech
    speech_end = 16 * 1800
    assert guess.silence_start == speech_end
    assert cut.speech_stopped(speech_end) is guess


def test_noisy_room_guess_can_be_turned_off() -> None:
    cut = EarlyCut(pad_ms=300, silence_ms=100, room_margin_db=None)
    assert _noisy_turn(cut, -32, -5) == []
    assert cut.room_db == float("-inf")


@pytest.mark.parametrize("room, speech", [(-25, -15), (-32, -12)])
def test_a_room_too_close_to_the_speech_makes_no_guess(room: float, speech: float) -> None:
    """Under 25 dB between speech and room: a quieter stretch of the speech (a pause between
    words, where its weak consonants sink into the room) would look like the end."""
    assert _noisy_turn(EarlyCut(pad_ms=300, silence_ms=100), room, speech) == []


def test_the_room_must_be_heard_before_the_utterance() -> None:
    """A stream that starts with speech has no room level: only the absolute floor holds."""
    cut = EarlyCut(pad_ms=300, silence_ms=100)
    cut.speech_started(0)
    _feed(cut, _frames(-5, 800))
    assert _feed(cut, _frames(-32, 600)) == []
    assert cut.room_db == float("-inf")


def test_speech_in_the_pad_does_not_raise_the_room() -> None:
    """The room is read before the utterance's pad (the onset's ramp may be in the pad)."""
    cut = EarlyCut(pad_ms=300, silence_ms=100)
    _feed(cut, _frames(-40, 1000))
    _feed(cut, _frames(-12, 300, seed=1))  # onset at 1.0 s, heard before the start marker
    cut.speech_started(16 * 1000)
    assert abs(cut.room_db - -40) < 1


def test_a_louder_burst_in_the_silence_restarts_the_wait() -> None:
    """Frames above the room's margin (a door, a cough) are not silence: the guess waits."""
    cut = EarlyCut(pad_ms=300, silence_ms=100)
    _feed(cut, _frames(-32, 1000, seed=5))
    cut.speech_started(16 * 1000)
    _feed(cut, _frames(-5, 600, seed=7))
    assert _feed(cut, _frames(-32, 80, seed=8)) == []  # 80 ms: not yet
    assert _feed(cut, _frames(-27, 40, seed=9)) == []  # 5 dB over the room
    assert _feed(cut, _frames(-32, 80, seed=10)) == []  # the wait started again
    assert len(_feed(cut, _frames(-32, 40, seed=11))) == 1


@pytest.mark.parametrize("late_ms, marker_before_ms, stands", [
    (300, 250, True), (300, 350, False), (0, 250, False), (0, 100, True),
])  # fmt: skip
def test_a_guess_whose_silence_starts_after_the_markers_stands(
    late_ms: int, marker_before_ms: int, stands: bool
) -> None:
    """The front end's noise suppression lowers a room only some frames after the speech: the
    guess's silence then starts after the marker's, and holds all the speech the VAD heard
    (previous main: 100 ms either way); a marker after the guess's silence start still
    contradicts it beyond 100 ms."""
    cut = EarlyCut(pad_ms=300, silence_ms=100, late_ms=late_ms)
    cut.speech_started(0)
    _feed(cut, _frames(-15, 500))
    (guess,) = _feed(cut, _frames(-60, 300))
    stood = cut.speech_stopped(guess.silence_start - 16 * marker_before_ms)
    assert (stood is guess) is stands


async def test_a_noisy_room_is_read_before_the_vads_marker(
    toolbox: ToolBox, executor: ThreadPoolExecutor
) -> None:
    """The session, in a room (-33 dBFS) 28 dB under the speech: the utterance is read in the
    VAD's stop wait, not at its marker (previous main: read at the marker)."""
    recognizer = ScriptedRecognizer(["what time is it"], ["What time is it?"])
    session = double_session(recognizer, toolbox, executor)
    tone = (28000 * np.sin(2 * np.pi * 220 * np.arange(16 * 800) / 16_000)).astype(np.int16)
    mic = MicStream(noise_dbfs=-33.0).utterance(tone.tobytes(), lead_ms=800)
    for command in mic.commands[: mic.stop_index]:
        await session.send(command)
    for _ in range(50):  # the guess's reading runs in the executor
        if recognizer.decodes:
            break
        await asyncio.sleep(0.01)
    assert recognizer.decodes == 1, "not read before the marker"
    await session.aclose()


async def test_off_a_noisy_room_is_read_at_the_marker(
    toolbox: ToolBox, executor: ThreadPoolExecutor
) -> None:
    recognizer = ScriptedRecognizer(["what time is it"], ["What time is it?"])
    session = double_session(recognizer, toolbox, executor, noisy_room_guess=False)
    tone = (28000 * np.sin(2 * np.pi * 220 * np.arange(16 * 800) / 16_000)).astype(np.int16)
    mic = MicStream(noise_dbfs=-33.0).utterance(tone.tobytes(), lead_ms=800)
    for command in mic.commands[: mic.stop_index]:
        await session.send(command)
    await asyncio.sleep(0.2)
    assert recognizer.decodes == 0
    await session.aclose()
