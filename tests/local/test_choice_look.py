"""The second look at a missing choice value (`choice_look.py`): when, where, the grammar, the
merge; and the real decoder reading a city again with it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sonicwire.server.backends.base import BackendOptions
from sonicwire.server.backends.local.choice_look import ChoiceLook, plan_choice, second_look
from sonicwire.server.backends.local.engine import LocalBackend
from sonicwire.server.backends.local.phrases import background_sentences
from sonicwire.server.backends.local.reread import Reread
from sonicwire.server.backends.local.stt import SpeechRecognizer, Transcript
from sonicwire.server.backends.local.toolmodel import ToolModel, describe_spec
from sonicwire.server.backends.local.words import tokenize
from sonicwire.server.core import events as ev
from sonicwire.server.testing.local_harness import MicStream, ToolBox, mic_commands, run_turn
from sonicwire.server.tools import tool
from sonicwire.server.tools.builtin import GET_DATE_TIME, TRACK_ORDER

sys.path.insert(0, str(Path(__file__).parents[2]))
from examples.tools.weather import CITIES
from examples.tools.weather import TOOLS as WEATHER

from .conftest import FIXED_NOW

MODEL = ToolModel([describe_spec(GET_DATE_TIME), describe_spec(TRACK_ORDER),
                   describe_spec(WEATHER[0].spec)])  # fmt: skip


def _any_word(word: str) -> bool:
    return True


def _plan(reading: str, **kwargs: object) -> ChoiceLook | None:
    return plan_choice(MODEL, reading, _any_word, **kwargs)  # type: ignore[arg-type]


def _spans(look: ChoiceLook) -> list[str]:
    return [" ".join(look.words[start : look.end]) for start in look.starts]


@pytest.mark.parametrize(
    ("reading", "spans"),
    [
        # after the word that comes before the city in the tool's examples, up to the day
        ("is it going to rain when be in on tomorrow", ["on"]),
        ("what's the weather in like on please", ["like on", "on"]),
        # the city lost whole: it goes right after "in"
        ("weather in please", [""]),
        # no "in": the misheard words before the day, as many as the decoder hears in the city
        ("is it going to between the like on tomorrow",
         ["between the like on", "the like on", "like on", "on"]),
        # "for" is politeness too, but with no "in" or "for" before it, it is where the city
        # belongs ("what's the forecast for {city}"), not a "for me" after it
        ("what's the forecast for please", [""]),
        ("what's the forecast for tomorrow", [""]),
    ],
)  # fmt: skip
def test_a_missing_city_gets_a_second_look_where_it_should_be(
    reading: str, spans: list[str]
) -> None:
    look = _plan(reading)
    assert look is not None
    assert (look.tool, look.slot) == ("get_weather", "city")
    assert _spans(look) == spans
    # the values are the schema's, in their spoken forms
    assert look.values == {c.lower() for c in CITIES}


@pytest.mark.parametrize(
    "reading",
    [
        "what's the weather in lyon tomorrow",  # the city was heard: nothing to look at
        "what time is it",  # the clock's zone is optional
        "where is my order ten oh",  # no choice slot (the identifier has its own look)
        "hello",  # small talk
        "open the garage door",  # no tool
        "",
    ],
)
def test_no_second_look(reading: str) -> None:
    assert _plan(reading) is None


def test_an_answer_to_the_question_for_the_city_gets_no_look() -> None:
    assert _plan("like on", asked=("get_weather", "city")) is None


def test_the_grammar_is_the_reading_with_only_the_value_free() -> None:
    look = _plan("is it going to rain when be in on tomorrow")
    assert look is not None
    assert look.grammar.startswith("#JSGF V1.0;")
    assert "public <said> = ((is it going to rain when be in <value>)) tomorrow;" in look.grammar
    assert "(new york)" in look.grammar and "(lyon)" in look.grammar
    assert look.lead == frozenset()  # the reading kept its "in"
    # without it, the value may be heard with one of the words before the slot in the examples
    several = _plan("is it going to between the like on tomorrow")
    assert several is not None and several.lead == {"in", "for"}
    assert "(is it going to [for | in] <value>) | (is it going to between [for | in] <value>)" in (
        several.grammar
    )


@pytest.mark.parametrize(
    ("reading", "tail", "optional"),
    [
        # the city lost whole, "please" heard in its place: the value may be said without it
        ("weather in please", " [please];", {"please"}),
        ("what's the weather in like on for me", " [for] [me];", {"for", "me"}),
        # another slot's value says something: it stays, only the politeness may go
        ("is it going to rain in on tomorrow please", " tomorrow [please];", {"please"}),
        ("is it going to rain when be in on tomorrow", " tomorrow;", set()),
        # an anchor before the city: the "for" after it is politeness
        ("what's the forecast for please", " [please];", {"please"}),
    ],
)
def test_politeness_after_the_value_is_optional_in_the_grammar(
    reading: str, tail: str, optional: set[str]
) -> None:
    look = _plan(reading)
    assert look is not None
    said = next(line for line in look.grammar.splitlines() if line.startswith("public <said>"))
    assert said.endswith(tail)
    assert look.optional == optional


@pytest.mark.parametrize(
    ("heard", "merged"),
    [
        ("what's the weather in lyon for me", "what's the weather in lyon for me"),
        # the politeness the second pass left out is left out of the reading too
        ("what's the weather in lyon me", "what's the weather in lyon me"),
        ("what's the weather in lyon for", "what's the weather in lyon for"),
        ("what's the weather in new york", "what's the weather in new york"),
        ("what's the weather in lyon me for", None),  # not the reading's order
        ("what's the weather in lyon please", None),  # nor its words
        ("what's the weather in for me", None),  # no value
        ("what's the weather in like on", None),
    ],
)
def test_merge_takes_the_value_with_or_without_the_politeness_after_it(
    heard: str, merged: str | None
) -> None:
    _check_merge("what's the weather in like on for me", heard, merged)


def test_merge_never_drops_another_slots_value() -> None:
    look = _plan("is it going to rain in on tomorrow please")
    assert look is not None
    assert look.merge("is it going to rain in lyon tomorrow") == (
        "is it going to rain in lyon tomorrow"
    )
    assert look.merge("is it going to rain in lyon please") is None


def test_the_grammar_uses_only_words_the_recogniser_knows() -> None:
    known = set(tokenize("is it going to rain when be in on tomorrow lyon paris new york"))
    look = plan_choice(MODEL, "is it going to rain when be in on tomorrow", known.__contains__)
    assert look is not None and look.values == {"lyon", "paris", "new york"}
    # a reading word the recogniser cannot say: no grammar (it would not compile)
    assert plan_choice(MODEL, "is it going to rain in on", {"lyon"}.__contains__) is None


@pytest.mark.parametrize(
    ("heard", "merged"),
    [
        ("is it going to lyon tomorrow", "is it going to lyon tomorrow"),
        ("is it going to between new york tomorrow", "is it going to between new york tomorrow"),
        # the lost "in" heard again is kept in the reading
        (
            "is it going to between the in lyon tomorrow",
            "is it going to between the in lyon tomorrow",
        ),
        ("is it going to between the in tomorrow", None),
        ("is it going to between the like on tomorrow", None),  # no value
        ("is it going to lyon", None),  # the words after it were not kept (a partial path)
        ("is it going lyon tomorrow", None),  # nor the words before it
        ("is it going to atlantis tomorrow", None),
        ("", None),
    ],
)
def test_merge_keeps_only_a_value_of_the_slot(heard: str, merged: str | None) -> None:
    _check_merge("is it going to between the like on tomorrow", heard, merged)


def _check_merge(reading: str, heard: str, merged: str | None) -> None:
    """The look at ``reading`` merges the second pass's ``heard`` into ``merged``, a reading
    with a city (None: no merge)."""
    look = _plan(reading)
    assert look is not None
    assert look.merge(heard) == merged
    if merged is not None:
        assert MODEL.understand(merged).arguments["city"] in CITIES


def test_any_tool_with_a_required_choice_gets_the_look() -> None:
    """Nothing is the weather's: a plugin's enum slot gets the same look."""

    @tool(
        description="Switch a room's lights.",
        parameters={
            "type": "object",
            "properties": {"room": {"enum": ["kitchen", "bedroom", "living room"]}},
            "required": ["room"],
        },
        examples=("turn on the lights in the {room}", "lights on in the {room}"),
    )
    async def lights(args: dict[str, object], ctx: object) -> dict[str, object]:
        return {}

    model = ToolModel([describe_spec(lights.spec)])
    look = plan_choice(model, "turn on the lights in the kitten", _any_word)
    assert look is not None and (look.tool, look.slot) == ("lights", "room")
    assert _spans(look) == ["kitten"]
    assert look.merge("turn on the lights in the living room") == (
        "turn on the lights in the living room"
    )


def test_a_huge_enum_gets_no_look() -> None:
    """One grammar alternative per value: an enum past the cap would make the second decode
    cost grow with it, so the first reading stands (the dialogue asks for the value)."""
    rooms = [f"{a} {b}" for a in _ADJECTIVES for b in _NOUNS]
    assert len(rooms) > 200

    @tool(
        description="Switch a room's lights.",
        parameters={
            "type": "object",
            "properties": {"room": {"enum": rooms}},
            "required": ["room"],
        },
        examples=("turn on the lights in the {room}", "lights on in the {room}"),
    )
    async def lights(args: dict[str, object], ctx: object) -> dict[str, object]:
        return {}

    model = ToolModel([describe_spec(lights.spec)])
    reading = "turn on the lights in the kitten"
    assert model.understand(reading).name == "lights"  # the tool is asked for, its room missing
    assert plan_choice(model, reading, _any_word) is None


_ADJECTIVES = ("red", "blue", "green", "small", "big", "old", "new", "north", "south", "east",
               "west", "upper", "lower", "front", "back")  # fmt: skip
_NOUNS = ("kitchen", "bedroom", "hall", "study", "attic", "cellar", "garage", "porch", "office",
          "pantry", "landing", "lounge", "den", "nursery")  # fmt: skip


def test_the_session_looks_at_an_identifier_first() -> None:
    assert isinstance(second_look(MODEL, "where is my order ten oh", _any_word), Reread)
    assert isinstance(second_look(MODEL, "weather in please", _any_word), ChoiceLook)
    assert second_look(MODEL, "what's the weather in paris", _any_word) is None


def test_the_reading_is_understood_once_for_both_looks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The identifier's look declines a reading that asks for the weather: the choice look
    uses the same understanding rather than parsing the reading again (only its probes, the
    reading with a value in the span, are understood besides)."""
    reading = "what's the weather in tomorrow"
    understood: list[str] = []
    understand = MODEL.understand

    def counting(text: str, **kwargs: object) -> object:
        understood.append(text)
        return understand(text, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(MODEL, "understand", counting)
    look = second_look(MODEL, reading, _any_word)
    assert isinstance(look, ChoiceLook)
    assert understood.count(reading) == 1
    assert len(understood) == 1 + len(look.starts)  # the probes
    understood.clear()
    assert isinstance(second_look(MODEL, "where is my order ten oh", _any_word), Reread)
    assert understood == ["where is my order ten oh"]
    # an answer to a question is read with `fill`, never understood as a request
    understood.clear()
    assert second_look(MODEL, "like on", _any_word, asked=("get_weather", "city")) is None
    assert isinstance(
        second_look(MODEL, "ten oh", _any_word, asked=("track_order", "order_id")), Reread
    )
    assert understood == []


def _mic_audio(speech: bytes) -> bytes:
    commands = mic_commands(speech).commands
    return b"".join(c.pcm for c in commands if isinstance(c, ev.SendAudio))


def test_the_decoder_reads_the_city_again(
    domain_recognizer: SpeechRecognizer, say: Callable[..., bytes]
) -> None:
    """The real decoder with the grammar of a reading that lost its city: the city is read
    from the audio again, the words around it stay as they were."""
    merged = _read_again(
        domain_recognizer,
        say("what's the weather in paris tomorrow"),
        "what's the weather in tomorrow",
    )
    assert merged == "what's the weather in paris tomorrow"


def test_the_decoder_reads_a_city_heard_as_politeness(
    domain_recognizer: SpeechRecognizer, say: Callable[..., bytes]
) -> None:
    """A first pass that heard "please" where the city was: the grammar lets the second pass
    give those sounds to a city instead of keeping the "please" that was never said."""
    merged = _read_again(
        domain_recognizer, say("what's the weather in paris"), "what's the weather in please"
    )
    assert merged == "what's the weather in paris"


def _read_again(recognizer: SpeechRecognizer, speech: bytes, reading: str) -> str | None:
    """The real decoder's second look at ``speech`` that the first pass read as ``reading``,
    merged into the reading."""
    key = recognizer.add_language_model(MODEL.sentences(), background_sentences())
    look = plan_choice(MODEL, reading, lambda w: recognizer.knows(w, model=key))
    assert look is not None
    heard = recognizer.recognize_grammar(_mic_audio(speech), look.grammar, model=key)
    return look.merge(heard)


async def test_the_session_reads_a_lost_city_again(
    backend: LocalBackend,
    orders_db: Path,
    say: Callable[..., bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through the session: a first pass that lost the city (the recogniser's reading, with
    "paris" taken out and no next-best readings) is read again from the same audio, and the
    tool is called with the city instead of asking for it."""
    toolbox = ToolBox(orders_db, now=lambda: FIXED_NOW, extra=WEATHER)
    tools = toolbox.descriptions
    session = await backend.open(BackendOptions(session_id="t", tools=tools))
    recognizer = backend._recognizer
    assert recognizer is not None
    first_pass = recognizer.recognize

    def lose_the_city(pcm: bytes, *args: object, **kwargs: object) -> Transcript:
        heard = first_pass(pcm, *args, **kwargs)  # type: ignore[arg-type]
        return Transcript(" ".join(w for w in heard.text.split() if w != "paris"), 1.0)

    monkeypatch.setattr(recognizer, "recognize", lose_the_city)
    speech = say("what's the weather in paris tomorrow", "espeak:en-us")
    turn = await run_turn(session, MicStream().utterance(speech).commands, toolbox=toolbox)
    await session.aclose()
    assert turn.user_text == "what's the weather in paris tomorrow"
    assert [(c.name, c.arguments_json) for c in turn.tool_calls] == [
        ("get_weather", '{"city":"Paris","day":"tomorrow"}')
    ]
