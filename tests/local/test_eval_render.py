"""bench/local_eval renders the doc's numbers from the results file (no evaluation run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import local_eval


def _report() -> dict[str, object]:
    report = json.loads(local_eval.RESULTS.read_text())
    assert isinstance(report, dict)
    return report


def test_the_placeholder_is_replaced_and_rerendering_is_stable(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("# Doc\n\n## Numbers\n\nRESULTS_PLACEHOLDER\n\n## Gaps\n\n- some\n")
    report = _report()
    local_eval.render_doc(report, doc)
    once = doc.read_text()
    assert "RESULTS_PLACEHOLDER" not in once
    assert once.startswith("# Doc\n\n## Numbers\n\n<!-- local_eval:begin")
    assert once.endswith("<!-- local_eval:end -->\n\n## Gaps\n\n- some\n")
    latency = report["backend"]["latency_ms"]  # type: ignore[index]
    e2e = latency["end_to_end"]
    assert f"| {e2e['p50']:.0f} | {e2e['p95']:.0f} |" in once
    assert f"<= {latency['target_end_to_end']} / <= {latency['target_end_to_end_p95']}" in once
    assert str(report["generated"]) in once
    local_eval.render_doc(report, doc)
    assert doc.read_text() == once


def test_render_only_updates_the_doc_between_the_markers(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("a\n<!-- local_eval:begin old -->\nstale 707 ms\n<!-- local_eval:end -->\nb\n")
    results = tmp_path / "local.json"
    report = _report()
    report["generated"] = "2000-01-01T00:00:00+00:00"
    results.write_text(json.dumps(report))
    local_eval.main(["--render-only", "--out", str(results), "--doc", str(doc)])
    text = doc.read_text()
    assert "stale" not in text and "2000-01-01T00:00:00+00:00" in text
    assert text.startswith("a\n<!-- local_eval:begin") and text.endswith("-->\nb\n")


def test_a_doc_without_a_place_for_the_numbers_is_an_error(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("no numbers here\n")
    with pytest.raises(SystemExit):
        local_eval.render_doc(_report(), doc)


def test_a_target_missed_by_a_fraction_is_missed() -> None:
    from bench.local_report import verdict

    assert verdict(500.9, 500, higher_is_better=False) == "missed"
    assert verdict(500.0, 500, higher_is_better=False) == "met"
    assert verdict(0.899, 0.90, higher_is_better=True) == "missed"
    assert verdict(None, 0.90, higher_is_better=True) == "missed"


def test_every_headline_target_has_a_verdict_in_the_doc(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("RESULTS_PLACEHOLDER\n")
    report = _report()
    local_eval.render_doc(report, doc)
    text = doc.read_text()
    rows = [line for line in text.splitlines() if line.endswith(("| met |", "| missed |"))]
    intents = report["backend"]["latency_ms"]["end_to_end_by_intent"]  # type: ignore[index]
    assert len(rows) == 3 * 3 + len(intents)  # 3 subsets x 3 metrics, latency per intent


def test_a_non_default_stop_wait_is_labelled_so(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("RESULTS_PLACEHOLDER\n")
    report = _report()
    report["backend"]["latency_ms"]["vad_stop_secs"] = 0.3  # type: ignore[index]
    local_eval.render_doc(report, doc)
    text = doc.read_text()
    assert "at non-default VAD settings (stop marker 300 ms after the end of speech)" in text
    report["backend"]["latency_ms"]["vad_stop_secs"] = 0.5  # type: ignore[index]
    local_eval.render_doc(report, doc)
    assert "at the default VAD settings (stop marker 500 ms" in doc.read_text()


def test_the_front_end_uses_the_stop_wait_asked_for() -> None:
    """--stop-secs reaches the real VAD: its stop marker comes that long after the speech."""
    import numpy as np

    from sonicwire.server.core import events as ev

    rng = np.random.default_rng(1)
    speech = (rng.normal(0, 6000, 16_000) * np.sin(np.arange(16_000) / 30)).astype(np.int16)
    gaps = {}
    for stop_secs in (0.3, 0.5):
        commands, end_index, stop_index, _ = local_eval.front_end_commands(
            speech.tobytes(), seed=0, stop_secs=stop_secs
        )
        assert 0 <= end_index < stop_index
        frames = sum(isinstance(c, ev.SendAudio) for c in commands[end_index:stop_index])
        gaps[stop_secs] = frames * 20  # ms of 20 ms frames between the end and the marker
    assert gaps[0.5] - gaps[0.3] == pytest.approx(200, abs=40)


def test_p95_is_judged_against_its_own_target() -> None:
    from bench.local_report import _target_verdict

    line = _target_verdict({"p50": 400.0, "p95": 600.0}, 500, 650)
    assert "missed" not in line and line.count(": met") == 2
    assert "**missed**" in _target_verdict({"p50": 400.0, "p95": 651.0}, 500, 650)


@pytest.mark.parametrize(
    "argv",
    [
        ["--in-training-only"],  # a subset never overwrites the full run's results
        ["--held-out-only"],
        ["--held-out-only", "--in-training-only", "--out", "/tmp/never-written.json"],
    ],
)
def test_a_subset_run_needs_its_own_results_file(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        local_eval.main(argv)
    assert stopped.value.code == 2  # argparse's usage error, before any evaluation


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        # other voices only for a subset written to its own file
        (["--voices", "espeak:en-us+m2"], "another --out"),
        (["--voices", "espeak:en-us+m2", "--held-out-only"], "another --out"),
        # a voice listened to while tuning (an evaluation or a development voice) is no check
        (["--voices", "flite:slt", "--held-out-only", "--out", "/tmp/n.json"], "flite:slt"),
        (["--voices", "espeak:en-us+m2,espeak:en-029", "--held-out-only", "--out", "/tmp/n.json"],
         "espeak:en-029"),
        # an ablation never overwrites the full run's results (nor renders the doc)
        (["--off", "first_clause"], "another --out"),
        # only the engine's on-by-default switches can be turned off
        (["--off", "first_clause,reply_cache", "--out", "/tmp/n.json"],
         "not an engine option that can be turned off: ['reply_cache']"),
    ],
)  # fmt: skip
def test_other_voices_and_ablations_are_refused_unless_their_own_results_and_real(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        local_eval.main(argv)
    assert stopped.value.code == 2
    assert says in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        # espeak-ng reads an unknown variant as the voice without it: here a tuning voice
        (["--voices", "espeak:en-us+m9"], "espeak:en-us+m9 speaks exactly as espeak:en-us "),
        # and an unknown voice as another: here an evaluation voice
        (["--voices", "espeak:en-x-typo"], "espeak:en-x-typo speaks exactly as espeak:en-gb "),
        # two names, one voice: it would count twice
        (["--voices", "espeak:en-gb-x-gbcwmd,espeak:en-gb-x-gbcwmd+m9"],
         "espeak:en-gb-x-gbcwmd+m9 speaks exactly as espeak:en-gb-x-gbcwmd "),
        # --quick keeps only two evaluation voices: none of these
        (["--voices", "espeak:en-gb-x-gbcwmd", "--quick"], "no --quick"),
        (["--voices", " , "], "no voice"),
        # flite reads a name it does not know as kal, with no error: a typo would measure kal
        (["--voices", "flite:kall"], "not a flite voice: flite:kall "),
        (["--voices", "espeak:en-gb-x-gbcwmd,flite:"], "not a flite voice: flite: "),
    ],
)  # fmt: skip
def test_a_voice_name_that_is_no_voice_of_its_own_is_refused(
    argv: list[str],
    says: str,
    say: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the evaluation started")

    monkeypatch.setattr(local_eval, "build_samples", never)
    with pytest.raises(SystemExit) as stopped:
        local_eval.main([*argv, "--held-out-only", "--out", str(tmp_path / "fresh.json")])
    assert stopped.value.code == 2
    assert says in capsys.readouterr().err


@pytest.mark.parametrize(
    ("voices", "runs_on"),
    [
        # a voice of its own (none of the evaluation's nor of development), named twice
        ("espeak:en-gb-x-gbcwmd, espeak:en-gb-x-gbcwmd", ["espeak:en-gb-x-gbcwmd"]),
        # a known variant of a tuning voice is another voice
        ("espeak:en-us+m4", ["espeak:en-us+m4"]),
        # a flite voice (`flite -lv`) that is none of the evaluation's nor of development
        ("flite:kal", ["flite:kal"]),
    ],
)
def test_a_voice_of_its_own_is_evaluated(
    voices: str, runs_on: list[str], say: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[list[str]] = []

    class Started(Exception):
        pass

    def record(voices: list[str], **kwargs: object) -> None:
        started.append(list(voices))
        raise Started

    monkeypatch.setattr(local_eval, "build_samples", record)
    with pytest.raises(Started):
        local_eval.main(["--voices", voices, "--in-training-only", "--out", str(tmp_path / "f")])
    assert started == [runs_on]


def test_every_option_an_ablation_turns_off_is_an_engine_switch_on_by_default() -> None:
    import inspect

    from sonicwire.server.backends.local.engine import LocalBackend

    params = inspect.signature(LocalBackend).parameters
    for name in local_eval.ABLATABLE:
        assert params[name].default is True, name
