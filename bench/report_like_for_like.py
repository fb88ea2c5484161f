"""BENCHMARKS.md's like-for-like section from the paired rounds (``bench.paired_like_for_like``).

Runs since 2026-12-07 measure pipecat, `sonicwire up` and the gateway interleaved per round at
each N; the <= 0.5x verdict is the median of the per-round ratios (``RULE``). Every figure and
word here comes from ``summary["paired_like_for_like"]`` (computed from the phase's tries) or
the tries themselves; runs from before the phase are rendered by ``bench.report_headline`` as
they were.
"""

from __future__ import annotations

from typing import Any

from bench.markdown import number, table
from bench.paired_like_for_like import (
    DEPLOYMENTS,
    LABELS,
    RULE,
    RULE_CUT_SHORT,
    RULE_NO_RATIO,
    figure_rounds,
    no_ratio,
    over_limit,
    short_of,
)
from bench.targets import LIKE_FOR_LIKE_X, TEXT

#: The target as the prose writes it ("0.5x"), from where it is defined (``bench.targets``).
LIMIT = TEXT["like_for_like"]

__all__ = ["paired_section", "pipecat_max_line", "targets_cell", "tries_of"]

#: How the section names each deployment (the sentence under the tables starts with it).
NAMES = {
    "gateway": "two processes (the scale-out deployment: gateway and server apart)",
    "up": "one process (`sonicwire up`, what `make run` starts)",
}
SHORT = {"gateway": "two processes", "up": "one process"}


def _shown(value: float) -> str:
    """A ratio to two decimals, or three when two would round it onto the target.

    A median of 0.5018 shown as "0.50x" beside "above 0.5x" reads as a contradiction; shown as
    "0.502x" it says why the verdict is a miss.
    """
    shown = f"{value:.2f}"
    if float(shown) == LIKE_FOR_LIKE_X and value != LIKE_FOR_LIKE_X:
        shown = f"{value:.3f}"
    return shown


def _x(value: float | None) -> str:
    return "-" if value is None else f"{_shown(value)}x"


def tries_of(results: dict[str, Any], label: str) -> list[dict[str, Any]]:
    """The paired phase's tries of one arm, in the order measured."""
    phase = results.get("like_for_like")
    if not isinstance(phase, dict):
        return []
    return [t for t in phase.get("tries", []) if t["label"] == label]


def _over(row: dict[str, Any]) -> int:
    """How many rounds a row's figure is over: those with a ratio among the rounds it is
    taken from (``figure_rounds``), not the rounds of the N (a round may have no ratio)."""
    return len(figure_rounds(row["per_round"]))


def _span(row: dict[str, Any]) -> str:
    """A row's median ratio with its range over the rounds it is taken from: one figure when
    the range is one value; "no ratio" when no round has one."""
    rounds = _over(row)
    if row["ratio_median"] is None or not rounds:
        return "no ratio"
    if rounds == 1:
        return f"{_x(row['ratio_median'])} (one round)"
    lo, hi = _x(row["ratio_min"]), _x(row["ratio_max"])
    spread = lo if lo == hi else f"{lo.removesuffix('x')}-{hi}"
    return f"{_x(row['ratio_median'])} (range {spread} over {rounds} rounds)"


def _rounds(count: int) -> str:
    return f"{count} round{'' if count == 1 else 's'}"


def _why_peer_failed(row: dict[str, Any]) -> str:
    """pipecat's failed round(s) at a row's N and why (the first failure's reasons)."""
    failed = [r for r in row["per_round"] if not r["pipecat_pass"]]
    rounds = ", ".join(str(r["round"]) for r in failed)
    reasons = "; ".join(failed[0]["pipecat_fail_reasons"]) or "failed"
    return f"round{'s' if len(failed) > 1 else ''} {rounds}: {reasons}"


def _why_ours_failed(row: dict[str, Any]) -> str:
    parts = []
    for r in row["per_round"]:
        if not r["pass"]:
            why = r["error"] or "; ".join(r["fail_reasons"]) or "failed"
            parts.append(f"round {r['round']}: {why}")
    return "; ".join(parts)


def _bound(row: dict[str, Any]) -> str:
    """An N where pipecat's step failed: its ratio there, an upper bound (``<=``)."""
    return "no ratio" if row["ratio_median"] is None else f"<= {_x(row['ratio_median'])}"


def _not_judged(row: dict[str, Any], planned: int | None) -> str | None:
    """Why an N that is neither judged nor counted against us is left out, for an N where
    pipecat's step passed in every round (``short_of``, ``no_ratio``); None otherwise."""
    if row["counted"] or not row["pipecat_passed_every_round"]:
        return None
    return short_of(row, planned) or no_ratio(row)


def _cell(row: dict[str, Any] | None, planned: int | None) -> str:
    """The table's ratio cell for one deployment at one N."""
    if row is None:
        return "-"
    if row["failed_rounds"]:
        return f"**{_span(row)}**, counted: Sonicwire failed in {_why_ours_failed(row)}"
    if row["judged"]:
        return f"**{_span(row)}**"
    why = _not_judged(row, planned)
    if why is not None:  # the figure first, when there is one
        figure = "" if row["ratio_median"] is None else f"{_span(row)}; "
        return f"{figure}not judged: {why}"
    return f"{_bound(row)}; pipecat failed in {_why_peer_failed(row)}"


def _reading(medians: list[float]) -> str:
    """Which side is cheaper, by how much, over the judged medians as shown (two decimals):
    the percent is the one a reader gets from the figures beside it."""
    shown = [float(_shown(m)) for m in medians]
    lo, hi = min(shown), max(shown)
    where = "at the one N judged" if len(medians) == 1 else "at every N judged"
    # the percent the target stands for (0.5x: 50% cheaper), which a rounded percent must not
    # reach from the wrong side: 0.502x is 49.8% cheaper, not "50%"
    target_pct = 100 * (1 - LIKE_FOR_LIKE_X)

    def pct(v: float) -> str:
        whole = f"{v:.0f}"
        return f"{v:.1f}" if float(whole) == target_pct and round(v, 1) != target_pct else whole

    def span(a: float, b: float) -> str:
        x, y = pct(a), pct(b)
        return x if x == y else f"{x}-{y}"

    if hi < 1.0:
        return f"Sonicwire is {span(100 * (1 - hi), 100 * (1 - lo))}% cheaper {where}"
    if lo > 1.0:
        return f"pipecat is {span(100 * (1 - 1 / lo), 100 * (1 - 1 / hi))}% cheaper {where}"
    return "neither is cheaper at every N judged"


def _sentence(p: dict[str, Any], phase: str) -> str:
    """The verdict sentence for one deployment, every clause from its rows."""
    d = p[phase]
    rows, status = d["rows"], d["verdict"]
    planned = p.get("rounds_planned")
    name = NAMES[phase][0].upper() + NAMES[phase][1:]
    if not rows:
        return f"- {name}: **not measured** ({_why_none(p)})."
    judged = [r for r in rows if r["judged"]]
    failed = [r for r in rows if r["failed_rounds"]]
    clauses = []
    if judged:
        figures = "; ".join(f"{_span(r)} at N={r['n']}" for r in judged)
        clauses.append(
            f"its CPU per stream-second over pipecat's in the same round, median per N: "
            f"{figures}: {_reading([r['ratio_median'] for r in judged])}"
        )
    for r in failed:
        counted = "" if r["ratio_median"] is None else f", median {_x(r['ratio_median'])}"
        clauses.append(
            f"at N={r['n']} Sonicwire's step failed ({_why_ours_failed(r)}){counted}, "
            "counted against it"
        )
    if status == "met":
        verdict = f"within the <= {LIMIT} target at every N judged"
    elif status == "not measured":
        bounds_only = all(not r["pipecat_passed_every_round"] for r in rows)
        verdict = "**not measured**: " + (
            "no N where pipecat's step passed in every round" if bounds_only else "no N judged"
        )
    elif failed:
        verdict = f"**the <= {LIMIT} target is missed**: Sonicwire's step failed at N=" + ", ".join(
            str(r["n"]) for r in failed
        )
    else:
        over = ", ".join(str(r["n"]) for r in over_limit(rows))
        verdict = f"**the <= {LIMIT} target is missed**: median above {LIMIT} at N={over}"
    text = f"- {name}: " + "; ".join([*clauses, verdict])
    for r in rows:
        if r["counted"]:
            continue
        why = _not_judged(r, planned)
        if why is not None:
            figure = "" if r["ratio_median"] is None else f": {_span(r)},"
            text += f". At N={r['n']}{figure} not judged: {why}"
        elif r["ratio_median"] is None:
            text += (
                f". At N={r['n']} pipecat's step failed in {_why_peer_failed(r)}, with no ratio "
                "there: not judged"
            )
        else:
            text += (
                f". At N={r['n']} pipecat's step failed in {_why_peer_failed(r)}. Its "
                f"{_peer_failed_cpu(r)} ms there is a lower bound on its cost, so the ratio is "
                f"an upper bound, {_bound(r)}, not judged"
            )
    return text + "."


def _peer_failed_cpu(row: dict[str, Any]) -> str:
    """pipecat's CPU in the rounds the bound is taken from (``figure_rounds``): one figure, or
    the range when there are several."""
    got = [r["pipecat_cpu_ms_per_stream_s"] for r in figure_rounds(row["per_round"])]
    lo, hi = number(min(got), 2), number(max(got), 2)
    return lo if lo == hi else f"{lo}-{hi}"


def _why_none(results_or_p: dict[str, Any]) -> str:
    error = results_or_p.get("error")
    if error:
        return str(error).splitlines()[0][:300]
    return results_or_p.get("stopped") or "no complete round"


def _peer_bound(p: dict[str, Any]) -> str:
    """Said after pipecat's largest N when the walk ended before pipecat's step failed (the
    time budget, or the top of the ladder): then N is only as far as the walk went."""
    failed = any(r["pipecat_failed_rounds"] for phase in DEPLOYMENTS for r in p[phase]["rows"])
    return "" if failed else ", a lower bound (its step failed at no N of the walk)"


def _stopped(p: dict[str, Any], planned: list[int]) -> str:
    """Where the walk ended and why, and pipecat's largest N from it."""
    ns = p["ns"]
    text = f"The walk measured N={', '.join(map(str, ns))} of {', '.join(map(str, planned))}"
    if p.get("stopped"):
        text += f" and stopped: {p['stopped']}."
    else:  # "all of them" only when they are (a run may record no reason)
        text += " (all of them)." if set(planned) <= set(ns) else "."
    best = p["pipecat_max_streams"]
    text += (
        f" pipecat's largest N, from the same tries: **{best}**{_peer_bound(p)} (the largest N "
        "where its step passed in every round; judged without a latency criterion: no "
        "per-frame probe inside pipecat)."
        if best
        else " pipecat's step passed in every round at no N: its largest N is not measured."
    )
    return text


def paired_section(results: dict[str, Any], intro: str, not_grpc: str) -> str:
    """The section: what was measured, the rule, the per-N table, every round, the verdicts.
    ``intro``: the stacks compared (``bench.report_headline``)."""
    p = results.get("summary", {}).get("paired_like_for_like")
    got = results.get("like_for_like")
    phase: dict[str, Any] = got if isinstance(got, dict) else {}
    if not p:
        why = results.get("skipped", {}).get("like_for_like") or _why_none(phase)
        return intro + f"\n**Not measured** in this run: {why}.\n"
    cfg = phase.get("step_config") or {}
    planned = list(phase.get("ns_planned") or p["ns"])
    rounds = p["rounds_planned"]
    method = (
        f"\nMeasured in paired rounds (`bench/paired_like_for_like.py`): at each N of "
        f"{', '.join(map(str, planned))}, upward, {rounds} round{'' if rounds == 1 else 's'} of "
        f"a pipecat step, a one-process step and a two-process step back to back "
        f"({number(cfg.get('duration_s'), 0)} s windows), the order reversed every other round "
        "so that a drift of the machine's speed falls on every arm alike (steps of phases "
        "minutes apart are not comparable on this VM: docs/server_cpu.md). "
        + " ".join([RULE, *_rule_clauses(p)])
        + "\n"
    )
    if p.get("error") or not p["ns"]:
        return intro + method + f"\n**Not measured** in this run: {_why_none(p)}.\n"
    by_n: dict[int, dict[str, dict[str, Any]]] = {}
    for dep in DEPLOYMENTS:
        for r in p[dep]["rows"]:
            by_n.setdefault(r["n"], {})[dep] = r
    rows = []
    for n in sorted(by_n):
        one, two = by_n[n].get("up"), by_n[n].get("gateway")
        any_row = one or two
        assert any_row is not None
        rows.append(
            [
                n,
                any_row["rounds"],
                number(any_row["pipecat_cpu_median_ms_per_stream_s"], 2),
                number(one and one["cpu_median_ms_per_stream_s"], 2),
                _cell(one, rounds),
                number(two and two["cpu_median_ms_per_stream_s"], 2),
                _cell(two, rounds),
            ]
        )
    body = table(
        [
            "N",
            "rounds",
            "pipecat ms CPU/stream-s (median)",
            "one process (`sonicwire up`) ms (median)",
            "ratio, one process: median of the rounds",
            "two processes ms (median)",
            "ratio, two processes: median of the rounds",
        ],
        rows,
    )
    sentences = "\n".join(_sentence(p, dep) for dep in ("gateway", "up"))
    return (
        intro
        + method
        + "\n"
        + body
        + "\n\n"
        + sentences
        + "\n\n"
        + _stopped(p, planned)
        + "\n\nEvery round (ms CPU per stream-second; the ratios are within the round):\n\n"
        + _rounds_table(p)
        + f"\n\n{not_grpc}\n"
    )


def _rule_clauses(p: dict[str, Any]) -> list[str]:
    """The rule's clauses for an N left out other than by pipecat's failure, stated when the
    run has such an N (``RULE_CUT_SHORT``, ``RULE_NO_RATIO``)."""
    rows = [r for phase in DEPLOYMENTS for r in p[phase]["rows"]]
    planned = p.get("rounds_planned")
    whys = [r for r in rows if _not_judged(r, planned) is not None]
    out = []
    if any(short_of(r, planned) for r in whys):
        out.append(RULE_CUT_SHORT)
    if any(not short_of(r, planned) and no_ratio(r) for r in whys):
        out.append(RULE_NO_RATIO)
    return out


def _rounds_table(p: dict[str, Any]) -> str:
    one = {(r["n"], x["round"]): x for r in p["up"]["rows"] for x in r["per_round"]}
    two = {(r["n"], x["round"]): x for r in p["gateway"]["rows"] for x in r["per_round"]}
    rows = []
    for key in sorted(set(one) | set(two)):
        u, g = one.get(key), two.get(key)
        any_r = u or g
        assert any_r is not None

        def verdict(r: dict[str, Any] | None) -> str:
            return "-" if r is None else ("pass" if r["pass"] else "FAIL")

        rows.append(
            [
                key[0],
                key[1],
                " > ".join(any_r["order"]),
                number(any_r["pipecat_cpu_ms_per_stream_s"], 2),
                number(u and u["cpu_ms_per_stream_s"], 2),
                _x(u and u["ratio"]),
                number(g and g["cpu_ms_per_stream_s"], 2),
                _x(g and g["ratio"]),
                f"{'pass' if any_r['pipecat_pass'] else 'FAIL'} / {verdict(u)} / {verdict(g)}",
                ", ".join(f"{x:.2f}" for x in any_r["loadavg_1m"]),
            ]
        )
    return table(
        [
            "N",
            "round",
            "order",
            "pipecat",
            "one process",
            "ratio",
            "two processes",
            "ratio",
            "step (pipecat / one / two)",
            f"load1 ({', '.join(LABELS)})",
        ],
        rows,
    )


def targets_cell(p: dict[str, Any] | None, phase: str, why: str) -> str:
    """The targets table's cell for one deployment: the worst judged median and its N."""
    label = SHORT[phase] + ": "
    if not p or not p[phase]["rows"]:
        return label + f"paired rounds **not measured** ({why})"
    rows = p[phase]["rows"]
    planned = p.get("rounds_planned")
    counted = [r for r in rows if r["counted"] and r["ratio_median"] is not None]
    text = label + (
        f"worst median ratio **{_x(p[phase]['worst_ratio'])}** over paired rounds ("
        + "; ".join(f"N={r['n']}: {_x(r['ratio_median'])}, {_rounds(_over(r))}" for r in counted)
        + ")"
        if counted
        else "no N judged"
    )
    failed = [str(r["n"]) for r in rows if r["failed_rounds"]]
    if failed:
        text += f"; Sonicwire's step failed at N={', '.join(failed)}"
    left_out = [r for r in rows if not r["counted"]]
    if left_out:
        text += "; not judged: " + ", ".join(
            f"N={r['n']} ({_left_out(r, planned)})" for r in left_out
        )
    return text


def _left_out(row: dict[str, Any], planned: int | None) -> str:
    """Why an N is not judged and its figure, shortly (the targets table's cell)."""
    reason = _not_judged(row, planned)
    if reason is None:
        return f"pipecat failed, {_bound(row)}"
    return reason if row["ratio_median"] is None else f"{reason}, {_x(row['ratio_median'])}"


def pipecat_max_line(p: dict[str, Any]) -> str:
    """The headline's pipecat capacity bullet, from the paired tries."""
    best = p["pipecat_max_streams"]
    stop = f"; the walk stopped: {p['stopped']}" if p.get("stopped") else ""
    if not best:
        return (
            "- pipecat's largest N in one process: not measured (no N where its step passed in "
            f"every paired round{stop})."
        )
    return (
        f"- pipecat's largest N in one process, passing in every paired round: {best}"
        f"{_peer_bound(p)} (judged without a latency criterion: no per-frame probe inside "
        f"pipecat){stop}."
    )
