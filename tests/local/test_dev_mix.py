"""bench/local_dev_mix.py: the command model interpolated with a general model is a proper
back-off model (no recognition here; a small general model stands in for pocketsphinx's)."""

from __future__ import annotations

import math
from pathlib import Path

import pocketsphinx

from bench.local_dev_mix import _parse, mix
from sonicwire.server.backends.local.stt import _build_domain_model

_DICTIONARY = Path(pocketsphinx.get_model_path()) / "en-us" / "cmudict-en-us.dict"
_SENTENCES = ["what time is it", "what is the weather in paris", "weather in paris", "hello"]


def _command_model(tmp_path: Path) -> tuple[str, Path]:
    lm, words = _build_domain_model(_SENTENCES, _DICTIONARY, tmp_path, discount_mass=0.7)
    return lm.read_text(), words


def _general(vocabulary: list[str]) -> tuple[dict[str, float], dict, dict]:
    """A general model over ``vocabulary``: uniform unigrams, and "is" likely after "weather"
    (a bigram the command model never saw)."""
    unigram = {w: math.log10(1 / len(vocabulary)) for w in vocabulary}
    backoff = {(w, ""): math.log10(0.5) for w in vocabulary}
    return unigram, backoff, {("weather", "is"): math.log10(0.5)}


def _probability(text: str):  # type: ignore[no-untyped-def]
    uni, bi, tri = _parse(text)

    def p2(w: str, v: str) -> float:
        return 10 ** bi[(v, w)][0] if (v, w) in bi else 10 ** uni[v][1] * 10 ** uni[w][0]

    def p3(w: str, u: str, v: str) -> float:
        if (u, v, w) in tri:
            return 10 ** tri[(u, v, w)]
        return 10 ** (bi[(u, v)][1] if (u, v) in bi else 0.0) * p2(w, v)

    return list(uni), p3


def test_weight_zero_writes_the_command_model_again(tmp_path: Path) -> None:
    command, _ = _command_model(tmp_path)
    vocabulary, before = _probability(command)
    _, after = _probability(mix(command, 0.0, _general(vocabulary)))
    for u in vocabulary:
        for v in vocabulary:
            for w in vocabulary:
                if w != "<s>":
                    assert math.isclose(after(w, u, v), before(w, u, v), rel_tol=1e-3)


def test_a_mixture_keeps_every_historys_mass_and_learns_the_general_models_bigrams(
    tmp_path: Path,
) -> None:
    command, words = _command_model(tmp_path)
    vocabulary, before = _probability(command)
    mixed = mix(command, 0.2, _general(vocabulary))
    _, after = _probability(mixed)
    predicted = [w for w in vocabulary if w != "<s>"]
    for u, v in [("<s>", "what"), ("the", "weather"), ("in", "paris"), ("hello", "what")]:
        total = sum(after(w, u, v) for w in predicted)
        assert math.isclose(total, sum(before(w, u, v) for w in predicted), rel_tol=1e-3)
    assert after("is", "the", "weather") > 3 * before("is", "the", "weather")
    assert after("in", "the", "weather") < before("in", "the", "weather")
    # pocketsphinx loads it
    path = tmp_path / "mixed.lm"
    path.write_text(mixed)
    pocketsphinx.Decoder(
        hmm=str(_DICTIONARY.parent / "en-us"), lm=str(path), dict=str(words), loglevel="FATAL"
    )
