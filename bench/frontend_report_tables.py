"""The measurement sections of docs/FRONTEND.md: each renders one part of
bench/results/frontend.json as a table with a paragraph on how it was measured.

`bench/frontend_report.py` puts them together with the verdicts (the summary against the
targets, where they are missed and why) and the design notes.
"""

from __future__ import annotations

from typing import Any

from bench.markdown import number, table

__all__ = [
    "barge_in_section",
    "barge_reaction",
    "cpu_section",
    "double_talk_section",
    "echo_only_section",
    "erle_section",
    "fmt",
    "setup_section",
    "skew_section",
    "vad_accuracy_section",
]


def fmt(v: Any, nd: int = 1) -> str:
    """A number for the tables, "never" where the measurement never got there (None)."""
    return number(v, nd, missing="never")


def barge_reaction(x: dict[str, Any]) -> dict[str, Any]:
    """The barge-in reaction: onset -> Interruption when measured, else -> SpeechStarted."""
    b: dict[str, Any] = x.get("barge_in_interruption_ms") or x["barge_in_ms"]
    return b


def setup_section(r: dict[str, Any]) -> list[str]:
    """How the clips were made and what the figures mean."""
    meta = r["meta"]
    out: list[str] = []
    out.append("## Set-up\n")
    out.append(
        f"* Far end (assistant): {meta['far_end_speech']}; near end (user): "
        f"{meta['near_end_speech']}.\n"
        f"* Echo path: pyroomacoustics shoebox room (5 x 4 x 3 m, RT60 {meta['rt60_s']} s, "
        "loudspeaker-microphone 15-40 cm, a different seeded room per case), bulk delay "
        f"0-800 ms, echo at {meta['echo_dbfs']} dBFS (active speech level), pink background "
        f"noise at {meta['noise_dbfs']} dBFS, near end at {meta['near_dbfs']} dBFS through its "
        f"own room response. Clips of {meta['clip_seconds']} s.\n"
        "* The simulated server releases far-end audio in 20 ms chunks "
        f"{meta['release_lead_ms']:.0f} ms ahead of real time (`push_far_end`), and the client "
        f"plays it back to back. *With PlaybackUpdates*: every {meta['report_every_ms']:.0f} ms "
        "the client reports its played-sample counter, quantised to 10 ms and missing the "
        f"{meta['device_latency_ms']:.0f} ms of device latency it cannot see "
        "(`report_playback`). *Without*: alignment comes from the delay estimator alone.\n"
        "* ERLE = 10 log10(mic energy / output energy). *Mean from 3 s*: over everything from "
        "3 s to the end of the clip (pauses included). *Time to 20 dB*: from the echo's "
        "first arrival at the microphone to the end of the first 0.5 s window (hop 0.25 s, "
        "windows with mic above -40 dBFS) whose ERLE reaches 20 dB; *settled*: after which "
        "every such window stays at 20 dB or more.\n"
        "* *Front end* = the product output (`FrontEnd()` defaults: speex AEC 200 ms tail, "
        "residual echo suppression linked to the echo state, noise suppression -30 dB). "
        "*Linear AEC* = the same front end with residual echo suppression and noise "
        "suppression off, i.e. the aligned speex filter alone. The front-end figure includes "
        "what the preprocessor removes; the linear figure is the one comparable with NLMS.\n"
        "* Baselines on the same signals: speex with the raw reference (no alignment), and a "
        "plain time-domain NLMS (3200 taps, mu 0.5, numpy/BLAS) given the *true* bulk delay "
        "(oracle alignment, same 10 ms lead).\n"
    )
    return out


def erle_section(r: dict[str, Any]) -> list[str]:
    """ERLE and time to 20 dB per bulk delay, against the baselines."""
    erle_rows = r["erle"]["rows"]
    out: list[str] = []
    out.append("## ERLE with speech as the far end\n")
    head = [
        "delay ms",
        "front end, no reports: mean dB / t20 s",
        "front end, reports",
        "linear AEC, no reports",
        "linear AEC, reports",
        "speex unaligned",
        "NLMS (oracle alignment)",
        "estimated delay ms",
    ]
    trows = []
    for row in erle_rows:

        def cell(m: dict[str, Any]) -> str:
            return f"{fmt(m['mean_db'])} / {fmt(m['t20_s'], 2)}"

        nl = row.get("nlms_aligned")
        trows.append(
            [
                str(row["delay_ms"]),
                cell(row["no_reports"]["frontend"]),
                cell(row["reports"]["frontend"]),
                cell(row["no_reports"]["linear_aec"]),
                cell(row["reports"]["linear_aec"]),
                cell(row["speex_unaligned"]),
                cell(nl) if nl else "-",
                fmt(row["no_reports"]["estimated_delay_ms"], 2),
            ]
        )
    out.append(table(head, trows) + "\n")
    out.append(
        "The estimated delay is the first strong arrival (bulk delay + 3-4 ms of sound path "
        "and pyroomacoustics' fractional-delay filter). t20 is measured from the echo's "
        "first arrival; add the bulk delay for the time from the start of the stream.\n"
    )
    return out


def skew_section(r: dict[str, Any]) -> list[str]:
    """Clock skew and a jump of the bulk delay."""
    out: list[str] = []
    out.append("## Clock skew and delay changes\n")
    srows = []
    for row in r["clock_skew"]:
        srows.append(
            [
                fmt(row["skew_ppm"], 0),
                f"{fmt(row['no_reports']['frontend']['mean_db'])} / "
                f"{fmt(row['no_reports']['frontend']['t20_settled_s'], 2)}",
                f"{fmt(row['reports']['frontend']['mean_db'])}",
                f"{fmt(row['no_reports']['linear_aec']['mean_db'])}",
            ]
        )
    out.append(
        "Loudspeaker and microphone on different clocks (the echo is the far end resampled by "
        "1 + skew, so its delay grows continuously), 400 ms bulk delay:\n"
    )
    out.append(
        table(
            [
                "skew ppm",
                "front end mean dB / settled s",
                "front end, reports",
                "linear AEC mean dB",
            ],
            srows,
        )
        + "\n"
    )
    j = r["delay_jump"]
    out.append(
        f"Delay jump: the client's buffer grows from {j['before_ms']} to {j['after_ms']} ms at "
        f"{j['at_s']} s (playback pauses, then continues). After the jump: without reports "
        f"the front end reaches 20 dB in {fmt(j['no_reports']['frontend_after']['t20_s'], 2)} s "
        f"(mean {fmt(j['no_reports']['frontend_after']['mean_db'])} dB from 2 s after), with "
        f"reports in {fmt(j['reports']['frontend_after']['t20_s'], 2)} s (mean "
        f"{fmt(j['reports']['frontend_after']['mean_db'])} dB); SpeechStarted during the "
        f"clip: {j['no_reports']['speech_started']} without reports, "
        f"{j['reports']['speech_started']} with.\n"
    )
    return out


def double_talk_section(r: dict[str, Any]) -> list[str]:
    """Double talk: how much of the user's voice survives."""
    dt = r["double_talk"]
    out: list[str] = []
    out.append("## Double talk\n")
    drows = [
        [
            str(x["delay_ms"]),
            fmt(x["mix_corr"], 3),
            fmt(x["no_reports"]["corr"], 3),
            fmt(x["reports"]["corr"], 3),
            fmt(x["no_reports"]["corr_linear_aec"], 3),
            fmt(x["no_reports"]["near_level_change_db"]),
        ]
        for x in dt
    ]
    out.append(
        "Assistant speech throughout; the user talks from 4 s for about 6 s (alsa recordings, "
        "-26 dBFS at the mic against -22 dBFS of echo). Pearson correlation between the "
        "output and the near-end speech as it reaches the microphone, over the user's "
        "segment:\n"
    )
    out.append(
        table(
            [
                "delay ms",
                "unprocessed mix",
                "front end, no reports",
                "front end, reports",
                "linear AEC",
                "level change dB (output vs mix)",
            ],
            drows,
        )
        + "\n"
    )
    return out


def echo_only_section(r: dict[str, Any]) -> list[str]:
    """False SpeechStarted while only the assistant plays."""
    erle_rows = r["erle"]["rows"]
    false_sweep = r["erle"]["speech_started_total"]
    false_hard = r["echo_only_hard"]["speech_started_total"]
    out: list[str] = []
    hard = r["echo_only_hard"]["cases"]
    out.append("## Echo-only playback: no false barge-in\n")
    out.append(
        f"SpeechStarted events while only the assistant plays: {false_sweep} over the "
        f"{2 * len(erle_rows)} sweep clips (webrtc engine), and {false_hard} over "
        f"{len(hard)} harder runs (echo at -12 dBFS with RT60 0.3 s, or -22 dBFS with RT60 "
        "0.6 s; webrtc and silero engines; with and without reports). Until the canceller "
        "has converged on a confirmed alignment the front end does not let far-end audio "
        "start speech (see *Design notes*).\n"
    )
    hrows = [
        [
            str(c["delay_ms"]),
            fmt(c["echo_dbfs"], 0),
            fmt(c["rt60"]),
            c["engine"],
            "yes" if c["reports"] else "no",
            str(c["speech_started"]),
            fmt(c["erle"]),
        ]
        for c in hard
    ]
    out.append(
        table(
            [
                "delay ms",
                "echo dBFS",
                "RT60 s",
                "engine",
                "reports",
                "SpeechStarted",
                "ERLE mean dB",
            ],
            hrows,
        )
        + "\n"
    )
    return out


def barge_in_section(r: dict[str, Any]) -> list[str]:
    """Barge-in reaction: speech onset to SpeechStarted and to Interruption."""
    meta = r["meta"]
    lat = r["vad_latency"]
    out: list[str] = []
    out.append("## Barge-in reaction: onset to SpeechStarted and to Interruption\n")
    out.append(
        "Latency from the speech onset (first 5 ms of the clean near-end within 30 dB of its "
        "peak) to the end of the mic chunk whose processing emits the event, with the "
        "defaults `start_secs` = 0.2 s and `barge_in_min_ms` = 200. *Quiet*: user alone, "
        "`FrontEnd.process()` returning SpeechStarted. *Barge-in*: user starts 3.5-4.25 s "
        "into assistant playback (bulk delay 0/400/800 ms, reports on), driven through the "
        "real `Session`: the assistant turn comes in as backend audio, the session paces it "
        "out and feeds its own echo reference, the simulated client plays it and sends "
        "PlaybackUpdates; the mic goes in as client audio in 20 ms chunks. *barge-in* is "
        "onset -> SpeechActivity(started), *-> Interruption* onset -> the Interruption the "
        "session emits. They coincide: the session interrupts in the frame where the speech "
        "has lasted the minimum from its onset, which with the minimum equal to `start_secs` "
        "is the frame carrying SpeechStarted (`tests/core/test_session.py`).\n"
    )
    lrows = []
    for engine in ("webrtc", "silero"):
        x = lat[engine]
        cases = [
            ("quiet_ms", "quiet_missed", "quiet"),
            ("barge_in_ms", "barge_in_missed", "barge-in"),
        ]
        if "barge_in_interruption_ms" in x:
            cases.append(
                ("barge_in_interruption_ms", "barge_in_missed", "barge-in -> Interruption")
            )
        for key, missed, label in cases:
            s = x[key]
            lrows.append(
                [
                    engine,
                    label,
                    str(s["n"]),
                    fmt(s["median"]),
                    fmt(s["p90"]),
                    fmt(s["max"]),
                    str(x[missed]),
                ]
            )
    out.append(
        table(["engine", "case", "n", "median ms", "p90 ms", "max ms", "missed"], lrows) + "\n"
    )
    qu = lat.get("quiet_user")
    if qu:

        def q(engine: str) -> str:
            x = qu[engine]
            b = barge_reaction(x)
            total = x["barge_in_missed"] + b["n"]
            return (
                f"{engine} median {fmt(b['median'])}, p90 {fmt(b['p90'])}, max {fmt(b['max'])} ms, "
                f"missed {x['barge_in_missed']}/{total}"
            )

        out.append(
            f"A quieter user ({qu['near_dbfs']:.0f} dBFS, "
            f"{meta['echo_dbfs'] - qu['near_dbfs']:.0f} dB under the echo) barging in, "
            f"same runs: {q('webrtc')}; {q('silero')}.\n"
        )
    out.append(
        "False SpeechStarted before the onset in the barge-in runs: "
        f"webrtc {lat['webrtc']['barge_in_false_before_onset']}, "
        f"silero {lat['silero']['barge_in_false_before_onset']}; false Interruptions: "
        f"webrtc {lat['webrtc'].get('barge_in_false_interruptions', '-')}, "
        f"silero {lat['silero'].get('barge_in_false_interruptions', '-')}.\n"
    )
    out.append(
        "Onset dating in barge-ins. The first frames of a barge-in are often quiet and "
        "unvoiced (the /s/ of 'Side ...') and the user may dip under the echo for a frame "
        "before the vowel. Two things used to push such onsets late (figures from development "
        "before the fix, not from this run: 150 ms, the slowest barge-in 370 ms): the echo "
        "gate learned its threshold from those very frames "
        "(the VAD was still QUIET), so the threshold fell from 25 to 15 dB during the onset, "
        "and the one frame it then refused ended the lenient run that dates the onset. Now "
        "the gate learns in hindsight (frames are queued and dropped if they turn out to be "
        "the start of speech) and a single refused frame inside the onset run (at most two "
        "per run) is not speech but does not re-date the onset.\n"
    )
    return out


def vad_accuracy_section(r: dict[str, Any]) -> list[str]:
    """Per-frame VAD accuracy by speech set and noise."""
    out: list[str] = []
    out.append("## VAD frame accuracy\n")
    out.append(
        "Labels: a 20 ms frame is speech when the clean speech frame is within 35 dB of the "
        "loudest frame. Audio goes through the front end (noise suppression on) and the "
        "detector's per-frame decision (confidence >= 0.7 and volume >= 0.6) is compared. "
        "Accuracy / speech recall / noise rejection:\n"
    )
    arows = []
    for set_name, conds in r["vad_accuracy"].items():
        for cond, row in conds.items():

            def acc(m: dict[str, float]) -> str:
                return (
                    f"{m['accuracy']:.3f} / {m['speech_recall']:.3f} / {m['noise_rejection']:.3f}"
                )

            arows.append(
                [
                    set_name,
                    cond,
                    acc(row["webrtc"]),
                    acc(row["silero"]),
                    acc(row["webrtcvad_raw_mode3"]),
                ]
            )
    out.append(
        table(["speech", "noise", "webrtc engine", "silero engine", "raw webrtcvad mode 3"], arows)
        + "\n"
    )
    out.append(
        "The *state* (SPEAKING/STOPPING) accuracy is in the JSON; it is lower by design: the "
        "state lags onsets by `start_secs` and holds `stop_secs` (0.5 s) after speech.\n"
    )
    return out


def cpu_section(r: dict[str, Any]) -> list[str]:
    """CPU per 20 ms frame: the whole front end against its C kernels."""
    cpu = r["cpu"]
    out: list[str] = []
    k = cpu["kernels_us"]
    out.append("## CPU per 20 ms frame\n")
    out.append(
        f"{cpu['seconds']:.0f} s stream with assistant speech, echo (300 ms), user bursts and "
        "reports, 20 ms calls; process time, best of several runs; "
        f"{cpu['frontend_realignments']} realignments replaying {cpu['frontend_replayed_frames']} "
        "frames in all are included in the whole-front-end figure; *steady* leaves them out.\n"
    )
    out.append(
        table(
            ["", "us per frame"],
            [
                ["whole FrontEnd (webrtc VAD)", fmt(cpu["frontend_us"])],
                [
                    "whole FrontEnd, steady (without realignment replays)",
                    fmt(cpu["frontend_steady_us"]),
                ],
                ["whole FrontEnd (silero VAD)", fmt(cpu["frontend_silero_us"])],
                [
                    "speex_echo_cancellation, 200 ms tail (alone)",
                    fmt(k["speex_echo_cancellation_200ms"]),
                ],
                [
                    "speex_preprocess_run with residual echo suppression (alone)",
                    fmt(k["speex_preprocess_run_with_res"]),
                ],
                ["webrtcvad is_speech (alone)", fmt(k["webrtcvad_is_speech"])],
                ["sum of kernels", fmt(k["sum"])],
                ["ratio whole / kernels", f"{cpu['ratio']}x"],
                ["ratio steady / kernels", f"{cpu['steady_ratio']}x"],
            ],
        )
        + "\n"
    )
    return out
