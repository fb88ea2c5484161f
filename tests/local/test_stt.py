"""Offline recognition of spoken commands (test speakers: espeak-ng voices)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pocketsphinx
import pytest

from sonicwire.server.backends.local.stt import RecognizerUnavailable, SpeechRecognizer
from sonicwire.server.backends.local.toolmodel import ToolModel, describe_spec
from sonicwire.server.core import events as ev
from sonicwire.server.testing.local_harness import mic_commands
from sonicwire.server.tools.builtin import GET_DATE_TIME, TRACK_ORDER


def _mic_audio(speech: bytes) -> bytes:
    """The speech as the engine gets it: with room noise around it."""
    commands = mic_commands(speech).commands
    return b"".join(c.pcm for c in commands if isinstance(c, ev.SendAudio))


@pytest.mark.parametrize(
    ("text", "voice"),
    [
        ("what time is it", "espeak:en-us"),
        ("where is my order one zero zero one", "espeak:en-us"),
        ("where is my order ten oh one", "espeak:en-gb"),
        ("what's the date today", "espeak:en-us+f2"),
        ("track order one thousand and two", "espeak:en-us+m3"),
    ],
)
def test_domain_model_hears_commands(
    domain_recognizer: SpeechRecognizer, say: Callable[..., bytes], text: str, voice: str
) -> None:
    heard = domain_recognizer.recognize(_mic_audio(say(text, voice)))
    assert heard.text == text
    assert 0.0 < heard.confidence <= 1.0


def test_recognition_is_repeatable(
    domain_recognizer: SpeechRecognizer, say: Callable[..., bytes]
) -> None:
    audio = _mic_audio(say("what's the time in london", "espeak:en-gb"))
    first = domain_recognizer.recognize(audio)
    assert domain_recognizer.recognize(audio) == first
    model = ToolModel([describe_spec(GET_DATE_TIME), describe_spec(TRACK_ORDER)])
    assert model.understand(first.text).name == "get_date_time"


def test_silence_and_empty_audio_give_no_text(domain_recognizer: SpeechRecognizer) -> None:
    assert domain_recognizer.recognize(b"").text == ""
    assert domain_recognizer.recognize(bytes(16_000)).text == ""


def test_other_sample_rates_are_resampled(
    domain_recognizer: SpeechRecognizer, say: Callable[..., bytes]
) -> None:
    import numpy as np
    import soxr

    speech = np.frombuffer(_mic_audio(say("hello", "espeak:en-us")), dtype=np.int16)
    at_22k = np.asarray(soxr.resample(speech, 16_000, 22_050), dtype=np.int16).tobytes()
    assert domain_recognizer.recognize(at_22k, 22_050).text == "hello"


def test_concurrent_calls_use_separate_decoders(
    domain_recognizer: SpeechRecognizer, say: Callable[..., bytes]
) -> None:
    audio = _mic_audio(say("what time is it", "espeak:en-us"))
    results: list[str] = []

    def work() -> None:
        results.append(domain_recognizer.recognize(audio).text)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["what time is it"] * 3


def test_closed_recognizer_refuses_work() -> None:
    recognizer = SpeechRecognizer.load("domain", sentences=["hello there", "what time is it"])
    recognizer.close()
    recognizer.close()
    with pytest.raises(RecognizerUnavailable):
        recognizer.recognize(bytes(3200))


def test_words_missing_from_the_dictionary_are_left_out() -> None:
    recognizer = SpeechRecognizer.load("domain", sentences=["hello there", "zzxqv hello"])
    try:
        assert recognizer.recognize(bytes(3200)).text == ""
    finally:
        recognizer.close()


def test_unknown_language_model() -> None:
    with pytest.raises(ValueError):
        SpeechRecognizer.load("klingon")  # type: ignore[arg-type]


def test_next_best_readings_come_with_the_best(
    domain_recognizer: SpeechRecognizer, say: Callable[..., bytes]
) -> None:
    """`Transcript.alternatives`: other readings of the same audio from the decoder's lattice,
    at most NBEST, all different from the best reading and from each other."""
    from sonicwire.server.backends.local.stt import NBEST

    heard = domain_recognizer.recognize(_mic_audio(say("where is my order ten oh one")))
    assert heard.text == "where is my order ten oh one"
    assert 1 <= len(heard.alternatives) <= NBEST
    assert heard.text not in heard.alternatives
    assert len(set(heard.alternatives)) == len(heard.alternatives)
    assert all(a and "<" not in a and "[" not in a for a in heard.alternatives)
    assert domain_recognizer.recognize(b"").alternatives == ()


def test_session_models_keep_more_mass_for_unseen_word_sequences(
    domain_recognizer: SpeechRecognizer, tmp_path: Path
) -> None:
    """Session models are smoothed with SESSION_DISCOUNT (not pocketsphinx's 0.5): a trigram
    never trained on backs off to a likelier estimate, and each smoothing is its own model."""
    from sonicwire.server.backends.local.stt import SESSION_DISCOUNT, _build_domain_model

    sentences = ["what time is it", "what is the time", "where is my order"]
    default = domain_recognizer.add_language_model(sentences)
    assert default == domain_recognizer.add_language_model(
        sentences, discount_mass=SESSION_DISCOUNT
    )
    assert default != domain_recognizer.add_language_model(sentences, discount_mass=0.5)

    dictionary = Path(pocketsphinx.get_model_path()) / "en-us" / "cmudict-en-us.dict"
    backoff = {}
    for mass in (0.5, SESSION_DISCOUNT):
        folder = tmp_path / str(mass)
        folder.mkdir()
        lm, _ = _build_domain_model(sentences, dictionary, folder, discount_mass=mass)
        unigrams = lm.read_text().split("\\1-grams:")[1].split("\\2-grams:")[0]
        # "what" is followed by two words: its backoff weight (the last column) is what an
        # unseen continuation gets.
        (line,) = [row for row in unigrams.splitlines() if row.split()[1:2] == ["what"]]
        backoff[mass] = float(line.split()[-1])
    assert SESSION_DISCOUNT > 0.5
    assert backoff[SESSION_DISCOUNT] > backoff[0.5]


def test_decoder_options_reach_every_decoder_of_a_worker(tmp_path: Path) -> None:
    """`SpeechRecognizer.load(decoder_options=...)` (default `DECODER_OPTIONS`) configures the
    worker's own decoder and the session decoders it builds (run here in-process)."""
    from sonicwire.server.backends.local import stt, stt_worker

    dictionary = Path(pocketsphinx.get_model_path()) / "en-us" / "cmudict-en-us.dict"
    lm, words = stt._build_domain_model(["what time is it"], dictionary, tmp_path)
    hmm = str(dictionary.parent / "en-us")
    saved = stt_worker._decoder, stt_worker._options, dict(stt_worker._session_decoders)
    try:
        # "cmn" and "remove_noise" are feature options the model's feat.params sets (batch,
        # on): the caller's must win over it
        config = {**stt.DECODER_OPTIONS, "lw": 9.5, "cmn": "live", "remove_noise": False}
        stt_worker.start_worker({**config, "hmm": hmm, "lm": str(lm), "dict": str(words)})
        session = stt_worker._session_decoder((hmm, str(lm), str(words)))
        for decoder in (stt_worker._decoder, session):
            assert decoder.config["lw"] == 9.5
            assert decoder.config["cmn"] == "live"
            assert decoder.config["remove_noise"] is False
        for name, value in stt.DECODER_OPTIONS.items():
            assert session.config[name] == value
    finally:
        stt_worker._decoder, stt_worker._options = saved[0], saved[1]
        stt_worker._session_decoders.clear()
        stt_worker._session_decoders.update(saved[2])


def test_a_bad_decoder_option_fails_at_load() -> None:
    with pytest.raises(RecognizerUnavailable):
        SpeechRecognizer.load(
            "domain", sentences=["what time is it"], decoder_options={"no_such_option": 1}
        )
