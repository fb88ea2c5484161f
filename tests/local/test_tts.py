"""Speech synthesis: piper with the bundled voice, espeak-ng as the fallback."""

from __future__ import annotations

import sys

import pytest

from sonicwire.server.backends.local.stt import SpeechRecognizer
from sonicwire.server.backends.local.tts import (
    EspeakSynthesizer,
    PiperSynthesizer,
    load_synthesizer,
    split_sentences,
)


def test_piper_speaks_with_the_bundled_voice() -> None:
    synthesizer = load_synthesizer("piper")
    assert isinstance(synthesizer, PiperSynthesizer)
    assert (synthesizer.voice, synthesizer.sample_rate) == ("joe", 22_050)
    pcm = synthesizer.synthesize("Sorry, I didn't catch that.")
    assert len(pcm) > synthesizer.sample_rate  # more than half a second of speech
    # The general model: it knows nothing of the replies.
    general = SpeechRecognizer.load("general")
    try:
        heard = general.recognize(pcm, synthesizer.sample_rate)
    finally:
        general.close()
    assert heard.text == "sorry i didn't catch that"


def test_espeak_fallback_when_piper_cannot_be_imported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("shutil").which("espeak-ng") or pytest.skip("no espeak-ng")
    monkeypatch.setitem(sys.modules, "piper", None)  # "import piper" now raises ImportError
    synthesizer = load_synthesizer("piper")
    assert isinstance(synthesizer, EspeakSynthesizer)
    assert synthesizer.voice == "espeak-en-us"
    pcm = synthesizer.synthesize("Hello.")
    assert synthesizer.sample_rate == 22_050 and len(pcm) > 4_000


def test_espeak_variants() -> None:
    pytest.importorskip("shutil").which("espeak-ng") or pytest.skip("no espeak-ng")
    synthesizer = load_synthesizer("espeak", "espeak-en-gb")
    assert synthesizer.voice == "espeak-en-gb"
    assert synthesizer.synthesize("Hello.")


def test_unknown_engine() -> None:
    with pytest.raises(ValueError):
        load_synthesizer("festival")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("Hello! How can I help?", ["Hello!", "How can I help?"]),
        ("It's 3:47 PM.", ["It's 3:47 PM."]),
        ("  One.  Two?Three ", ["One.", "Two?Three"]),
        ("", []),
    ],
)
def test_split_sentences(text: str, sentences: list[str]) -> None:
    assert split_sentences(text) == sentences
