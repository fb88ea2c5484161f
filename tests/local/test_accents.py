"""Non-rhotic pronunciation variants (`accents.py`): the rule and the dictionary lines."""

from __future__ import annotations

from pathlib import Path

import pocketsphinx

from sonicwire.server.backends.local.accents import non_rhotic, with_variants
from sonicwire.server.backends.local.stt import _build_domain_model


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
