"""Prometheus metrics (``prometheus-client``), observed at the driver edge.

The session core stays pure: the driver shows every client input and output to a
`StreamMetrics`, which counts and times what operators watch. Metric names are documented in
docs/operations.md; they live in the default registry and are served by `serve_metrics`.
"""

from __future__ import annotations

import asyncio

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from sonicwire.server.core import events as ev

__all__ = [
    "ACTIVE_STREAMS",
    "BACKEND_ERRORS",
    "EVENT_LOOP_TASKS",
    "SESSION_CONTINUATIONS",
    "SESSION_RESUMES",
    "STATE_STORE_ERRORS",
    "STATE_STORE_UP",
    "STREAMS_REJECTED",
    "StreamMetrics",
    "serve_metrics",
]

_LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)

# livesum: under `--workers` (prometheus_client's multiprocess mode) the one metrics port
# shows the sum over the live workers; in one process the mode changes nothing.
ACTIVE_STREAMS = Gauge(
    "sonicwire_active_streams", "Conversations in progress.", multiprocess_mode="livesum"
)
STREAMS_TOTAL = Counter("sonicwire_streams_total", "Conversations started.")
STREAMS_REJECTED = Counter(
    "sonicwire_streams_rejected_total", "Streams ended with an error, by reason.", ["reason"]
)
FRAMES_IN = Counter("sonicwire_frames_in_total", "Audio messages received from clients.")
FRAMES_OUT = Counter("sonicwire_frames_out_total", "Audio messages sent to clients.")
DROPPED_FRAMES = Counter(
    "sonicwire_dropped_frames_total", "Assistant audio dropped by barge-in, in 20 ms frames."
)
BARGE_INS = Counter(
    "sonicwire_barge_ins_total", "Interruptions of the assistant, by source.", ["source"]
)
TURN_LATENCY = Histogram(
    "sonicwire_turn_latency_seconds",
    "End of user speech to final user transcript.",
    buckets=_LATENCY_BUCKETS,
)
FIRST_AUDIO = Histogram(
    "sonicwire_time_to_first_audio_seconds",
    "End of user speech to the first assistant audio sent.",
    buckets=_LATENCY_BUCKETS,
)
TOOL_DURATION = Histogram(
    "sonicwire_tool_duration_seconds",
    "Tool call durations, by tool.",
    ["tool"],
    buckets=_LATENCY_BUCKETS,
)
TOOL_ERRORS = Counter(
    "sonicwire_tool_errors_total",
    "Tool calls that did not end OK, by tool and status.",
    ["tool", "status"],
)
BACKEND_ERRORS = Counter(
    "sonicwire_backend_errors_total", "Backend failures, by reason.", ["reason"]
)
SESSION_CONTINUATIONS = Counter(
    "sonicwire_session_continuations_total", "Backend stream switches (Nova Sonic continuation)."
)
SESSION_RESUMES = Counter(
    "sonicwire_session_resumes_total", "Conversations resumed on a new stream."
)
STATE_STORE_ERRORS = Counter(
    "sonicwire_state_store_errors_total", "Failed reads and writes of the conversation state store."
)
STATE_STORE_UP = Gauge(
    "sonicwire_state_store_up", "1 while the conversation state store answers, 0 after a failure."
)


# The tool label of every tool the server does not itself provide: client-declared names are
# client input, and a label per name would let clients grow the metric without bound.
CLIENT_TOOL_LABEL = "client_tool"


class StreamMetrics:
    """Observes one conversation's traffic; cheap enough for every 20 ms frame.

    ``server_tools``: the names that may appear as a ``tool`` label (the server's registry);
    any other tool is counted as `CLIENT_TOOL_LABEL`.

    Audio frames are counted here and added to the shared counters in bulk (every
    `FRAME_BATCH` frames, and at `flush`, which the driver calls when the stream ends): a
    prometheus ``inc`` takes a lock, and at 50 frames in a second per stream that was a
    measurable share of the driver's own CPU. /metrics therefore lags a live stream by at most
    `FRAME_BATCH` frames each way; every other metric is updated at once.
    """

    FRAME_BATCH = 50

    def __init__(self, server_tools: frozenset[str] = frozenset()) -> None:
        self._server_tools = server_tools
        self._frames_in = 0
        self._frames_out = 0

    def _tool_label(self, name: str) -> str:
        return name if name in self._server_tools else CLIENT_TOOL_LABEL

    def on_audio_input(self) -> None:
        """One microphone audio message came in."""
        self._frames_in += 1
        if self._frames_in >= self.FRAME_BATCH:
            FRAMES_IN.inc(self._frames_in)
            self._frames_in = 0

    def flush(self) -> None:
        """Add the frames counted since the last batch to the shared counters."""
        if self._frames_in:
            FRAMES_IN.inc(self._frames_in)
            self._frames_in = 0
        if self._frames_out:
            FRAMES_OUT.inc(self._frames_out)
            self._frames_out = 0

    def on_output(self, output: ev.ClientOutput) -> None:
        if type(output) is ev.AudioOut:  # most outputs: skip the match below
            self._frames_out += 1
            if self._frames_out >= self.FRAME_BATCH:
                FRAMES_OUT.inc(self._frames_out)
                self._frames_out = 0
            return
        match output:
            case ev.AudioOut():
                FRAMES_OUT.inc()
            case ev.InterruptionOut(source=source, dropped_ms=dropped_ms):
                BARGE_INS.labels(source.value).inc()
                DROPPED_FRAMES.inc(dropped_ms // 20)
            case ev.TurnCompleteOut(first_audio_ms=first_audio, transcript_ms=transcript):
                self.flush()  # the frame counters are whole at every turn's end
                if first_audio:
                    FIRST_AUDIO.observe(first_audio / 1000)
                if transcript:
                    TURN_LATENCY.observe(transcript / 1000)
            case ev.ToolCallResultOut(name=name, status=status, duration_ms=duration):
                label = self._tool_label(name)
                TOOL_DURATION.labels(label).observe(duration / 1000)
                if status is not ev.ToolStatus.OK:
                    TOOL_ERRORS.labels(label, status.value).inc()
            case _:
                pass


EVENT_LOOP_TASKS = Gauge(
    "sonicwire_event_loop_tasks",
    "asyncio tasks alive in the server's event loop (each conversation runs 3 plus gRPC's own).",
)


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Serve /metrics on ``host:port`` from a daemon thread (prometheus-client's server).

    Call it from the server's event loop: `EVENT_LOOP_TASKS` counts that loop's tasks at each
    scrape (`asyncio.all_tasks` is written to be called from another thread).
    """
    loop = asyncio.get_running_loop()
    EVENT_LOOP_TASKS.set_function(lambda: len(asyncio.all_tasks(loop)))
    start_http_server(port, addr=host)
