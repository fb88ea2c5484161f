"""Decoder-side levers (pocketsphinx's own settings), compared on the development set only
(never the evaluation's phrasings or voices: `bench.local_dev_eval.check_dev_split`).

    .venv/bin/python -m bench.local_dev_decoder                      # every variant
    .venv/bin/python -m bench.local_dev_decoder --variants base,lw8  # some; results merged
    .venv/bin/python -m bench.local_dev_decoder --table   # the kept results, as in the doc

The development utterances of `bench.local_dev_readings` (`dev_sets`: the development phrasings
x the tuning and development-only voices, the in-training phrasings x the tuning voices and x
the development-only voices, the order numbers after place-like words) are recognised with the
session's language model by a recogniser whose decoders carry a variant's options
(`SpeechRecognizer.load(decoder_options=...)`, `VARIANTS`: each on top of pocketsphinx's
defaults; ``base`` is those defaults, what the engine used before; `USED` is the engine's
`stt.DECODER_OPTIONS`), and answered as the session answers them
(`bench.local_dev_vote.answer`: `Dialogue.hear` over the best and next-best readings, then the
second look at an identifier, decoded by the same recogniser). The recogniser alone: no front
end, no early guesses, so the readings do not depend on the machine's load (the CPU times do).

Per variant: the right answers per set, in-domain and out-of-domain rejected (of ``dev`` and
``more``), the utterances gained and lost against ``base``, and the recognition CPU time (this
process + the recogniser's worker: `local_timing.engine_cpu_s`) per utterance, with the load
average. Results accumulate in ``bench/results/local_dev_decoder.json`` (a variant measured
again replaces its entry).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import local_dev_eval as dev_eval
from bench import local_eval as evaluation
from bench.local_dev_mix import common_words, mix
from bench.local_dev_readings import Reading, dev_model, dev_sets
from bench.local_dev_vote import _DEVELOPMENT, _Rereader, answer
from bench.local_timing import engine_cpu_s, percentiles
from sonicwire.server.backends.local.phrases import _BACKGROUND_REPEATS, background_sentences
from sonicwire.server.backends.local.stt import NBEST, SpeechRecognizer
from sonicwire.server.backends.local.toolmodel import ToolModel

__all__ = ["RESULTS", "USED", "VARIANTS", "measure", "table"]

RESULTS = Path(__file__).parent / "results" / "local_dev_decoder.json"
#: The variant the engine uses (`stt.DECODER_OPTIONS`, `stt.ACCENT_VARIANTS`,
#: `stt.ACCENT_SLOT_KINDS`): pocketsphinx's defaults, and non-rhotic variants of the spoken
#: digits of identifiers. "wbeam_wide" won here and was withdrawn after the full evaluation
#: (its latency).
USED = "non_rhotic_ids"
#: The key of a variant that sets the dictionaries' accent variants, not a decoder option.
ACCENTS = "accent_variants"
#: The key of a variant that gives the non-rhotic variants to the words of the tools' slot
#: values of these classes only (`ToolModel.slot_words`), not to every word.
ACCENT_SLOTS = "accent_slot_kinds"
#: The key of a variant whose session model is interpolated with pocketsphinx's general model
#: at this weight (`bench.local_dev_mix`), not a decoder option.
MIX = "general_model_weight"
#: The key of a variant whose common-word background has this many of the general model's
#: likeliest words (`bench.local_dev_mix.common_words`; the engine's has 1,000).
BACKGROUND = "background_words"
_NOT_DECODER = (ACCENTS, ACCENT_SLOTS, MIX, BACKGROUND)

#: name -> pocketsphinx options (on top of the model's ``feat.params`` and pocketsphinx's
#: defaults: lw 6.5, wip 0.65, pip 1, beam 1e-48, wbeam 7e-29, pbeam 1e-48, topn 4, fwdflat
#: and bestpath on, silprob 0.005, fillprob 1e-8; the model sets cmn batch, remove_noise on).
VARIANTS: dict[str, dict[str, Any]] = {
    # pocketsphinx's defaults: the engine before this measurement
    "base": {ACCENTS: False},
    # the language weight: how much the command model counts against the acoustics
    "lw5": {"lw": 5.0},
    "lw8": {"lw": 8.0},
    "lw10": {"lw": 10.0, "fwdflatlw": 10.0, "bestpathlw": 10.0},
    # word insertion penalty (higher: fewer, longer words; against inserted digits)
    "wip0.2": {"wip": 0.2},
    "wip0.9": {"wip": 0.9},
    "pip0.5": {"pip": 0.5},
    # the search: wider beams, more Gaussians scored, no second (flat-lexicon) pass
    "beams_wide": {"beam": 1e-60, "wbeam": 1e-40, "pbeam": 1e-60},
    "beams_narrow": {"beam": 1e-40, "wbeam": 1e-20, "pbeam": 1e-40},
    "beam_pbeam_wide": {"beam": 1e-60, "pbeam": 1e-60},
    "wbeam_wide": {"wbeam": 1e-40},
    "wbeam_wider": {"wbeam": 1e-50},
    "wbeams_wide": {"wbeam": 1e-40, "fwdflatwbeam": 1e-40},
    "beams_wider": {"beam": 1e-80, "wbeam": 1e-50, "pbeam": 1e-80},
    "topn8": {"topn": 8},
    "no_fwdflat": {"fwdflat": False},
    "no_bestpath": {"bestpath": False},
    # silence and filler insertion
    "silprob0.1": {"silprob": 0.1},
    "fillprob1e-4": {"fillprob": 1e-4},
    # features: the model's spectral noise removal off; live cepstral mean (from cmninit)
    # instead of the model's per-utterance mean; variance normalisation
    "no_remove_noise": {"remove_noise": False},
    "cmn_live": {"cmn": "live"},
    "varnorm": {"varnorm": True},
    # a fixed frequency warp (vocal tract length): a shorter / longer tract than the model's
    "warp0.94": {"warp_type": "inverse_linear", "warp_params": "0.94"},
    "warp1.06": {"warp_type": "inverse_linear", "warp_params": "1.06"},
    # the dictionaries: non-rhotic pronunciation variants added (`accents.py`; not a
    # pocketsphinx option: `SpeechRecognizer.load(accent_variants=True)`)
    "non_rhotic": {ACCENTS: True},
    # ... for the words of slot values only: the choices (city names, enum values), and the
    # values of every slot class (digits, numbers, dates and times too)
    "non_rhotic_choices": {ACCENT_SLOTS: ["choice"]},
    "non_rhotic_slots": {ACCENT_SLOTS: ["choice", "id", "integer", "date", "time", "boolean"]},
    # ... for the spoken digits of identifiers only (what the two above gained: "four" as F AO)
    "non_rhotic_ids": {ACCENT_SLOTS: ["id"]},
    # the session model interpolated with the general en-US model's bigrams over its own
    # vocabulary (`bench.local_dev_mix`), at a small weight
    "mix0.05": {MIX: 0.05},
    "mix0.1": {MIX: 0.1},
    "mix0.2": {MIX: 0.2},
    # a larger common-word background (each word three times, as the engine's 1,000): more of
    # the words of new phrasings ("rain", "warm", "degrees", "temperature") can be heard
    "background2000": {BACKGROUND: 2000},
    "background3000": {BACKGROUND: 3000},
}


def _recognizer(options: dict[str, Any], model: ToolModel) -> tuple[SpeechRecognizer, str | None]:
    """A recogniser with a variant's ``options`` and the session's language model (its key)."""
    decoder = {k: v for k, v in options.items() if k not in _NOT_DECODER}
    recognizer = SpeechRecognizer.load(
        "domain", decoder_options=decoder, accent_variants=bool(options.get(ACCENTS, False))
    )
    kinds = options.get(ACCENT_SLOTS, ())
    background = background_sentences()
    if options.get(BACKGROUND):
        background = common_words(int(options[BACKGROUND])) * _BACKGROUND_REPEATS
    key = recognizer.add_language_model(
        model.sentences(),
        background,
        accent_words=model.slot_words(kinds) if kinds else (),
    )
    if options.get(MIX):
        # The model's file is replaced before any decoder has loaded it (the workers load a
        # session model at its first recognition); the recogniser has no public way to take
        # an ARPA file of its own, and the engine does not need one unless this wins.
        assert key is not None
        lm_path = Path(recognizer._models[key][0])
        lm_path.write_text(mix(lm_path.read_text(), float(options[MIX])), encoding="utf-8")
    return recognizer, key


def measure(
    options: dict[str, Any],
    model: ToolModel,
    samples: list[tuple[str, str, Any, bytes]],
) -> tuple[list[Reading], list[str], list[float]]:
    """Recognise and answer every (set, voice, command, audio) with decoders of ``options``:
    the readings, the answered readings and the recognition CPU ms per utterance."""
    recognizer, key = _recognizer(options, model)
    readings: list[Reading] = []
    cpu_ms: list[float] = []
    try:
        for name, voice, command, audio in samples:
            cpu = engine_cpu_s()
            heard = recognizer.recognize(audio, model=key, nbest=NBEST)
            cpu_ms.append((engine_cpu_s() - cpu) * 1000)
            readings.append((name, voice, command, heard.text, heard.alternatives))
        rereader = _SameRecognizer(model, readings, recognizer, key, samples)
        today = datetime.now(UTC).date()
        answered = [answer(model, r, i, rereader, today)[0] for i, r in enumerate(readings)]
    finally:
        recognizer.close()
    return readings, answered, cpu_ms


def cpu_ab(
    first: str, second: str, model: ToolModel, samples: list[tuple[str, str, Any, bytes]]
) -> dict[str, Any]:
    """Recognition CPU ms per utterance of two variants, each utterance recognised by one then
    the other (the order alternating), so both see the same load: `bench.cpu_ab`'s way."""
    recognizers, keys = {}, {}
    cpu_ms: dict[str, list[float]] = {first: [], second: []}
    load_before = os.getloadavg()
    try:
        for name in (first, second):
            recognizers[name], keys[name] = _recognizer(VARIANTS[name], model)
        for index, (_, _, _, audio) in enumerate(samples):
            for name in (first, second) if index % 2 == 0 else (second, first):
                cpu = engine_cpu_s()
                recognizers[name].recognize(audio, model=keys[name], nbest=NBEST)
                cpu_ms[name].append((engine_cpu_s() - cpu) * 1000)
    finally:
        for recognizer in recognizers.values():
            recognizer.close()
    ratios = sorted(b / a for a, b in zip(cpu_ms[first], cpu_ms[second], strict=True) if a > 0)
    return {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": f"python -m bench.local_dev_decoder --cpu-ab {first},{second}",
        "recognition_cpu_ms": {name: percentiles(times) for name, times in cpu_ms.items()},
        "median_ratio_second_to_first": round(ratios[len(ratios) // 2], 3),
        "load_average_1m_5m_before": [round(x, 2) for x in load_before[:2]],
        "load_average_1m_5m_after": [round(x, 2) for x in os.getloadavg()[:2]],
    }


class _SameRecognizer(_Rereader):
    """The second look decoded by the recogniser being measured (its options)."""

    def __init__(
        self,
        model: ToolModel,
        readings: list[Reading],
        recognizer: SpeechRecognizer,
        key: str | None,
        samples: list[tuple[str, str, Any, bytes]],
    ) -> None:
        super().__init__(model, readings)
        self._recognizer, self._key = recognizer, key
        self._audio = {(s, v, c.text): audio for s, v, c, audio in samples}

    def close(self) -> None:  # the measurement closes its recogniser
        pass


def _tally(rows: list[tuple[str, Any, bool]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in dict.fromkeys(s for s, _, _ in rows):
        out[name] = sum(ok for s, _, ok in rows if s == name)
    dev = [(c, ok) for s, c, ok in rows if s in _DEVELOPMENT]
    out["development_in_domain"] = sum(ok for c, ok in dev if c.intent != "unknown")
    out["development_out_of_domain_rejected"] = sum(ok for c, ok in dev if c.intent == "unknown")
    out["all"] = sum(ok for _, _, ok in rows)
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--table", action="store_true", help="print the kept results as a table; measure nothing"
    )
    parser.add_argument(
        "--cpu-ab",
        default="",
        metavar="A,B",
        help="only the recognition CPU time of two variants, interleaved utterance by utterance",
    )
    args = parser.parse_args(argv)
    if args.table:
        print(table(json.loads(args.out.read_text())))
        return
    names = [n for n in args.variants.split(",") if n]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {sorted(VARIANTS)}")
    model = dev_model()
    dev_eval.check_dev_split(set(model.sentences()))
    samples = [(s, v, c, a) for s, rows in dev_sets().items() for v, c, a in rows]
    report: dict[str, Any] = (
        json.loads(args.out.read_text()) if args.out.exists() else {"variants": {}}
    )
    if args.cpu_ab:
        pair = args.cpu_ab.split(",")
        if len(pair) != 2 or not set(pair) <= set(VARIANTS):
            raise SystemExit(f"--cpu-ab takes two of {sorted(VARIANTS)}")
        # one entry per pair measured (the word beam's, 09:24; the digits' accents, 11:42)
        measured = cpu_ab(pair[0], pair[1], model, samples)
        report.setdefault("cpu_ab_by_pair", {})[args.cpu_ab] = measured
        print(json.dumps(measured))
        args.out.write_text(json.dumps(_compared(report), indent=1) + "\n")
        return
    report["command"] = "python -m bench.local_dev_decoder"
    sets = dict.fromkeys(s for s, *_ in samples)
    report["sizes"] = {name: sum(1 for s, *_ in samples if s == name) for name in sets}
    report["sizes"] |= _tally([(s, c, True) for s, _, c, _ in samples])
    today = datetime.now(UTC).date()
    for name in names:
        load_before = os.getloadavg()
        readings, answered, cpu_ms = measure(VARIANTS[name], model, samples)
        right = [
            evaluation.understood(c, reading, model, today)
            for (_, _, c, _, _), reading in zip(readings, answered, strict=True)
        ]
        report["variants"][name] = {
            "options": VARIANTS[name],
            "generated": datetime.now(UTC).isoformat(timespec="seconds"),
            "right": _tally(
                [(s, c, ok) for (s, _, c, _, _), ok in zip(readings, right, strict=True)]
            ),
            "recognition_cpu_ms": percentiles(cpu_ms),
            "load_average_1m_5m_before": [round(x, 2) for x in load_before[:2]],
            "load_average_1m_5m_after": [round(x, 2) for x in os.getloadavg()[:2]],
            "answers": [
                {"set": s, "voice": v, "said": c.text, "heard": t, "answered": a, "right": ok}
                for (s, v, c, t, _), a, ok in zip(readings, answered, right, strict=True)
            ],
        }
        print(name, json.dumps(report["variants"][name]["right"]),
              report["variants"][name]["recognition_cpu_ms"], load_before[:2])  # fmt: skip
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(_compared(report), indent=1) + "\n")
    print(f"wrote {args.out}")


_COLUMNS = (
    "dev", "more", "development_in_domain", "development_out_of_domain_rejected",
    "in_training_x_tuning_voices", "in_training_x_dev_voices", "order_numbers", "all",
)  # fmt: skip


def table(report: dict[str, Any]) -> str:
    """The kept results as a Markdown table (docs/LOCAL_ENGINE.md), ``base`` first."""
    sizes = report.get("sizes", {})
    names = {"development_in_domain": "in-domain", "all": "all",
             "development_out_of_domain_rejected": "out of domain rejected"}  # fmt: skip
    head = [f"{names.get(c, c.replace('_', ' '))} ({sizes.get(c, '')})" for c in _COLUMNS]
    lines = [
        f"| variant | options | {' | '.join(head)} | gained / lost | CPU p50 / p95 ms | load |",
        "|" + "---|" * (len(_COLUMNS) + 5),
    ]
    variants = report["variants"]
    for name in sorted(variants, key=lambda n: n != "base"):
        v = variants[name]
        options = ", ".join(f"{k} {val}" for k, val in v["options"].items()) or "-"
        counts = " | ".join(str(v["right"][c]) for c in _COLUMNS)
        changed = "-" if name == "base" else f"+{len(v['gained'])} / -{len(v['lost'])}"
        cpu = v["recognition_cpu_ms"]
        load = v["load_average_1m_5m_before"][0], v["load_average_1m_5m_after"][0]
        lines.append(f"| {name} | {options} | {counts} | {changed} | "
                     f"{cpu['p50']:.0f} / {cpu['p95']:.0f} | {load[0]} -> {load[1]} |")  # fmt: skip
    return "\n".join(lines)


def _compared(report: dict[str, Any]) -> dict[str, Any]:
    """Each variant's utterances gained and lost against ``base`` (when measured), and only
    its answers that differ from base's kept (``base`` keeps them all)."""
    base = report["variants"].get("base")
    if base is None:
        return report
    for name, result in report["variants"].items():
        if name == "base" or "answers" not in result:
            continue
        pairs = list(zip(base["answers"], result.pop("answers"), strict=True))
        result["gained"] = [
            f"{b['voice']}: {b['said']!r} -> {r['answered']!r}"
            for b, r in pairs
            if r["right"] and not b["right"]
        ]
        result["lost"] = [
            f"{b['voice']}: {b['said']!r} -> {r['answered']!r}"
            for b, r in pairs
            if b["right"] and not r["right"]
        ]
        result["readings_changed"] = sum(b["heard"] != r["heard"] for b, r in pairs)
    return report


if __name__ == "__main__":
    main()
