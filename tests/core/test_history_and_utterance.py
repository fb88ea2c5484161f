from __future__ import annotations

from sonicwire.server.core.events import Role
from sonicwire.server.core.history import History, truncate_to_heard
from sonicwire.server.core.utterance import UtteranceCollector


def test_history_merges_and_replaces() -> None:
    history = History()
    history.add(Role.USER, "hi")
    history.add(Role.USER, "there")
    history.add(Role.ASSISTANT, "Hello, how can I help you today?")
    history.replace_last_assistant("Hello, how")
    assert [(m.role, m.text) for m in history.messages] == [
        (Role.USER, "hi there"),
        (Role.ASSISTANT, "Hello, how"),
    ]
    history.replace_last_assistant("")
    assert len(history) == 1


def test_truncate_to_heard() -> None:
    text = "one two three four"
    assert truncate_to_heard(text, 500, 1000) == "one two"
    assert truncate_to_heard(text, 0, 1000) == ""
    assert truncate_to_heard(text, 2000, 1000) == text


def test_utterance_is_cut_with_padding() -> None:
    collector = UtteranceCollector(sample_rate=1000, pad_ms=100)
    frame = bytes(40)  # 20 samples at 1 kHz
    for _ in range(10):
        collector.push_audio(frame)  # samples 0..199
    collector.speech_started(150)
    for _ in range(10):
        collector.push_audio(frame)  # 200..399
    collector.speech_stopped(350)
    assert collector.take() == []  # waiting for the trailing pad
    for _ in range(5):
        collector.push_audio(frame)  # 400..499
    [utterance] = collector.take()
    assert len(utterance) // 2 == 450 - 50  # from 150-100 to 350+100


def test_flush_ends_open_utterance() -> None:
    collector = UtteranceCollector(sample_rate=1000, pad_ms=0)
    collector.push_audio(bytes(100))
    collector.speech_started(10)
    collector.push_audio(bytes(100))
    collector.flush()
    [utterance] = collector.take()
    assert len(utterance) // 2 == 90
