"""Evaluate the audio front end (echo cancellation, alignment, VAD, CPU) and write the report.

Run from the repository root::

    .venv/bin/python -m bench.frontend_eval            # full run (a few minutes)
    .venv/bin/python -m bench.frontend_eval --quick    # CI-sized subset
    .venv/bin/python -m bench.frontend_eval --engines-only  # speex vs AEC3 section only

Writes ``bench/results/frontend.json`` and ``docs/FRONTEND.md`` (``--no-write`` to skip).
Signals and metric definitions are in bench/frontend_signals.py and in the report itself.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
for _p in (_ROOT, _ROOT / "server"):  # also runnable as `python bench/frontend_eval.py`
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from bench import frontend_signals as sig  # noqa: E402
from bench.echo_field_report import compose, split  # noqa: E402
from bench.frontend_cases import (  # noqa: E402
    evaluate_cpu,
    evaluate_double_talk,
    evaluate_drift,
    evaluate_erle,
    evaluate_hard_echo,
    evaluate_jump,
    evaluate_vad_accuracy,
    evaluate_vad_latency,
)
from bench.frontend_engines import evaluate_engines  # noqa: E402
from bench.frontend_harness import (  # noqa: E402
    DEVICE_LATENCY,
    DRIFT_PPM,
    ECHO_DBFS,
    FS,
    NEAR_DBFS,
    NOISE_DBFS,
    RELEASE_LEAD,
    REPORT_EVERY,
    ROOT,
)
from bench.frontend_report import render  # noqa: E402
from sonicwire.server.dsp.aec import AlignmentPolicy  # noqa: E402


def _write_doc(text: str) -> None:
    """Write docs/FRONTEND.md, keeping its echo-field section (``bench/echo_field_report.py``)."""
    doc = ROOT / "docs" / "FRONTEND.md"
    section = split(doc.read_text())[1] if doc.exists() else None
    doc.write_text(compose(text, section))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small CI-friendly subset")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--render", action="store_true", help="only re-render docs/FRONTEND.md from the JSON"
    )
    parser.add_argument(
        "--engines-only",
        action="store_true",
        help="only the echo engines comparison, merged into the existing JSON",
    )
    args = parser.parse_args(argv)
    json_path = ROOT / "bench" / "results" / "frontend.json"
    if args.render:
        results = json.loads(json_path.read_text())
        _write_doc(render(results))
        return 0
    quick = args.quick
    started = time.time()
    far_sp = sig.far_speech()
    near_sp = sig.near_speech()
    far = far_sp.signal
    near = near_sp.signal
    if args.engines_only:
        results = json.loads(json_path.read_text())
        results["engines"] = evaluate_engines(far, near, quick)
        results["engines"]["command"] = "python -m bench.frontend_eval --engines-only" + (
            " --quick" if quick else ""
        )
        if not args.no_write:
            json_path.write_text(json.dumps(results, indent=1) + "\n")
            _write_doc(render(results))
            print(f"wrote {json_path} and docs/FRONTEND.md", flush=True)
        print(f"done in {time.time() - started:.0f} s")
        return 0
    clips = sig.alsa_clips() or [near[i : i + 2 * FS] for i in range(0, len(near) - 2 * FS, 2 * FS)]
    delays = [0, 400, 800] if quick else list(range(0, 801, 100))
    seconds = 8.0 if quick else 12.0
    print("ERLE sweep", flush=True)
    erle = evaluate_erle(
        far, delays, seconds, baselines=True, nlms_delays=[400] if quick else delays
    )
    print("clock skew", flush=True)
    drift = evaluate_drift(far, [20.0, 100.0] if quick else [10.0, 20.0, 50.0, 100.0], seconds)
    print("delay jump", flush=True)
    jump = evaluate_jump(far, 14.0, 200, 350, 6.0)
    print("echo-only, harder conditions", flush=True)
    hard = evaluate_hard_echo(far, seconds, [0, 800] if quick else [0, 400, 800])
    print("double talk", flush=True)
    dt = evaluate_double_talk(far[5 * FS :], near, delays, 10.0 if quick else 12.0)
    print("VAD latency", flush=True)
    lat = evaluate_vad_latency(
        far, clips[:4] if quick else clips, [400] if quick else [0, 400, 800]
    )
    lat["quiet_user"] = {"near_dbfs": -34.0}
    lat["quiet_user"].update(
        evaluate_vad_latency(
            far, clips[:4] if quick else clips, [400] if quick else [0, 400, 800], near_dbfs=-34.0
        )
    )
    print("VAD accuracy", flush=True)
    acc = evaluate_vad_accuracy(clips, far, quick)
    print("CPU", flush=True)
    cpu = evaluate_cpu(far, near, 15.0 if quick else 40.0, 3 if quick else 5)
    engines = evaluate_engines(far, near, quick)
    engines["command"] = "python -m bench.frontend_eval" + (" --quick" if quick else "")
    results = {
        "meta": {
            "command": "python -m bench.frontend_eval" + (" --quick" if quick else ""),
            "quick": quick,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "far_end_speech": far_sp.source,
            "near_end_speech": near_sp.source,
            "echo_dbfs": ECHO_DBFS,
            "noise_dbfs": NOISE_DBFS,
            "near_dbfs": NEAR_DBFS,
            "clip_seconds": seconds,
            "drift_ppm": DRIFT_PPM,
            "rt60_s": 0.3,
            "alignment": dataclasses.asdict(AlignmentPolicy()),
            "release_lead_ms": RELEASE_LEAD / 16,
            "device_latency_ms": DEVICE_LATENCY / 16,
            "report_every_ms": REPORT_EVERY / 16,
            "runtime_s": round(time.time() - started, 1),
        },
        "erle": erle,
        "clock_skew": drift,
        "delay_jump": jump,
        "echo_only_hard": hard,
        "double_talk": dt,
        "vad_latency": lat,
        "vad_accuracy": acc,
        "cpu": cpu,
        "engines": engines,
    }
    if not args.no_write:
        out = ROOT / "bench" / "results" / "frontend.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1) + "\n")
        (ROOT / "docs").mkdir(exist_ok=True)
        _write_doc(render(results))
        print(f"wrote {out} and docs/FRONTEND.md", flush=True)
    print(f"done in {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
