"""Non-rhotic pronunciation variants (`accents.py`): the rule and the dictionary lines."""

from __future__ import annotations

from pathlib import Path

import pocketsphinx

from sonicwire.server.backends.local.accents import non_rhotic, with_variants
from sonicwire.server.backends.local.stt import SpeechRecognizer, _build_domain_model
from sonicwire.server.backends.local.toolmodel import ToolModel, describe_spec
from sonicwire.server.tools.builtin import TRACK_ORDER


def test_r_after_a_vowel_is_dropped_unless_a_vowel_follows() -> None:
    assert non_rhotic(("AO", "R", "D", "ER")) == ("AO", "D", "AH")  # order
    assert non_rhotic(("F", "AO", "R")) == ("F", "AO")  # for
    assert non_rhotic(("Y", "AO", "R", "K")) == ("Y", "AO", "K")  # york
    assert non_rhotic(("T", "AH", "M", "AA", "R", "OW")) == ("T", "AH", "M", "AA", "R", "OW")
    assert non_rhotic(("R", "EH", "D")) == ("R", "EH", "D")  # read: R before the vowel
    assert non_rhotic(("F", "R", "ER")) == ("F", "R", "AH")  # R after a consonant stays
    assert non_rhotic(("HH", "AY")) == ("HH", "AY")


def test_variants_are_numbered_on_after_the_words_own() -> None:
    lines = with_variants(["for F AO R\n", "for(2) F ER\n", "hi HH AY\n", "are AA R\n"])
    assert lines == [
        "for F AO R\n",
        "for(2) F ER\n",
        "for(3) F AO\n",
        "for(4) F AH\n",
        "hi HH AY\n",
        "are AA R\n",
        "are(2) AA\n",
    ]


def test_only_the_words_asked_for_get_variants() -> None:
    lines = with_variants(["four F AO R\n", "order AO R D ER\n"], only={"four"})
    assert lines == ["four F AO R\n", "four(2) F AO\n", "order AO R D ER\n"]


def test_a_variant_the_word_already_has_is_not_repeated() -> None:
    assert with_variants(["the DH AH\n", "her HH ER\n", "her(2) HH AH\n"]) == [
        "the DH AH\n",
        "her HH ER\n",
        "her(2) HH AH\n",
    ]


def test_the_session_dictionary_carries_them_only_when_asked(tmp_path: Path) -> None:
    dictionary = Path(pocketsphinx.get_model_path()) / "en-us" / "cmudict-en-us.dict"
    sentences = ["where is my order", "what is the weather"]
    for variants in (False, True):
        folder = tmp_path / str(variants)
        folder.mkdir()
        _, words = _build_domain_model(sentences, dictionary, folder, accent_variants=variants)
        lines = words.read_text().splitlines()
        assert ("order(2) AO D AH" in lines) is variants
        assert "order AO R D ER" in lines
        # the decoder loads the dictionary with its variants
        pocketsphinx.Decoder(
            hmm=str(dictionary.parent / "en-us"), lm=None, dict=str(words), loglevel="FATAL"
        )


def test_a_session_model_gives_variants_to_its_slot_words_only(
    domain_recognizer: SpeechRecognizer,
) -> None:
    """`add_language_model(accent_words=...)`: e.g. the digits of identifiers
    (`ToolModel.slot_words`), not the command words around them; a model of its own."""
    model = ToolModel([describe_spec(TRACK_ORDER)])
    digits = model.slot_words(("id",))
    assert {"four", "one", "oh"} <= digits and "order" not in digits
    sentences = model.sentences()
    plain = domain_recognizer.add_language_model(sentences)
    accented = domain_recognizer.add_language_model(sentences, accent_words=digits)
    assert plain != accented
    assert plain is not None and accented is not None
    plain_lines = Path(domain_recognizer._models[plain][1]).read_text().splitlines()
    lines = Path(domain_recognizer._models[accented][1]).read_text().splitlines()
    assert "four(2) F AO" in lines and "four(2) F AO" not in plain_lines
    assert "order AO R D ER" in lines and not any(x.startswith("order(") for x in lines)


def test_the_engine_gives_them_to_the_digits_of_identifiers(
    domain_recognizer: SpeechRecognizer,
) -> None:
    """What the engine switched on (`stt.ACCENT_SLOT_KINDS`, chosen on the development set):
    a session's model has the non-rhotic "four" of its order numbers, not an "order(2)"."""
    from sonicwire.server.backends.local import engine, stt

    assert stt.ACCENT_SLOT_KINDS == ("id",) and stt.ACCENT_VARIANTS is False
    _, key = engine._learn_tools(domain_recognizer, [describe_spec(TRACK_ORDER)])
    assert key is not None
    lines = Path(domain_recognizer._models[key][1]).read_text().splitlines()
    assert "four(2) F AO" in lines
    assert not any(line.startswith("order(") for line in lines)
    assert not any(line.startswith("for(") and line.endswith(" F AO") for line in lines)
