"""The development set through the engine's own sessions, with a backend option on and off:
each utterance as a user turn of a fresh `LocalSession` (`LocalBackend`, the evaluation's tools:
the built-ins and the weather plugin), scored on the reading the session answered (its
`UserTranscript`) by `bench.local_eval.understood`, as the development comparisons score
readings. Unlike `bench.local_dev_whisper`, which answers kept pocketsphinx readings, this
recognises every utterance again and runs the session's whole path: the guess in the stop wait,
the second looks, the open reading (`open_reading.py`).

    nice -n 10 .venv/bin/python -m bench.local_dev_session  # ~5 min, open_reading on and off

The two settings are interleaved per utterance (each sees the same load); only the
development set (`bench.local_dev_readings`: its commands, voices and mic streams), never the
evaluation's phrasings or voices. Writes ``bench/results/local_dev_session.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import local_eval as evaluation
from bench.local_dev_eval import (
    DEV_COMMANDS,
    MORE_DEV_COMMANDS,
    MORE_DEV_VOICES,
    ORDER_DEV_COMMANDS,
)
from bench.local_dev_readings import DEV_ONLY, DEV_SET_VOICES, IN_TRAINING, dev_model
from bench.local_eval_set import Command
from examples.tools.weather import TOOLS as WEATHER_TOOLS
from sonicwire.server.backends.base import BackendOptions
from sonicwire.server.backends.local.engine import LocalBackend
from sonicwire.server.testing.local_harness import MicStream, ToolBox, run_turn, speak

RESULTS = Path(__file__).parent / "results" / "local_dev_session.json"
_IN_DOMAIN_SETS = ("dev", "more")  # the development tally's in-domain and out-of-domain rows


def dev_turns() -> list[tuple[str, str, int, Command]]:
    """(set, voice, mic seed, command) of every development utterance, in
    `bench.local_dev_readings.dev_sets`'s order and with its mic streams' seeds."""

    def rows(name: str, commands: Sequence[Command], voices: Sequence[str]) -> list[Any]:
        return [(name, v, i, c) for v in voices for i, c in enumerate(commands)]

    both = (*DEV_COMMANDS, *MORE_DEV_COMMANDS)
    return [
        *rows("dev", DEV_COMMANDS, DEV_SET_VOICES),
        *rows("more", MORE_DEV_COMMANDS, DEV_SET_VOICES),
        *rows("more", both, MORE_DEV_VOICES),
        *rows("in_training_x_tuning_voices", IN_TRAINING, evaluation.DEV_VOICES),
        *rows("in_training_x_dev_voices", IN_TRAINING, DEV_ONLY),
        *rows("order_numbers", ORDER_DEV_COMMANDS, (*evaluation.DEV_VOICES, *DEV_ONLY)),
    ]


def tally(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """Right and total per set, the development in-domain and out-of-domain rows, and all."""
    out: dict[str, list[int]] = {}
    for row in rows:
        names = [row["set"], "all"]
        if row["set"] in _IN_DOMAIN_SETS:
            names.append("out_of_domain_rejected" if row["intent"] == "unknown" else "in_domain")
        for name in names:
            counts = out.setdefault(name, [0, 0])
            counts[0] += row[key]
            counts[1] += 1
    return out


async def measure(option: str, limit: int = 0) -> list[dict[str, Any]]:
    """Every development utterance answered with backend option ``option`` true and false."""
    model, today = dev_model(), datetime.now(UTC).date()
    backends = {
        flag: LocalBackend.from_options(**{option: flag}, workers=1, tts="espeak")
        for flag in (True, False)
    }
    rows: list[dict[str, Any]] = []
    try:
        for backend in backends.values():
            await backend.warm_up()
        with tempfile.TemporaryDirectory() as tmp:
            for index, (name, voice, seed, command) in enumerate(dev_turns()[: limit or None]):
                mic = MicStream(seed=seed).utterance(speak(command.text, voice))
                row: dict[str, Any] = {"set": name, "voice": voice, "said": command.text}
                row["intent"] = command.intent
                for flag in (True, False) if index % 2 else (False, True):
                    toolbox = ToolBox(Path(tmp) / f"orders-{index}-{flag}.db", extra=WEATHER_TOOLS)
                    options = BackendOptions(session_id="dev", tools=toolbox.descriptions)
                    session = await backends[flag].open(options)
                    turn = await run_turn(session, mic.commands, toolbox=toolbox)
                    await session.aclose()
                    key = "on" if flag else "off"
                    row[key] = turn.user_text
                    row[f"{key}_right"] = evaluation.understood(
                        command, turn.user_text, model, today
                    )
                rows.append(row)
    finally:
        for backend in backends.values():
            await backend.aclose()
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--option", default="open_reading", help="a true/false backend option")
    parser.add_argument("--limit", type=int, default=0, help="the first N utterances (a smoke run)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[:2]
    started = datetime.now(UTC).isoformat(timespec="seconds")
    rows = asyncio.run(measure(args.option, args.limit))
    report = {
        "generated": started,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": f"python -m bench.local_dev_session --option {args.option}"
        + (f" --limit {args.limit}" if args.limit else ""),
        "on": tally(rows, "on_right"),
        "off": tally(rows, "off_right"),
        "gained": sum(r["on_right"] and not r["off_right"] for r in rows),
        "lost": sum(r["off_right"] and not r["on_right"] for r in rows),
        "load_average_1m_5m_before": [round(x, 2) for x in load_before],
        "load_average_1m_5m_after": [round(x, 2) for x in os.getloadavg()[:2]],
        "cores": os.cpu_count(),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    for key in ("on", "off"):
        print(f"{args.option}={key}: {report[key]}")
    print(f"gained {report['gained']}, lost {report['lost']}; load before "
          f"{report['load_average_1m_5m_before']}, after {report['load_average_1m_5m_after']}; "
          f"wrote {args.out}")  # fmt: skip


if __name__ == "__main__":
    main()
