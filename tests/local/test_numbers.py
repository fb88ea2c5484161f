"""Spoken numbers <-> digits."""

from __future__ import annotations

import pytest

from sonicwire.server.backends.local.numbers import (
    parse_number,
    parse_numbers,
    say_digits,
    say_number,
    say_ordinal,
)


@pytest.mark.parametrize(
    ("spoken", "digits"),
    [
        ("one zero zero one", "1001"),
        ("one oh oh one", "1001"),
        ("ten oh one", "1001"),
        ("ten zero five", "1005"),
        ("one thousand and one", "1001"),
        ("one thousand one", "1001"),
        ("a thousand and five", "1005"),
        ("one double oh two", "1002"),
        ("twenty twenty five", "2025"),
        ("twelve hundred", "1200"),
        ("twelve thirty four", "1234"),
        ("1001", "1001"),
        ("where is my order ten oh three please", "1003"),
    ],
)
def test_parse_number(spoken: str, digits: str) -> None:
    assert parse_number(spoken.split()) == digits


def test_parse_numbers_finds_every_run_and_joiners_only_inside_numbers() -> None:
    assert parse_numbers(["oh", "hi", "order", "one", "thousand", "and", "four"]) == ["0", "1004"]
    assert parse_numbers(["and", "a", "one"]) == ["1"]
    assert parse_numbers(["no", "numbers", "here"]) == []
    assert parse_number([]) is None


@pytest.mark.parametrize(
    ("n", "words"),
    [(0, "zero"), (13, "thirteen"), (47, "forty-seven"), (100, "one hundred"),
     (1003, "one thousand three"), (2026, "two thousand twenty-six")],
)  # fmt: skip
def test_say_number(n: int, words: str) -> None:
    assert say_number(n) == words


def test_say_number_range() -> None:
    with pytest.raises(ValueError):
        say_number(-1)


@pytest.mark.parametrize(
    ("n", "words"),
    [(1, "first"), (2, "second"), (3, "third"), (5, "fifth"), (12, "twelfth"),
     (20, "twentieth"), (22, "twenty-second"), (31, "thirty-first")],
)  # fmt: skip
def test_say_ordinal(n: int, words: str) -> None:
    assert say_ordinal(n) == words


def test_say_digits() -> None:
    assert say_digits("#1001") == "one zero zero one"


def test_round_trip_of_every_demo_id_in_every_spoken_form() -> None:
    from sonicwire.server.backends.local.numbers import spoken_id_forms

    for number in range(1000, 1100):
        for form in spoken_id_forms(number):
            assert parse_number(form.split()) == str(number), form
