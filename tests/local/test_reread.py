"""The second look at a misheard identifier (`reread.py`): when, where, the grammar, the merge;
and the real decoder reading an identifier again with it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sonicwire.server.backends.local.numbers import NUMBER_WORDS
from sonicwire.server.backends.local.phrases import background_sentences
from sonicwire.server.backends.local.reread import Reread, looks_again, plan, says_identifier
from sonicwire.server.backends.local.stt import SpeechRecognizer
from sonicwire.server.backends.local.toolmodel import ToolModel, describe_spec
from sonicwire.server.backends.local.words import tokenize
from sonicwire.server.core import events as ev
from sonicwire.server.testing.local_harness import mic_commands
from sonicwire.server.tools.builtin import GET_DATE_TIME, TRACK_ORDER

sys.path.insert(0, str(Path(__file__).parents[2]))
from examples.tools.weather import TOOLS as WEATHER

MODEL = ToolModel([describe_spec(GET_DATE_TIME), describe_spec(TRACK_ORDER),
                   describe_spec(WEATHER[0].spec)])  # fmt: skip


def _any_word(word: str) -> bool:
    return True


def _plan(reading: str, **kwargs: object) -> Reread | None:
    return plan(MODEL, reading, _any_word, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("reading", "span"),
    [
        # a word heard between the digits: joined with them
        ("check the status of order one zero feel five please", "one zero feel five"),
        # an identifier one digit short: the next word no example has may be its last digit
        ("the order one zero zero full arrive", "one zero zero full"),
        ("what can two order ten oh fall", "ten oh fall"),
        # a digit too many
        ("has order ten oh five three eight shipped yet", "ten oh five three eight"),
        # no identifier found at all (three digits): still an order request
        ("where is my order ten oh", "ten oh"),
    ],
)
def test_a_misshapen_identifier_gets_a_second_look_at_its_words(reading: str, span: str) -> None:
    second = _plan(reading)
    assert second is not None
    assert (second.tool, second.slot, second.lengths) == ("track_order", "order_id", {4})
    assert " ".join(second.words[second.start : second.end]) == span


@pytest.mark.parametrize(
    "reading",
    [
        "where is my order ten oh one",  # well-shaped: nothing to look at
        "track order one zero zero two",
        "what time is it in tokyo",  # no identifier slot
        "what's the weather in london",
        "i want to oh where my order is",  # one number word: no identifier was said
        "",
    ],
)
def test_no_second_look(reading: str) -> None:
    assert _plan(reading) is None


@pytest.mark.parametrize(
    ("reading", "looked_at", "said"),
    [
        ("the order one zero zero full arrive", True, True),  # misshapen: read again
        ("where is my order ten oh one", False, True),  # well-shaped: said, not read again
        ("track order one zero zero two", False, True),
        ("where is my order", False, False),  # no number said
        ("i want to oh where my order is", False, False),  # one number word
        ("what time is it in tokyo", False, False),  # no identifier slot
        ("toronto two two", False, False),  # the clock's reading: its tool has no identifier
        ("", False, False),
    ],
)
def test_which_readings_say_an_identifier(reading: str, looked_at: bool, said: bool) -> None:
    """`looks_again` is `plan` without the grammar; `says_identifier` also holds for a
    well-shaped identifier (what the tool vote leaves alone: `dialogue.VOTE_SPARES_IDENTIFIER`)."""
    assert looks_again(MODEL, reading) is looked_at is (_plan(reading) is not None)
    assert says_identifier(MODEL, reading) is said


def test_politeness_after_a_short_identifier_is_not_taken_for_a_digit() -> None:
    second = _plan("status order three oh two please")
    assert second is not None and second.words[second.end :] == ("please",)


def test_an_answer_to_the_question_for_the_identifier_gets_a_second_look() -> None:
    second = _plan("ten oh", asked=("track_order", "order_id"))
    assert second is not None and second.words[second.start : second.end] == ("ten", "oh")
    assert _plan("ten oh one", asked=("track_order", "order_id")) is None


def test_the_grammar_is_the_reading_with_only_the_identifier_free() -> None:
    second = _plan("where is my order one zero feel two please")
    assert second is not None
    grammar = second.grammar
    assert grammar.startswith("#JSGF V1.0;")
    assert "public <said> = where is my order <id> please;" in grammar
    # four digits: one by one, in pairs ("ten oh one"), or as a thousand
    assert "(<one> <one> <one> <one>)" in grammar and "(<two> <two>)" in grammar
    assert "thousand [and]" in grammar


def test_the_grammar_uses_only_words_the_recogniser_knows() -> None:
    known = {"where", "is", "my", "order", "one", "zero", "oh", "two", "ten", "twenty"}
    second = plan(MODEL, "where is my order one zero zero", known.__contains__)
    assert second is not None
    words = set(tokenize(second.grammar.split("\n", 2)[2])) - {"one", "two", "id", "said"}
    assert words <= known | {"public"}
    assert "thousand" not in second.grammar and "eleven" not in second.grammar
    # a reading word the recogniser cannot say: no grammar (it would not compile)
    assert plan(MODEL, "where is my order one zero zero", {"one", "zero"}.__contains__) is None


@pytest.mark.parametrize(
    ("heard", "merged"),
    [
        ("where is my order one zero zero two please",) * 2,
        ("where is my order ten oh two please", "where is my order ten oh two please"),
        (
            "where is my order one thousand and two please",
            "where is my order one thousand and two please",
        ),
        ("where is my order one zero two please", None),  # a partial path: three digits
        ("where is my please", None),
        ("where is my order one zero zero two", None),  # the words after it were not kept
        ("", None),
    ],
)
def test_merge_keeps_only_an_identifier_of_the_right_length(heard: str, merged: str | None) -> None:
    second = _plan("where is my order one zero feel two please")
    assert second is not None
    assert second.merge(heard) == merged


def test_number_words_cover_the_grammar() -> None:
    second = _plan("where is my order ten oh")
    assert second is not None
    rules = second.grammar.split("public")[0]
    said = set(tokenize(rules)) - {"jsgf", "v1", "0", "grammar", "identifier", "one", "two", "id"}
    assert said <= NUMBER_WORDS | {"one", "two"}


def _mic_audio(speech: bytes) -> bytes:
    commands = mic_commands(speech).commands
    return b"".join(c.pcm for c in commands if isinstance(c, ev.SendAudio))


def test_the_decoder_reads_the_identifier_again(
    domain_recognizer: SpeechRecognizer, say: Callable[..., bytes]
) -> None:
    """The real decoder with the grammar of a reading that lost a digit: the identifier is
    read from the audio again, the words around it stay as they were."""
    key = domain_recognizer.add_language_model(MODEL.sentences(), background_sentences())
    audio = _mic_audio(say("please track order ten oh two for me"))
    second = plan(
        MODEL, "please track order ten oh for me", lambda w: domain_recognizer.knows(w, model=key)
    )
    assert second is not None
    heard = domain_recognizer.recognize_grammar(audio, second.grammar, model=key)
    assert second.merge(heard) == "please track order ten oh two for me"
    # and the decoder goes back to its language model afterwards
    assert domain_recognizer.recognize(audio, model=key).text == (
        "please track order ten oh two for me"
    )


def test_an_invalid_grammar_is_a_value_error(domain_recognizer: SpeechRecognizer) -> None:
    with pytest.raises(ValueError):
        domain_recognizer.recognize_grammar(b"\x01\x00" * 8000, "public <s> = ;")
    assert domain_recognizer.recognize_grammar(b"", "#JSGF V1.0;") == ""
    # the default model's dictionary is cut to its training words
    assert domain_recognizer.knows("order") and not domain_recognizer.knows("xylophone")
