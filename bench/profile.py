"""Sampling profiles of a server under load with py-spy, reduced to the top hot spots."""

from __future__ import annotations

import re
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

__all__ = ["py_spy_argv", "py_spy_path", "summarise_raw"]

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+)(?::\d+)?\)$")

# What some frames stand for: C work is charged to the Python frame that runs it.
NOTES = {
    "Thread.run (threading.py)": "gRPC core's completion-queue poller thread "
    "(grpc.aio `_poll_wrapper`): C-core I/O, HTTP/2 framing, epoll, outside the GIL",
    "_client_events (server/servicer.py)": "awaiting the next request: "
    "grpc.aio's Cython read path and protobuf parsing are charged here",
    "Handle._run (asyncio/events.py)": "asyncio callback dispatch, incl. grpc.aio's "
    "Cython callbacks",
    "Preprocessor.run_inplace (server/dsp/speex.py)": "speex preprocess (C)",
    "EchoCanceller.cancel_into (server/dsp/speex.py)": "speex echo cancel (C)",
}


def py_spy_path() -> str | None:
    """The py-spy binary next to this interpreter, or on PATH."""
    local = Path(sys.executable).with_name("py-spy")
    if local.exists():
        return str(local)
    return shutil.which("py-spy")


def py_spy_argv(binary: str, pid: int, duration_s: float, out: Path, rate: int = 200) -> list[str]:
    # --nonblocking reads the target's memory without pausing it, so the profile barely
    # disturbs the load it measures; --native would add C frames but pauses the process.
    return [
        binary,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(duration_s))),
        "--rate",
        str(rate),
        "--format",
        "raw",
        "--threads",
        "--output",
        str(out),
        "--nonblocking",
    ]


def _short(frame: str, root: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match.group("file")  # py-spy already shortens it to the package, e.g. server/...
    if path.startswith("/"):
        for marker in (root + "/", "/site-packages/"):
            if marker in path:
                path = path.split(marker, 1)[1]
                break
        else:
            path = Path(path).name
    return f"{match.group('func')} ({path})"


# Leaf frames that mean "waiting", not computing: a woken thread that has not run yet.
_WAITING = ("EpollSelector.select (", "select (selectors.py")


def summarise_raw(raw: Path, root: str, top: int = 15) -> dict[str, Any]:
    """Hot spots of the main thread (the asyncio loop) from py-spy's ``--threads`` raw output.

    The main thread runs all of the server's Python code; other threads (gRPC C-core's
    poller) are counted separately — their CPU share is measured exactly from per-thread CPU
    times by the benchmark, not estimated from samples.
    """
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    waiting = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        parts = stack.split(";")
        thread = parts[0].split(": ", 1)[-1] if parts[0].startswith("thread (") else "?"
        threads[thread] += count
        if thread != "MainThread":
            continue
        frames = [_short(f, root) for f in parts[1:] if f.strip()]
        frames = [f for f in frames if "(" in f]
        if not frames:
            continue
        if frames[-1].startswith(_WAITING):
            waiting += count
            continue
        total += count
        layers[classify(frames)] += count
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count

    def table(counter: Counter[str], keep: Any = None) -> list[dict[str, Any]]:
        rows = []
        for name, n in counter.most_common():
            if keep is not None and not keep(name):
                continue
            row = {"function": name, "samples": n, "percent": 100.0 * n / max(1, total)}
            if name in NOTES:
                row["note"] = NOTES[name]
            rows.append(row)
            if len(rows) == top:
                break
        return rows

    def project_or_grpc(name: str) -> bool:
        # the server's own code and grpc.aio: the frames the lead can act on
        return "(server/" in name or "(grpc/" in name or "(sonicwire/" in name

    return {
        "samples": total,
        "waiting_samples": waiting,
        "thread_samples": dict(threads),
        "self": table(own),
        "inclusive": table(inclusive, project_or_grpc),
        "breakdown": {
            layer: 100.0 * layers[layer] / max(1, total)
            for layer in [name for name, _ in _LAYERS] + ["other"]
        },
    }


# Layers a main-thread sample is charged to: the first rule whose marker is in its stack.
_LAYERS = (
    ("front_end", ("FrontEnd.process (",)),
    ("echo_backend", ("EchoSession.", "EchoBackend.")),
    ("session_core_excl_front_end", ("Session.",)),
    ("response_conversion_and_write", ("response_from_output (", "VoiceServicer.Converse (")),
    ("grpc_aio_request_read", ("_client_events (",)),
    ("conversation_driver_tasks", ("Conversation.",)),
    ("asyncio_and_grpc_callbacks", ("(asyncio/", "(grpc/")),
)


def classify(frames: list[str]) -> str:
    """The layer a sampled main-thread stack belongs to (see ``_LAYERS``)."""
    for layer, markers in _LAYERS:
        if any(marker in frame for frame in frames for marker in markers):
            return layer
    return "other"
