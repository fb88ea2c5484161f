"""bench/local_dev_session.py: the development turns it plays and how it tallies them (pure)."""

from __future__ import annotations

from collections import Counter

from bench.local_dev_session import dev_turns, tally


def test_the_development_turns_are_the_development_sets() -> None:
    turns = dev_turns()
    sizes = Counter(name for name, _, _, _ in turns)
    assert sizes == {
        "dev": 120,
        "more": 300,
        "in_training_x_tuning_voices": 18,
        "in_training_x_dev_voices": 72,
        "order_numbers": 100,
    }
    assert sum(c.intent == "unknown" for n, _, _, c in turns if n in ("dev", "more")) == 100


def test_the_tally_counts_sets_and_the_development_rows() -> None:
    rows = [
        {"set": "dev", "intent": "get_date_time", "on_right": True},
        {"set": "more", "intent": "unknown", "on_right": False},
        {"set": "order_numbers", "intent": "track_order", "on_right": True},
    ]
    assert tally(rows, "on_right") == {
        "dev": [1, 1],
        "more": [0, 1],
        "order_numbers": [1, 1],
        "in_domain": [1, 1],
        "out_of_domain_rejected": [0, 1],
        "all": [2, 3],
    }
