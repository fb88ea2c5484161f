"""Evaluate the local engine: word error rate, intent accuracy and turn latency.

    .venv/bin/python -m bench.local_eval                # full set (about 10 minutes)
    .venv/bin/python -m bench.local_eval --quick        # two voices, for a smoke run
    .venv/bin/python -m bench.local_eval --render-only  # re-render the doc from the JSON

The spoken commands (`COMMANDS`: several phrasings per intent, some of them not in the
recogniser's training sentences, plus requests the assistant cannot serve) are synthesised
with voices other than the engine's own piper voice: espeak-ng variants, and flite's voices
when Debian's ``flite`` is installed. Debian's ``alsa-utils`` recordings of a real speaker
("Front Left", ...) add real out-of-domain speech when present.

Two passes:

1. Recogniser alone, on each command as a microphone would give it (-60 dBFS noise floor):
   WER and intent accuracy with the command ("domain") language model and with pocketsphinx's
   general en-US model, and recognition time.
2. The whole backend, as the server drives it: the mic stream goes through the real front end
   (`sonicwire.server.dsp.pipeline.FrontEnd`, default settings: echo canceller, noise
   suppression, webrtc VAD with stop_secs 0.5 s) into a `LocalSession`; tool requests are
   answered by the real built-in tools. Audio is fed in real time from 300 ms before the end
   of speech, so work the engine does during the VAD's stop wait counts as it would live.
   Per turn: the transcript (WER, intent: the tool and arguments requested, or the reply
   intent), engine latency (stop marker -> first assistant audio) and end-to-end latency (end
   of the user's speech -> first assistant audio = the VAD's stop wait + engine latency).

Writes ``bench/results/local.json`` and renders its numbers into docs/LOCAL_ENGINE.md, between
the ``<!-- local_eval:begin -->`` and ``<!-- local_eval:end -->`` markers (``--render-only``
does only that, from the JSON already there): the doc's numbers are never typed by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import json
import os
import platform
import statistics
import tempfile
import time
import wave
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.local_report import DOC, render_doc
from sonicwire.server.backends.base import BackendOptions
from sonicwire.server.backends.local.dialogue import Intent, understand
from sonicwire.server.backends.local.engine import LocalBackend
from sonicwire.server.backends.local.harness import (
    ESPEAK_TEST_VOICES,
    MicStream,
    ToolBox,
    TurnResult,
    speak,
    test_voices,
)
from sonicwire.server.backends.local.phrases import training_sentences
from sonicwire.server.backends.local.stt import SpeechRecognizer
from sonicwire.server.core import events as ev

RESULTS = Path(__file__).parent / "results" / "local.json"
TARGET_MS = 500
STOP_SECS = 0.5
FRAME_BYTES = 640
PACE_FROM_MS = 300  # real-time feeding starts this long before the end of speech


@dataclass(frozen=True)
class Command:
    """A test utterance, what it must be understood as, and its tool arguments if any."""

    text: str
    intent: Intent
    arguments: dict[str, str] | None = None  # the tool call it must produce


def _order(text: str, order_id: str) -> Command:
    return Command(text, Intent.ORDER, {"order_id": order_id})


COMMANDS: tuple[Command, ...] = (
    Command("what time is it", Intent.TIME, {}),
    Command("what's the time", Intent.TIME, {}),
    Command("tell me the time please", Intent.TIME, {}),
    Command("could you tell me the time", Intent.TIME, {}),
    Command("what time is it in tokyo", Intent.TIME, {"timezone": "Asia/Tokyo"}),
    Command("what's the time in london", Intent.TIME, {"timezone": "Europe/London"}),
    Command("what's the date today", Intent.DATE, {}),
    Command("what day is it", Intent.DATE, {}),
    Command("which day of the week is it", Intent.DATE, {}),
    _order("where is my order one zero zero one", "1001"),
    _order("track order ten oh two", "1002"),
    _order("what's the status of order one thousand and three", "1003"),
    _order("can you check on my order one zero zero four", "1004"),
    _order("has my order ten oh five shipped", "1005"),
    _order("where is my package one zero zero two", "1002"),
    _order("please find order one oh oh three for me", "1003"),
    Command("where is my order", Intent.ORDER),  # the assistant asks for the number
    Command("hello", Intent.GREETING),
    Command("good morning", Intent.GREETING),
    Command("what can you do", Intent.HELP),
    Command("thank you", Intent.THANKS),
    Command("play some music", Intent.UNKNOWN),
    Command("what's the weather like tomorrow", Intent.UNKNOWN),
    Command("turn on the kitchen lights", Intent.UNKNOWN),
    Command("set an alarm for seven", Intent.UNKNOWN),
)


# --- scoring ----------------------------------------------------------------------------------


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(substitutions + deletions + insertions, reference words)."""
    ref, hyp = reference.split(), hypothesis.split()
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[-1], len(ref)


def understood(command: Command, transcript: str) -> bool:
    """Whether ``transcript`` leads to the right intent and tool arguments."""
    meaning = understand(transcript)
    if meaning.intent is not command.intent:
        return False
    if command.intent is Intent.ORDER:
        return meaning.order_id == (command.arguments or {}).get("order_id")
    if command.intent is Intent.TIME:
        return (meaning.timezone or None) == (command.arguments or {}).get("timezone")
    return True


def turn_correct(command: Command, turn: TurnResult) -> bool:
    """Whether the backend did the right thing: the right tool call, or the right reply."""
    calls = [(c.name, json.loads(c.arguments_json)) for c in turn.tool_calls]
    if command.arguments is not None:
        tool = "track_order" if command.intent is Intent.ORDER else "get_date_time"
        return calls == [(tool, command.arguments)]
    if calls:
        return False
    first = turn.assistant_text[0] if turn.assistant_text else ""
    expected = {
        Intent.ORDER: "Sure. What's your order number?",
        Intent.GREETING: "Hello! How can I help?",
        Intent.HELP: "I can tell you",
        Intent.THANKS: "You're welcome!",
        Intent.UNKNOWN: "Sorry, I didn't catch that.",
    }[command.intent]
    return first.startswith(expected)


def percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]

    return {
        "p50": round(pick(0.5), 1),
        "p95": round(pick(0.95), 1),
        "mean": round(statistics.fmean(ordered), 1),
        "max": round(ordered[-1], 1),
        "n": len(ordered),
    }


# --- speech -------------------------------------------------------------------------------------


def real_recordings() -> list[tuple[str, bytes]]:
    """alsa-utils' recordings of a real speaker, 16 kHz: out-of-domain speech."""
    import soxr

    out = []
    for path in sorted(glob.glob("/usr/share/sounds/alsa/*.wav")):
        name = Path(path).stem
        if name == "Noise":
            continue
        with wave.open(path) as wav:
            rate, channels = wav.getframerate(), wav.getnchannels()
            samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
        mono = samples.reshape(-1, channels).mean(axis=1)
        pcm = np.asarray(soxr.resample(mono, rate, 16_000), dtype=np.int16)
        loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > 300)
        if loud.size:
            pcm = pcm[loud[0] : loud[-1] + 1]
        out.append((name.replace("_", " ").lower(), pcm.tobytes()))
    return out


@dataclass
class Sample:
    voice: str
    command: Command
    speech: bytes
    in_training: bool
    real: bool = False


def build_samples(voices: Sequence[str], *, with_recordings: bool) -> list[Sample]:
    trained = set(training_sentences())
    samples = [
        Sample(voice, command, speak(command.text, voice), command.text in trained)
        for voice in voices
        for command in COMMANDS
    ]
    if with_recordings:
        for name, pcm in real_recordings():
            samples.append(
                Sample("alsa:recording", Command(name, Intent.UNKNOWN), pcm, False, real=True)
            )
    return samples


# --- pass 1: the recogniser alone ------------------------------------------------------------


def recognizer_pass(samples: Sequence[Sample]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for model in ("domain", "general"):
        recognizer = SpeechRecognizer.load(model)
        rows = []
        for index, sample in enumerate(samples):
            stream = MicStream(seed=index)
            mic = stream.utterance(sample.speech)
            audio = b"".join(c.pcm for c in mic.commands if isinstance(c, ev.SendAudio))
            # The utterance as the collector cuts it: speech plus 300 ms pads.
            pad = 16 * 300
            lo, hi = (mic.speech_start - pad) * 2, (mic.speech_end + pad) * 2
            started = time.perf_counter()
            heard = recognizer.recognize(audio[lo:hi])
            elapsed = (time.perf_counter() - started) * 1000
            rows.append((sample, heard.text, elapsed))
        recognizer.close()
        out[model] = summarise(rows)
        out[model]["recognition_ms"] = percentiles([r[2] for r in rows])
    return out


def summarise(rows: Sequence[tuple[Sample, str, float]]) -> dict[str, Any]:
    def score(subset: Sequence[tuple[Sample, str, float]]) -> dict[str, Any]:
        scored = [r for r in subset if not r[0].real]  # recordings have no reference text
        errors = sum(word_errors(r[0].command.text, r[1])[0] for r in scored)
        words = sum(word_errors(r[0].command.text, r[1])[1] for r in scored)
        right = sum(understood(r[0].command, r[1]) for r in subset)
        return {
            "wer": round(errors / words, 3) if words else None,
            "intent_accuracy": round(right / len(subset), 3) if subset else None,
            "utterances": len(subset),
        }

    by_voice = {}
    for voice in dict.fromkeys(r[0].voice for r in rows):
        by_voice[voice] = score([r for r in rows if r[0].voice == voice])
    return {
        "all": score([r for r in rows if not r[0].real]),
        "in_training_sentences": score([r for r in rows if r[0].in_training]),
        "held_out_phrasings": score([r for r in rows if not r[0].in_training and not r[0].real]),
        "out_of_domain": score(
            [r for r in rows if r[0].command.intent is Intent.UNKNOWN and not r[0].real]
        ),
        "real_recordings_rejected": score([r for r in rows if r[0].real]),
        "by_voice": by_voice,
    }


# --- pass 2: the backend through the real front end -------------------------------------------


def front_end_commands(speech: bytes, seed: int) -> tuple[list[ev.BackendCommand], int, int]:
    """The mic stream through the real front end, as the session core sends it on.

    Returns (commands, index of the frame that holds the end of speech, index of the stop
    marker); -1 when the VAD found no end.
    """
    from sonicwire.server.dsp.pipeline import FrontEnd, FrontEndSettings
    from sonicwire.server.dsp.vad import SpeechStarted, SpeechStopped

    rng = np.random.default_rng(seed)
    lead, tail = 16 * 500, int(16_000 * (STOP_SECS + 0.6))
    voice = np.frombuffer(speech, dtype=np.int16).astype(np.float64)
    signal = rng.normal(0, 32768 * 10 ** (-60 / 20), lead + voice.size + tail)
    signal[lead : lead + voice.size] += voice
    signal = np.concatenate([signal, np.zeros(-signal.size % 320)])
    pcm = np.clip(np.rint(signal), -32768, 32767).astype(np.int16).tobytes()
    speech_end = lead + voice.size
    commands: list[ev.BackendCommand] = []
    end_index = stop_index = -1
    with FrontEnd(FrontEndSettings()) as front_end:
        for offset in range(0, len(pcm), FRAME_BYTES):
            for frame in front_end.process(pcm[offset : offset + FRAME_BYTES]):
                commands.append(ev.SendAudio(frame.pcm))
                if end_index < 0 and frame.offset + 320 > speech_end:
                    end_index = len(commands) - 1
                for event in frame.events:
                    match event:
                        case SpeechStarted(at):
                            commands.append(ev.UserSpeechStarted(at))
                        case SpeechStopped(at):
                            if stop_index < 0:
                                stop_index = len(commands)
                            commands.append(ev.UserSpeechStopped(at))
    return commands, end_index, stop_index


async def paced_turn(
    backend: LocalBackend, toolbox: ToolBox, commands: list[ev.BackendCommand], end_index: int,
    stop_index: int,
) -> tuple[TurnResult, float | None, float | None]:  # fmt: skip
    """Run one turn; returns (result, engine ms, end-to-end ms)."""
    session = await backend.open(BackendOptions("bench", tools=toolbox.descriptions))
    result = TurnResult()
    marks: dict[str, float] = {}
    done = asyncio.Event()

    async def collect() -> None:
        async for event in session.events():
            match event:
                case ev.UserTranscript(text, True):
                    result.user_text = text
                case ev.AssistantText(text, True):
                    result.assistant_text.append(text)
                case ev.AssistantAudio():
                    marks.setdefault("audio", time.perf_counter())
                case ev.ToolRequested(call_id, name, arguments):
                    result.tool_calls.append(event)
                    await session.send(await toolbox.call(call_id, name, arguments))
                case ev.AssistantTurnEnded(reason):
                    result.stop_reason = reason
                    done.set()
                    return

    reader = asyncio.create_task(collect())
    pace_from = max(0, end_index - PACE_FROM_MS // 20)
    clock = None
    for index, command in enumerate(commands):
        if index >= pace_from and isinstance(command, ev.SendAudio):
            # Real time from here on: one 20 ms frame every 20 ms.
            clock = clock + 0.02 if clock is not None else time.perf_counter()
            await asyncio.sleep(max(0.0, clock - time.perf_counter()))
        if index == end_index:
            marks["end"] = time.perf_counter()
        if index == stop_index:
            marks["stop"] = time.perf_counter()
        await session.send(command)
        if index < pace_from:
            await asyncio.sleep(0)
        if done.is_set():
            break
    async with asyncio.timeout(30):
        await done.wait()
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    await session.aclose()
    audio = marks.get("audio")
    engine = (audio - marks["stop"]) * 1000 if audio and "stop" in marks else None
    total = (audio - marks["end"]) * 1000 if audio and "end" in marks else None
    return result, engine, total


async def backend_pass(
    samples: Sequence[Sample], orders_db: Path, *, reply_cache: int
) -> dict[str, Any]:
    backend = LocalBackend(reply_cache=reply_cache)
    await backend.warm_up()
    toolbox = ToolBox(orders_db)
    rows: list[tuple[Sample, str, float]] = []
    correct = 0
    engine_ms: list[float] = []
    total_ms: list[float] = []
    per_intent: dict[str, list[float]] = {}
    per_intent_total: dict[str, list[float]] = {}
    turns: list[dict[str, Any]] = []
    try:
        for index, sample in enumerate(samples):
            commands, end_index, stop_index = front_end_commands(sample.speech, seed=index)
            if stop_index < 0:
                turns.append({"voice": sample.voice, "text": sample.command.text, "vad": "no end"})
                continue
            turn, engine, total = await paced_turn(
                backend, toolbox, commands, end_index, stop_index
            )
            ok = turn_correct(sample.command, turn)
            correct += ok
            rows.append((sample, turn.user_text, 0.0))
            if engine is not None and total is not None:
                engine_ms.append(engine)
                total_ms.append(total)
                per_intent.setdefault(sample.command.intent.value, []).append(engine)
                per_intent_total.setdefault(sample.command.intent.value, []).append(total)
            turns.append({
                "voice": sample.voice, "said": sample.command.text, "heard": turn.user_text,
                "tools": [[c.name, c.arguments_json] for c in turn.tool_calls],
                "reply": " ".join(turn.assistant_text), "correct": ok,
                "engine_ms": None if engine is None else round(engine, 1),
                "end_to_end_ms": None if total is None else round(total, 1),
            })  # fmt: skip
    finally:
        await backend.aclose()
    summary = summarise(rows)
    return {
        "transcripts": summary,
        "turn_accuracy": round(correct / len(samples), 3),
        "latency_ms": {
            "engine": percentiles(engine_ms),
            "end_to_end": percentiles(total_ms),
            "stop_wait": percentiles([t - e for t, e in zip(total_ms, engine_ms, strict=True)]),
            "engine_by_intent": {k: percentiles(v) for k, v in per_intent.items()},
            "end_to_end_by_intent": {k: percentiles(v) for k, v in per_intent_total.items()},
            "target_end_to_end": TARGET_MS,
            "vad_stop_secs": STOP_SECS,
            "reply_cache": reply_cache,
        },
        "turns": turns,
    }


def stage_costs() -> dict[str, Any]:
    """Synthesis time of typical first sentences with the engine's voice (uncached)."""
    from sonicwire.server.backends.local.tts import PiperSynthesizer

    synthesizer = PiperSynthesizer.load()
    times, cpu_ms = [], []
    for text in (
        "It's three forty-seven PM.",
        "Order one zero zero one has shipped with UPS.",
        "Today is Tuesday, May fifth, twenty twenty-six.",
        "Hello! How can I help?",
        "Sorry, I didn't catch that.",
    ) * 3:
        started, cpu = time.perf_counter(), time.process_time()
        synthesizer.synthesize(text)
        times.append((time.perf_counter() - started) * 1000)
        cpu_ms.append((time.process_time() - cpu) * 1000)
    return {
        "tts_first_sentence_ms": percentiles(times),
        "tts_first_sentence_cpu_ms": percentiles(cpu_ms),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="two voices only")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--doc", type=Path, default=DOC, help="the doc to render the numbers into")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="only re-render the doc's numbers from the results file (--out); no evaluation",
    )
    parser.add_argument(
        "--reply-cache",
        type=int,
        default=0,
        help="sentences of reply audio the engine may reuse (default 0: every reply is "
        "synthesised, the worst case; the server's default is 64)",
    )
    args = parser.parse_args(argv)
    if args.render_only:
        render_doc(json.loads(args.out.read_text()), args.doc)
        print(f"rendered {args.out} into {args.doc}")
        return

    voices = test_voices()
    if args.quick:
        voices = [v for v in voices if v in (ESPEAK_TEST_VOICES[0], "flite:slt")]
    print(f"voices: {', '.join(voices)}; commands: {len(COMMANDS)}", flush=True)
    samples = build_samples(voices, with_recordings=True)
    load_before = os.getloadavg()
    started = time.perf_counter()
    recognizer = recognizer_pass(samples)
    print(f"recogniser pass done in {time.perf_counter() - started:.0f} s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        backend = asyncio.run(
            backend_pass(samples, Path(tmp) / "orders.db", reply_cache=args.reply_cache)
        )
    print(f"backend pass done in {time.perf_counter() - started:.0f} s", flush=True)
    report = {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.local_eval"
        + (" --quick" if args.quick else "")
        + (f" --reply-cache {args.reply_cache}" if args.reply_cache else ""),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            # Other work on the machine slows every wall-clock figure: kept for context.
            "load_average_1m_before_after": [
                round(load_before[0], 2),
                round(os.getloadavg()[0], 2),
            ],
        },
        "voices": voices,
        "commands": [asdict(c) | {"intent": c.intent.value} for c in COMMANDS],
        "utterances": len(samples),
        "recognizer": recognizer,
        "backend": backend,
        "stages": stage_costs(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_summary(report)
    print(f"wrote {args.out}")
    render_doc(report, args.doc)
    print(f"rendered the numbers into {args.doc}")


def print_summary(report: dict[str, Any]) -> None:
    for model in ("domain", "general"):
        r = report["recognizer"][model]
        print(
            f"{model:>7} LM: WER {r['all']['wer']}  intent {r['all']['intent_accuracy']}  "
            f"(held-out WER {r['held_out_phrasings']['wer']}, "
            f"out-of-domain rejected {r['out_of_domain']['intent_accuracy']}, "
            f"real recordings rejected {r['real_recordings_rejected']['intent_accuracy']})  "
            f"recognition p50 {r['recognition_ms'].get('p50')} ms"
        )
    b = report["backend"]
    lat = b["latency_ms"]
    print(
        f"backend: turn accuracy {b['turn_accuracy']}  WER {b['transcripts']['all']['wer']}  "
        f"engine p50/p95 {lat['engine'].get('p50')}/{lat['engine'].get('p95')} ms  "
        f"end-to-end p50/p95 {lat['end_to_end'].get('p50')}/{lat['end_to_end'].get('p95')} ms "
        f"(target {TARGET_MS} ms; includes the VAD's {int(STOP_SECS * 1000)} ms stop wait)"
    )


if __name__ == "__main__":
    main()
