"""The py-spy section of ``docs/BENCHMARKS.md``: where one stream-second of the server's CPU
goes, by layer and by function, from ``results["profile"]`` (py-spy sampling one server step at
80% of the search's capacity, reduced by ``bench.profile``).

Split from ``bench/report.py``, which puts the sections together; the text is unchanged.
"""

from __future__ import annotations

from typing import Any

from bench.markdown import number, table

__all__ = ["profile_section"]


def profile_section(results: dict[str, Any]) -> str:
    """The section's Markdown: the thread split, the per-layer table and the top self and
    inclusive functions, or why the profile was not measured."""
    out: list[str] = []
    add = out.append
    prof = results.get("profile")
    add("## Where Sonicwire's CPU goes (py-spy)\n")
    if prof and prof.get("self"):
        add(
            f"py-spy (`--nonblocking`, 200 Hz) on the server at N={prof.get('n')} "
            f"({prof.get('samples')} samples of busy CPU). Self time is where the CPU is spent; "
            "inclusive time is what a call and everything under it costs. C code (speex, "
            "webrtcvad, gRPC core) is charged to the Python function that called it.\n"
        )
        shares = prof.get("breakdown") or {}
        if shares:
            labels = {
                "grpc_aio_request_read": "grpc.aio request read + protobuf parse",
                "asyncio_and_grpc_callbacks": "asyncio loop + grpc.aio callbacks (no server frame)",
                "front_end": "front end (`FrontEnd.process`: speex, VAD, alignment)",
                "echo_backend": "echo backend (utterance collection, reply chunks)",
                "session_core_excl_front_end": "session core outside the front end",
                "conversation_driver_tasks": "conversation driver tasks (queues, tick, wake-ups)",
                "response_conversion_and_write": "responses: proto building and grpc.aio write",
                "other": "other",
            }
            share = prof.get("main_thread_share")
            if share is not None:
                add(
                    f"Threads (exact, from per-thread CPU times): the main thread — the asyncio "
                    f"loop running all Python code — used **{100 * share:.0f}%** of the "
                    f"server's CPU; the other {100 * (1 - share):.0f}% is gRPC C-core's "
                    "completion-queue poller thread (epoll, HTTP/2 framing, socket I/O, "
                    "outside the GIL) and any other native threads.\n"
                )
            cpu = prof.get("cpu_ms_per_stream_s")
            main = cpu * share if cpu is not None and share is not None else None
            rows = []
            for key, value in shares.items():
                ms = None if main is None else main * value / 100.0
                rows.append([labels.get(key, key), number(value, 1), number(ms, 2)])
            if cpu is not None and share is not None:
                rows.append(
                    ["gRPC C-core poller + native threads", "-", number(cpu * (1 - share), 2)]
                )
                rows.append(["**total**", "", f"**{number(cpu, 2)}**"])
            add(
                f"The CPU of one stream-second at N={prof.get('n')} by layer (main-thread "
                "samples, scaled by the measured CPU):\n"
            )
            add(table(["layer", "% of main-thread samples", "≈ ms per stream-second"], rows) + "\n")
        add("Top self time (main thread):\n")
        add(
            table(
                ["function", "% of samples", "what it is"],
                [
                    [f"`{r['function']}`", number(r["percent"], 1), r.get("note", "")]
                    for r in prof["self"]
                ],
            )
            + "\n"
        )
        add("Top inclusive time (main thread), the server's own code and grpc.aio:\n")
        add(
            table(
                ["function", "% of samples"],
                [[f"`{r['function']}`", number(r["percent"], 1)] for r in prof["inclusive"]],
            )
            + "\n"
        )
    else:
        why = (prof or {}).get("error") or results.get("skipped", {}).get("profile", "not reached")
        add(f"Not measured: {why}.\n")
    return "\n".join(out)
