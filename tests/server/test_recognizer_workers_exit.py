"""The local engine's recogniser worker processes end with the server, however it ends.

Before `backends.parent_watch`, a SIGKILLed server left its pocketsphinx workers (and the
multiprocessing resource tracker they keep alive) running for ever, holding the server's
stdout; the graceful SIGTERM path closed them and still must.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

import psutil
import pytest

from .helpers import health_status, process_gone, server_process, wait_health

pytest.importorskip("pocketsphinx")

SERVING = 1
# Generous: a worker notices at once, but the machine may be loaded; this bounds the poll only.
EXIT_LIMIT_S = 30.0


async def recognizer_workers(server_pid: int) -> list[int]:
    """The server's spawned worker processes (the recognisers and the resource tracker)."""
    children = await asyncio.to_thread(psutil.Process(server_pid).children, recursive=True)
    pids = [child.pid for child in children if "multiprocessing" in " ".join(child.cmdline())]
    assert any("spawn_main" in " ".join(psutil.Process(pid).cmdline()) for pid in pids), (
        "the local backend started no recogniser worker"
    )
    return pids


async def wait_gone(pids: list[int]) -> list[int]:
    """Poll until every pid has exited or `EXIT_LIMIT_S` passed; returns the survivors."""
    for _ in range(int(EXIT_LIMIT_S / 0.1)):
        survivors = [pid for pid in pids if not process_gone(pid)]
        if not survivors:
            return []
        await asyncio.sleep(0.1)
    return survivors


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
async def test_recognizer_workers_exit_with_the_server(how: signal.Signals) -> None:
    async with server_process("--backend", "local", "--drain-grace-seconds", "0.5") as (
        proc,
        target,
    ):
        # SERVING once the warm-up has loaded the recogniser, i.e. its workers are running.
        await wait_health(target, SERVING, limit_s=120)
        assert await health_status(target) == SERVING
        workers = await recognizer_workers(proc.pid)
        proc.send_signal(how)
        survivors = await wait_gone(workers)
        for pid in survivors:  # do not leave them behind for the rest of the suite
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()
        assert not survivors, f"worker processes {survivors} outlived the server ({how.name})"
        # Only now: asyncio's wait() also waits for the server's stdout to close, which a
        # surviving worker would have held open.
        await asyncio.wait_for(proc.wait(), EXIT_LIMIT_S)
