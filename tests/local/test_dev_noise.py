"""bench/local_dev_noise.py: its rooms (seeded noise of each kind at its level), the replay of
a stream through `EarlyCut`, and the summaries (pure; no recogniser)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.local_dev_noise import KINDS, Room, guess_summary, replay, room_noise, rooms
from sonicwire.server.backends.local.early import EarlyCut
from sonicwire.server.core import events as ev


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_is_seeded_noise_at_unit_level(kind: str) -> None:
    x = room_noise(kind, 16_000, seed=3)
    assert np.sqrt(np.mean(x**2)) == pytest.approx(1.0, rel=1e-6)
    assert np.array_equal(x, room_noise(kind, 16_000, seed=3))
    assert not np.array_equal(x, room_noise(kind, 16_000, seed=4))


def test_rooms_start_clean_and_scale_the_noise_to_their_level() -> None:
    listed = rooms(["pink"], [-33.0])
    assert [r.label for r in listed] == ["clean", "pink-33"]
    assert listed[0].noise(0) is None  # the evaluation's own background
    background = listed[1].noise(0)
    assert background is not None
    level = 20 * np.log10(np.sqrt(np.mean(background(16_000) ** 2)) / 32768)
    assert level == pytest.approx(-33.0, abs=0.01)
    with pytest.raises(ValueError):
        room_noise("jet engine", 100, 0)


def _stream(room_dbfs: float, speech_dbfs: float) -> tuple[list[ev.BackendCommand], int]:
    """1 s of room, 800 ms of speech, 700 ms of room; markers where a VAD puts them."""
    rng = np.random.default_rng(0)
    levels = [room_dbfs] * 50 + [speech_dbfs] * 40 + [room_dbfs] * 35
    commands: list[ev.BackendCommand] = []
    end_index = -1
    for index, level in enumerate(levels):
        pcm = rng.normal(0, 32768 * 10 ** (level / 20), 320).astype(np.int16).tobytes()
        commands.append(ev.SendAudio(pcm))
        if index == 89:
            end_index = len(commands) - 1
        if index == 60:
            commands.append(ev.UserSpeechStarted(16 * 1000))
        if index == 114:
            commands.append(ev.UserSpeechStopped(16 * 1800))
    return commands, end_index


def test_replay_counts_a_confirmed_guess_and_when_it_came() -> None:
    commands, end_index = _stream(-32, -5)
    done = replay(commands, end_index, EarlyCut(pad_ms=300, silence_ms=100))
    assert done["confirmed"] is True
    assert done["guesses_ms"] == [100]  # 100 ms of quiet after the end of speech
    assert done["marker_after_guess_ms"] == 0
    assert done["room_db"] == pytest.approx(-32, abs=1)
    off = replay(commands, end_index, EarlyCut(pad_ms=300, silence_ms=100, room_margin_db=None))
    assert off["confirmed"] is False and off["guesses_ms"] == []
    summary = guess_summary([done, off])
    assert (summary["turns"], summary["confirmed"], summary["wasted"]) == (2, 1, 0)
    assert summary["before_end"] == 0


def test_a_room_label_names_kind_and_level() -> None:
    assert Room("fan", -40.0).label == "fan-40"


def test_the_room_level_switch_sets_what_the_next_sessions_use() -> None:
    from bench import local_dev_noise
    from sonicwire.server.backends.local import early, session

    try:
        local_dev_noise._room_level(False)
        assert getattr(session, "ROOM_MARGIN_DB") is None  # noqa: B009
        local_dev_noise._room_level(True)
        assert getattr(session, "ROOM_MARGIN_DB") == early.ROOM_MARGIN_DB  # noqa: B009
    finally:
        local_dev_noise._room_level(True)
