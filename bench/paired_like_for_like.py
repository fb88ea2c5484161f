"""The like-for-like comparison from paired rounds: pipecat, `sonicwire up` and the gateway.

Issue 21's target: Sonicwire's WebSocket path costs <= 0.5x pipecat's CPU per stream-second on
the same protocol (the same load generator, JSON/base64 over WebSocket). Measured in phases
minutes apart, pipecat's own figure at N=10 read 45.17 in one run and 35.08 in the next (the VM's
speed moves between phases: docs/server_cpu.md), so the ratio read "met" in one run and "missed"
an hour later on the same code. As for the floor (``bench.paired_floor``), the arms compared are
therefore measured alternately, and each ratio is taken within one round.

The walk: at each N of the peer ladder, upward, ``rounds`` rounds of a pipecat step, an ``up``
step (one process, what `make run` starts) and a ``gateway`` step (gateway + server, two
processes), back to back (``bench.steps.run_step``), the order reversed every other round
(``bench.interleave``). Once pipecat's step fails in a round, that round is finished (never cut
in half) and the walk stops: that N and every N above it are beyond what pipecat sustains.

The rule (written before any measurement, ``RULE`` below; docs/server_cpu.md):

- per round and deployment, ratio = Sonicwire's CPU per stream-second / pipecat's, both from
  that round;
- an N is judged when all its planned rounds ran, pipecat's step passed in every one and each
  has a ratio; its figure is the median of its rounds' ratios, shown with their range;
- an N the run's time budget cut short (fewer rounds than planned, pipecat passing in those that
  ran) is shown, not judged: a median of 2 rounds is not the rule's median of 3 (``cut_short``);
  nor is an N where a round has no ratio (a CPU figure missing), with pipecat and Sonicwire
  passing;
- an N where pipecat's step failed in a round (its core saturated, late frames) is not judged:
  its CPU there is a lower bound on what N streams cost it, so that round's ratio is an upper
  bound, shown as ``<=``;
- an N where Sonicwire's step failed or errored in any round is a miss for that deployment,
  whatever its ratio (a step that did not serve N streams is no evidence of their cost);
- a deployment meets the <= 0.5x target when it has a judged N, none of its steps failed, and
  the median ratio is <= 0.5x at every judged N; with no judged N (and no failed step of
  ours) it is not measured.

pipecat's largest N (a separate question, no longer a ladder of single steps) is read from the
same tries: the largest N of the walk where its step passed in every round.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.interleave import Arm, cut_short, interleave, spread
from bench.procs import Children
from bench.steps import StepConfig, run_step
from bench.targets import LIKE_FOR_LIKE_X, TEXT

__all__ = [
    "DEPLOYMENTS",
    "LABELS",
    "RULE",
    "RULE_CUT_SHORT",
    "RULE_NO_RATIO",
    "figure_rounds",
    "measure",
    "no_ratio",
    "over_limit",
    "pipecat_by_n",
    "short_of",
    "summarise_like_for_like",
    "verdict",
]

#: The arms of a round, in the first round's order: pipecat next to each deployment once in
#: every two rounds.
LABELS = ("pipecat", "up", "gateway")
#: Sonicwire's two deployments of the WebSocket path, by the arm (``run_step`` target) label.
DEPLOYMENTS = ("up", "gateway")
#: The target's threshold: Sonicwire's CPU per stream-second at most this times pipecat's
#: (``bench.targets``, where every target is defined once).
LIMIT = LIKE_FOR_LIKE_X
_LIMIT = TEXT["like_for_like"]

#: The rule, stated in the report above the tables (a rule, no result). The two clauses after
#: it are stated too when the run has such an N (``bench.report_like_for_like``).
RULE = (
    "Per round, each deployment's ratio is its CPU per stream-second over pipecat's in the "
    "same round. An N is judged when pipecat's step passed in every round there, on the median "
    "of its rounds' ratios (their range shown); an N where pipecat's step failed in a round "
    "(its core saturated, late frames) is not judged: its CPU there is a lower bound on what N "
    "streams cost it, so that round's ratio is an upper bound, shown as `<=`, and the walk "
    "stops there. An N where Sonicwire's step failed or errored in any round is a miss for that "
    f"deployment whatever its ratio. A deployment meets the <= {_LIMIT} target when the median "
    f"is <= {_LIMIT} at every judged N and none of its steps failed; with no judged N it is not "
    "measured."
)
#: An N the run's time budget cut short: measured, shown, not judged.
RULE_CUT_SHORT = (
    "An N where fewer rounds ran than planned (the run's time budget ran out) is shown but not "
    "judged: its median is not the rule's median over every planned round."
)
#: An N where a round has no ratio although both steps passed.
RULE_NO_RATIO = (
    "An N where a round has no ratio (a CPU figure missing) although both steps passed is "
    "shown but not judged."
)


def _try_line(entry: dict[str, Any]) -> str:
    cpu = entry.get("cpu_ms_per_stream_s")
    return (
        f"bench:   like-for-like N={entry['n']} round {entry['round']} {entry['label']:8}: "
        f"cpu {cpu if cpu is None else round(cpu, 2)} ms/stream-s, load1 "
        f"{entry['loadavg_1m']:.2f} -> "
        f"{'PASS' if entry.get('pass') else 'FAIL ' + '; '.join(entry.get('fail_reasons', []))}"
    )


def measure(
    children: Children,
    scratch: Path,
    ns: Sequence[int],
    config: StepConfig,
    rounds: int,
    *,
    keep_going: Callable[[], bool] | None = None,
    step: Callable[[str, int], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Walk ``ns`` upward, ``rounds`` rounds of pipecat, up and gateway at each; every try is
    kept whole (the step's figures and verdict, re-judged like any step). ``keep_going`` is
    asked before each round (a time budget); ``step(target, n)`` replaces ``run_step`` (tests)."""

    def run(target: str, n: int) -> dict[str, Any]:
        if step is not None:
            return step(target, n)
        return run_step(children, scratch, target, n, replace(config))

    tries: list[dict[str, Any]] = []
    stopped: str | None = None
    for n in ns:
        done: list[dict[str, Any]] = []

        def go_on(done: list[dict[str, Any]] = done) -> bool:
            # after a round where pipecat failed: N is not judged, and nothing above it is
            if any(t["label"] == "pipecat" and not t.get("pass") for t in done):
                return False
            return keep_going is None or keep_going()

        def arm(label: str, n: int = n) -> Callable[[float], dict[str, Any]]:
            return lambda _load: run(label, n)

        arms: list[Arm] = [(label, arm(label)) for label in LABELS]

        def show(entry: dict[str, Any], done: list[dict[str, Any]] = done) -> None:
            done.append(entry)
            print(_try_line(entry), flush=True)

        interleave(rounds, arms, keep_going=go_on, show=show)
        tries.extend(done)
        failed = [t for t in done if t["label"] == "pipecat" and not t.get("pass")]
        if failed:
            reasons = "; ".join(failed[0].get("fail_reasons") or []) or "failed"
            stopped = f"pipecat's step failed at N={n} in round {failed[0]['round']}: {reasons}"
            break
        if len(done) < rounds * len(LABELS):
            ran = len(done) // len(LABELS)
            stopped = (
                f"the run's time budget ran out at N={n} after {ran} of {rounds} rounds"
                if ran
                else f"the run's time budget ran out before N={n}"
            )
            break
    return {
        "ns_planned": list(ns),
        "rounds_planned": rounds,
        "step_config": {
            "duration_s": config.duration_s,
            "warmup_s": config.warmup_s,
            "ramp_s": config.ramp_s,
        },
        "tries": tries,
        "stopped": stopped,
    }


def _rounds_at(tries: list[dict[str, Any]], n: int) -> list[dict[str, dict[str, Any]]]:
    """The complete rounds at ``n`` (all three arms), in order, as {label: try} in the order
    the arms were measured."""
    out = []
    for i in sorted({t["round"] for t in tries if t["n"] == n}):
        got = {t["label"]: t for t in tries if t["n"] == n and t["round"] == i}
        if set(got) == set(LABELS):
            out.append(got)
    return out


def _cpu(t: dict[str, Any]) -> float | None:
    cpu = t.get("cpu_ms_per_stream_s")
    return cpu if "error" not in t and cpu else None


def _first_line(t: dict[str, Any]) -> str:
    return str(t.get("error") or "no CPU figure").splitlines()[0][:200]


def figure_rounds(per_round: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rounds an N's figure (median and range) is taken over, those with a ratio among:
    every round where our step failed in one (counted against us) or pipecat's passed in all;
    where only pipecat's failed, the rounds where it failed (the figure is then a bound)."""
    ours_failed = any(not r["pass"] for r in per_round)
    if ours_failed or all(r["pipecat_pass"] for r in per_round):
        used = per_round
    else:
        used = [r for r in per_round if not r["pipecat_pass"]]
    return [r for r in used if r["ratio"] is not None]


def short_of(row: dict[str, Any], planned: int | None) -> str | None:
    """``cut short (k of R rounds)`` for an N left before its planned rounds while pipecat's
    step passed in every round that ran (where it failed, the walk stops by rule and the N is
    a bound, not cut short); None otherwise."""
    if not row["pipecat_passed_every_round"]:
        return None
    return cut_short(row["rounds"], planned)


def no_ratio(row: dict[str, Any]) -> str | None:
    """Which rounds of an N have no ratio and whose CPU figure is missing there ("no ratio in
    rounds 1, 2 (no CPU figure from pipecat)"); None when every round has one."""
    by_whose: dict[str, list[str]] = {}
    for r in row["per_round"]:
        if r["ratio"] is None:
            whose = " or ".join(
                who
                for who, cpu in (
                    ("pipecat", r["pipecat_cpu_ms_per_stream_s"]),
                    ("Sonicwire", r["cpu_ms_per_stream_s"]),
                )
                if cpu is None
            )
            by_whose.setdefault(whose, []).append(str(r["round"]))
    parts = [
        f"round{'s' if len(rounds) > 1 else ''} {', '.join(rounds)} (no CPU figure from {whose})"
        for whose, rounds in by_whose.items()
    ]
    return f"no ratio in {'; '.join(parts)}" if parts else None


def _row(
    n: int, rounds: list[dict[str, dict[str, Any]]], phase: str, planned: int | None
) -> dict[str, Any]:
    """One deployment at one N: every round's ratio, and how the N counts (see ``RULE``)."""
    per_round = []
    for got in rounds:
        peer, ours = got["pipecat"], got[phase]
        p_cpu, o_cpu = _cpu(peer), _cpu(ours)
        per_round.append(
            {
                "round": peer["round"],
                "order": list(got),  # measurement order (``_rounds_at``)
                "pipecat_cpu_ms_per_stream_s": p_cpu,
                "cpu_ms_per_stream_s": o_cpu,
                "ratio": o_cpu / p_cpu if o_cpu is not None and p_cpu is not None else None,
                "pipecat_pass": bool(peer.get("pass")),
                "pipecat_fail_reasons": list(peer.get("fail_reasons") or []),
                "pass": bool(ours.get("pass")),
                "fail_reasons": list(ours.get("fail_reasons") or []),
                "error": _first_line(ours) if o_cpu is None else None,
                "rss_per_stream_mb": ours.get("rss_per_stream_mb"),
                "pipecat_rss_per_stream_mb": peer.get("rss_per_stream_mb"),
                "loadavg_1m": [got[x]["loadavg_1m"] for x in LABELS],
            }
        )
    peer_passed = all(r["pipecat_pass"] for r in per_round)
    ours_failed = [r["round"] for r in per_round if not r["pass"]]
    # judged: every planned round ran, pipecat's step passed and ours too in each, and each
    # has a ratio; an N cut short by the time budget, or with a round without a ratio, is
    # shown but not judged (its median is not the rule's median over the planned rounds)
    complete = cut_short(len(per_round), planned) is None
    every_ratio = all(r["ratio"] is not None for r in per_round)
    judged = peer_passed and not ours_failed and complete and every_ratio
    median = spread([r["ratio"] for r in figure_rounds(per_round)])
    cpus = spread([r["cpu_ms_per_stream_s"] for r in per_round])
    peers = spread([r["pipecat_cpu_ms_per_stream_s"] for r in per_round])
    return {
        "n": n,
        "rounds": len(per_round),
        "per_round": per_round,
        "judged": judged,
        # counted in the verdict: judged, or a failed step of ours (a miss whatever pipecat did)
        "counted": judged or bool(ours_failed),
        "pipecat_passed_every_round": peer_passed,
        "failed_rounds": ours_failed,
        "pipecat_failed_rounds": [r["round"] for r in per_round if not r["pipecat_pass"]],
        "ratio_median": median[0] if median else None,
        "ratio_min": median[1] if median else None,
        "ratio_max": median[2] if median else None,
        "cpu_median_ms_per_stream_s": cpus[0] if cpus else None,
        "pipecat_cpu_median_ms_per_stream_s": peers[0] if peers else None,
    }


def over_limit(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The judged N whose median is above ``LIMIT`` (a judged N always has a median)."""
    return [r for r in rows if r["judged"] and r["ratio_median"] > LIMIT]


def verdict(rows: list[dict[str, Any]]) -> str:
    """The <= ``LIMIT`` verdict over one deployment's rows (``RULE``)."""
    if any(r["failed_rounds"] for r in rows):
        return "missed"
    if not any(r["judged"] for r in rows):
        return "not measured"
    return "missed" if over_limit(rows) else "met"


def worst(rows: list[dict[str, Any]]) -> float | None:
    """The largest median ratio over the N the verdict counts (None: none has a figure)."""
    got = [r["ratio_median"] for r in rows if r["counted"] and r["ratio_median"] is not None]
    return max(got) if got else None


def pipecat_by_n(result: dict[str, Any] | None) -> list[dict[str, Any]]:
    """pipecat's figure per N of the walk, as one step-like row each: the median CPU over its
    tries there, passed when every try passed (the first failure's reasons otherwise). Used
    where a report compares pipecat with a step measured in another phase."""
    tries = [t for t in (result or {}).get("tries", []) if t["label"] == "pipecat"]
    out = []
    for n in sorted({t["n"] for t in tries}):
        at = [t for t in tries if t["n"] == n]
        cpu = spread([_cpu(t) for t in at])
        rss = spread([t.get("rss_per_stream_mb") for t in at if "error" not in t])
        failed = [t for t in at if not t.get("pass")]
        row: dict[str, Any] = {
            "n": n,
            "tries": len(at),
            "pass": not failed,
            "fail_reasons": list(failed[0].get("fail_reasons") or []) if failed else [],
            "rss_per_stream_mb": rss[0] if rss else None,
        }
        if cpu is not None:
            row["cpu_ms_per_stream_s"] = cpu[0]
        out.append(row)
    return out


def summarise_like_for_like(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """Per deployment, one row per N of the walk, its verdict and worst counted median; and
    pipecat's largest N passing in every round. None when the phase did not run at all."""
    if result is None:
        return None
    tries = result.get("tries") or []
    ns = sorted({t["n"] for t in tries})
    out: dict[str, Any] = {
        "rounds_planned": result.get("rounds_planned"),
        "ns": ns,
        "stopped": result.get("stopped"),
        "error": result.get("error"),
    }
    for phase in DEPLOYMENTS:
        planned = result.get("rounds_planned")
        rows = [_row(n, rounds, phase, planned) for n in ns if (rounds := _rounds_at(tries, n))]
        out[phase] = {"rows": rows, "verdict": verdict(rows), "worst_ratio": worst(rows)}
    passed = [p["n"] for p in pipecat_by_n(result) if p["pass"]]
    out["pipecat_max_streams"] = max(passed) if passed else 0
    return out
