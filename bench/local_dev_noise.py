"""Early guesses in noisy rooms, on the development set only: the development phrasings x the
development voices (`bench.local_dev_latency.dev_turns`, never an evaluation phrasing, voice or
recording) mixed with synthetic room noise of four kinds at several levels, through the real
front end (`bench.local_eval.front_end_commands`), as the evaluation's turns are.

Two measurements, one command each:

    nice -n 10 .venv/bin/python -m bench.local_dev_noise --sweep          # EarlyCut alone
    nice -n 10 .venv/bin/python -m bench.local_dev_noise --ab noisy_room_guess --limit 40
    nice -n 10 .venv/bin/python -m bench.local_dev_noise --ab room_level --limit 40

``--sweep`` replays every noisy (and clean) stream through `EarlyCut` with each candidate
rule for noisy rooms (``--margins`` x ``--drops``, plus the rule off): how many turns get a
guess the VAD's marker confirms, how many guesses are wasted (voided by resumed speech or
contradicted by the marker), and how long after the end of speech the guess came. Pure
signal work: no recogniser, so it can try every candidate; writes
``bench/results/local_dev_noise_sweep.json``.

``--ab OPTION`` runs the same turns paced in real time through whole sessions
(`bench.local_dev_latency.measure`, interleaved per turn between the option on and off):
first audio, accuracy, CPU per turn, per room and intent; writes
``bench/results/local_dev_noise.json``. ``--ab room_level`` is no backend option: it turns
the room's level alone on and off (the late marker stays on in both).

The noise is synthetic and seeded (the evaluation's recordings are not looked at): steady pink
and brown noise, a fan (a blade tone with harmonics over low-passed noise, slowly swelling) and
babble-like noise (six streams of speech-shaped noise, each gated at syllable rate). Levels are
the noise's RMS in dBFS before the front end; its noise suppression lowers steady noise over
the first second, so each room's level as `EarlyCut` measured it is reported too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench import local_dev_latency as latency
from bench import local_eval as evaluation
from bench.local_timing import percentiles
from sonicwire.server.backends.local import session as session_module
from sonicwire.server.backends.local.early import ROOM_DROP_DB, ROOM_MARGIN_DB, EarlyCut
from sonicwire.server.core import events as ev
from sonicwire.server.testing.local_harness import speak

Float = npt.NDArray[np.float64]
RESULTS = Path(__file__).parent / "results" / "local_dev_noise.json"
SWEEP_RESULTS = Path(__file__).parent / "results" / "local_dev_noise_sweep.json"
RATE = 16_000
KINDS = ("pink", "brown", "fan", "babble")
#: Input RMS levels (dBFS). -60 is the evaluation's own (white) room: the clean reference.
LEVELS = (-40.0, -33.0, -26.0)
# The session's EarlyCut settings (session.py: the collector's pad, `_GUESS_SILENCE_MS`).
_PAD_MS, _SILENCE_MS = 300, 100


@dataclass(frozen=True)
class Room:
    """Background noise of one kind at one level (input RMS, dBFS)."""

    kind: str
    level_dbfs: float

    @property
    def label(self) -> str:
        return "clean" if self.kind == "clean" else f"{self.kind}{self.level_dbfs:+.0f}"

    def noise(self, seed: int) -> Callable[[int], Float] | None:
        """The front end's background for ``n`` samples (None: the evaluation's own)."""
        if self.kind == "clean":
            return None
        scale = 32768 * 10 ** (self.level_dbfs / 20)
        return lambda n: scale * room_noise(self.kind, n, seed)


def rooms(kinds: Iterable[str] = KINDS, levels: Iterable[float] = LEVELS) -> list[Room]:
    """The clean room first, then every kind at every level."""
    return [Room("clean", -60.0)] + [Room(k, lv) for k in kinds for lv in levels]


def room_noise(kind: str, n: int, seed: int) -> Float:
    """``n`` samples of seeded noise of ``kind`` at unit RMS."""
    rng = np.random.default_rng(seed)
    f = np.fft.rfftfreq(n, 1 / RATE)
    f[0] = f[1] if n > 1 else 1.0
    white = np.fft.rfft(rng.standard_normal(n))
    if kind == "pink":
        x = np.fft.irfft(white / np.sqrt(f), n)
    elif kind == "brown":  # 1/f power falls 6 dB per octave; no rumble below 30 Hz
        x = np.fft.irfft(white / f * (f > 30), n)
    elif kind == "fan":
        t = np.arange(n) / RATE
        blade = 0.5 * np.sin(2 * np.pi * 118 * t) + 0.25 * np.sin(2 * np.pi * 236 * t + 1)
        rush = np.fft.irfft(white * (f < 900) / np.sqrt(f), n)
        rush /= np.sqrt(np.mean(rush**2)) + 1e-20
        x = (blade + rush) * (1 + 0.2 * np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 6)))
    elif kind == "babble":
        x = np.zeros(n)
        shape = (f > 150) * (f < 4000) / np.sqrt(f)  # roughly speech's long-term spectrum
        for _ in range(6):
            stream = np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) * shape, n)
            x += stream * _syllables(n, rng)
    else:
        raise ValueError(f"unknown noise kind {kind!r}")
    out: Float = x / (np.sqrt(np.mean(x**2)) + 1e-20)
    return out


def _syllables(n: int, rng: np.random.Generator) -> Float:
    """A talker's envelope: 4-6 syllables a second, some of them pauses."""
    gates = np.repeat(rng.random(n // 3200 + 2) < 0.7, 3200)[:n].astype(np.float64)
    kernel = np.hanning(800)
    return np.convolve(gates, kernel / kernel.sum(), mode="same")


# --- the sweep: EarlyCut alone ----------------------------------------------------------------


def replay(commands: Sequence[ev.BackendCommand], end_index: int, cut: EarlyCut) -> dict[str, Any]:
    """Feed a stream to ``cut`` as the session does: its guesses (ms after the end of speech),
    whether the marker confirmed one, and the room level it measured."""
    frames, end_frame, last = 0, None, 0
    guesses: list[int] = []
    confirmed = False
    late: int | None = None  # how far the marker's silence start was after the last guess's
    for index, command in enumerate(commands):
        match command:
            case ev.SendAudio(pcm):
                frames += 1
                if index == end_index:
                    end_frame = frames
                guess = cut.push_audio(pcm)
                if guess is not None:
                    guesses.append(frames)
                    last = guess.silence_start
            case ev.UserSpeechStarted(offset):
                cut.speech_started(offset)
            case ev.UserSpeechStopped(offset):
                confirmed = confirmed or cut.speech_stopped(offset) is not None
                late = (offset - last) // 16 if guesses else None
    end = end_frame or frames
    return {
        "guesses_ms": [(g - end) * 20 for g in guesses],
        "confirmed": confirmed,
        "marker_after_guess_ms": late,
        "room_db": round(cut.room_db, 1),
    }


def streams(turns: Sequence[tuple[str, Any]], room_list: Sequence[Room]) -> list[dict[str, Any]]:
    """Every turn in every room through the front end (the sweep replays these)."""
    out = []
    for index, (voice, command) in enumerate(turns):
        speech = speak(command.text, voice)
        for room in room_list:
            commands, end_index, stop_index, _ = evaluation.front_end_commands(
                speech, seed=index, room=room.noise(index)
            )
            out.append({"room": room.label, "voice": voice, "said": command.text,
                        "intent": command.intent, "commands": commands,
                        "end_index": end_index, "stopped": stop_index >= 0})  # fmt: skip
    return out


def sweep(
    played: Sequence[dict[str, Any]], margins: Sequence[float | None], drops: Sequence[float],
    lates: Sequence[int] = (100,),
) -> list[dict[str, Any]]:  # fmt: skip
    """Each rule's guesses over ``played``, summarised per room."""
    results = []
    for margin, drop, late in [(m, d, lt) for m in margins for d in drops for lt in lates]:
        if margin is None and drop != drops[0]:
            continue
        per_room: dict[str, list[dict[str, Any]]] = {}
        for stream in played:
            if not stream["stopped"]:
                continue
            cut = EarlyCut(pad_ms=_PAD_MS, silence_ms=_SILENCE_MS, room_margin_db=margin,
                           room_drop_db=drop, late_ms=late)  # fmt: skip
            per_room.setdefault(stream["room"], []).append(
                replay(stream["commands"], stream["end_index"], cut)
            )
        results.append({"margin_db": margin, "drop_db": drop if margin is not None else None,
                        "late_ms": late,
                        "rooms": {r: guess_summary(v) for r, v in per_room.items()}})  # fmt: skip
    return results


def guess_summary(replays: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Turns, confirmed guesses, wasted guesses (every guess but a confirmed one), guesses
    before the end of speech, when the confirmed guess came, and the measured room level."""
    confirmed = [r for r in replays if r["confirmed"]]
    return {
        "turns": len(replays),
        "confirmed": len(confirmed),
        "wasted": sum(len(r["guesses_ms"]) - r["confirmed"] for r in replays),
        "before_end": sum(g < 0 for r in replays for g in r["guesses_ms"]),
        "guess_ms": percentiles([r["guesses_ms"][-1] for r in confirmed]),
        "marker_after_guess_ms": percentiles(
            [r["marker_after_guess_ms"] for r in replays if r["marker_after_guess_ms"] is not None]
        ),
        "room_db": percentiles([r["room_db"] for r in replays if r["room_db"] > -200]),
    }


def sweep_table(results: Sequence[dict[str, Any]]) -> list[str]:
    """One line per rule: confirmed guesses / turns, wasted, before the end of speech, the
    confirmed guesses' p50 ms after the end of speech; in noisy rooms, and in the clean one."""
    lines = ["margin drop late | noisy: confirmed/turns wasted before_end p50_ms | clean: same"]
    for result in results:
        noisy = [v for k, v in result["rooms"].items() if k != "clean"]
        clean = result["rooms"].get("clean")
        cells = []
        for group in (noisy, [clean] if clean else []):
            guesses = [g["guess_ms"].get("p50") for g in group if g["guess_ms"]]
            cells.append(
                f"{sum(g['confirmed'] for g in group)}/{sum(g['turns'] for g in group)} "
                f"{sum(g['wasted'] for g in group)} {sum(g['before_end'] for g in group)} "
                f"{np.median(guesses) if guesses else '-'}"
            )
        rule = f"{result['margin_db']} {result['drop_db']} {result['late_ms']}"
        lines.append(f"{rule} | " + " | ".join(cells))
    return lines


# --- paced sessions ---------------------------------------------------------------------------


def _group(chosen: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Turns, right, guesses, early ends, first audio and CPU, per intent too."""
    intents = {
        intent: {
            "turns": len(mine),
            "right": sum(r["right"] for r in mine),
            "first_audio": percentiles([r["end_to_end_ms"] for r in mine if r["end_to_end_ms"]]),
        }
        for intent in sorted({r["intent"] for r in chosen})
        for mine in [[r for r in chosen if r["intent"] == intent]]
    }
    return {
        "turns": len(chosen),
        "right": sum(r["right"] for r in chosen),
        "confirmed_guess": sum(bool(r.get("confirmed")) for r in chosen),
        "wasted_guesses": sum(len(r["guesses_ms"]) - bool(r.get("confirmed")) for r in chosen),
        "early_end": sum(r["early_end"] for r in chosen),
        "first_audio": percentiles([r["end_to_end_ms"] for r in chosen if r["end_to_end_ms"]]),
        "cpu_ms": percentiles([r["cpu_ms"] for r in chosen]),
        "intents": intents,
    }


def paced_summary(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per flag: each room, and every noisy room together ("noisy"); then the turns paired
    (the same utterance in the same room, option on minus off), by whether the option won a
    confirmed guess: the paired first-audio and CPU differences' median, which the shared
    machine's load moves less than either side's percentiles."""
    out: dict[str, Any] = {}
    for flag in dict.fromkeys(r["flag"] for r in rows):
        mine = [r for r in rows if r["flag"] == flag]
        groups = {room: [r for r in mine if r["room"] == room] for room in dict.fromkeys(
            r["room"] for r in mine)}  # fmt: skip
        groups["noisy"] = [r for r in mine if r["room"] != "clean"]
        out[str(flag)] = {name: _group(chosen) for name, chosen in groups.items() if chosen}
    pairs: dict[tuple[str, str, str], dict[Any, dict[str, Any]]] = {}
    for r in rows:
        pairs.setdefault((r["room"], r["voice"], r["said"]), {})[r["flag"]] = r
    paired: dict[str, list[tuple[float, float, bool]]] = {}
    for (room, _, _), both in pairs.items():
        on, off = both.get(True), both.get(False)
        if on is None or off is None or not on["end_to_end_ms"] or not off["end_to_end_ms"]:
            continue
        kind = "gained_guess" if on["confirmed"] and not off["confirmed"] else "other"
        entry = (on["end_to_end_ms"] - off["end_to_end_ms"], on["cpu_ms"] - off["cpu_ms"],
                 on["right"] != off["right"])  # fmt: skip
        for name in ("clean" if room == "clean" else "noisy", f"noisy_{kind}"):
            if name.startswith("noisy_") and room == "clean":
                continue
            paired.setdefault(name, []).append(entry)
    out["paired_on_minus_off"] = {
        name: {
            "pairs": len(entries),
            "first_audio_ms_median": round(float(np.median([e[0] for e in entries])), 1),
            "cpu_ms_median": round(float(np.median([e[1] for e in entries])), 1),
            "answer_changed": sum(e[2] for e in entries),
        }
        for name, entries in paired.items()
    }
    return out


def _room_level(on: bool) -> None:
    """``--ab room_level``: the sessions opened next measure the room's level (on) or keep
    only the absolute floor (off); both with the late marker (`early.LATE_MS`)."""
    setattr(session_module, "ROOM_MARGIN_DB", ROOM_MARGIN_DB if on else None)  # noqa: B010


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sweep", action="store_true", help="EarlyCut alone, every rule")
    parser.add_argument("--ab", default=None, help="paced sessions, this option on and off")
    parser.add_argument("--kinds", nargs="+", default=list(KINDS))
    parser.add_argument("--levels", nargs="+", type=float, default=list(LEVELS))
    parser.add_argument("--in-domain-every", type=int, default=1)
    parser.add_argument("--limit", type=int, default=0, help="the first N turns")
    parser.add_argument("--every", type=int, default=1, help="every N-th turn")
    parser.add_argument("--margins", nargs="+", type=float, default=[0.0, 1.5, ROOM_MARGIN_DB, 6.0])
    parser.add_argument("--drops", nargs="+", type=float, default=[10.0, 15.0, 20.0, ROOM_DROP_DB])
    parser.add_argument("--lates", nargs="+", type=int, default=[100, 200, 300])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    room_list = rooms(args.kinds, args.levels)
    turns = latency.dev_turns(args.in_domain_every)[:: args.every][: args.limit or None]
    load_before = os.getloadavg()[:2]
    started = datetime.now(UTC).isoformat(timespec="seconds")
    report: dict[str, Any] = {
        "generated": started,
        "command": "python -m bench.local_dev_noise "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "rooms": [r.label for r in room_list],
        "turns_per_room": len(turns),
    }
    if args.sweep:
        played = streams(turns, room_list)
        report["stopped"] = {r.label: sum(s["stopped"] for s in played if s["room"] == r.label)
                             for r in room_list}  # fmt: skip
        report["sweep"] = sweep(played, [None, *args.margins], args.drops, args.lates)
        report["table"] = sweep_table(report["sweep"])
        out = args.out or SWEEP_RESULTS
    else:
        switch = _room_level if args.ab == "room_level" else None
        rows = asyncio.run(
            latency.measure(args.ab, 1, args.in_domain_every, 0, turns=turns,
                            rooms=[(r.label, r.noise) for r in room_list], switch=switch)
        )  # fmt: skip
        report["summary"] = paced_summary(rows)
        report["rows"] = rows
        out = args.out or RESULTS
    report["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    report["load_average_1m_5m_before"] = [round(x, 2) for x in load_before]
    report["load_average_1m_5m_after"] = [round(x, 2) for x in os.getloadavg()[:2]]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    shown = {k: v for k, v in report.items() if k not in ("rows", "sweep", "table")}
    print(json.dumps(shown, indent=1))
    print("\n".join(report.get("table", [])))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
