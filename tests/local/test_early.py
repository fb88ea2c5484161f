"""EarlyCut: guessing the end of an utterance before the VAD's stop marker (pure)."""

from __future__ import annotations

import numpy as np

from sonicwire.server.backends.local.early import EarlyCut, Guess

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
