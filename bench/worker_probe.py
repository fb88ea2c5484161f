"""`sonicwire serve` (one process, or ``--workers N``) with the bench's per-frame probe in every
process that serves streams. Run by ``bench.workers``, never in production::

    SONICWIRE_BENCH_PROBE_DIR=/tmp/d python -m bench.worker_probe --workers 2 --port 0 ...

The flags are `sonicwire serve`'s. The server code is not modified: with ``--workers N`` the
supervisor is told to spawn `probed_worker_main` (this module) instead of the ordinary worker
entry, which installs `bench.probe_server.install_session_probe` in the worker and then runs
the ordinary worker. Every serving process writes ``probe-<pid>.npz`` into the probe directory
when it exits (after its drain), in the format of ``bench.probe_server``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sonicwire.server.config import ServerConfig

__all__ = ["PROBE_DIR_ENV", "main", "probed_worker_main"]

PROBE_DIR_ENV = "SONICWIRE_BENCH_PROBE_DIR"


def _probe_file() -> str:
    return str(Path(os.environ[PROBE_DIR_ENV]) / f"probe-{os.getpid()}.npz")


def probed_worker_main(config: ServerConfig, index: int, parent_pid: int) -> None:
    """A worker with the probe (runs in the spawned child; spawn pickles it by name)."""
    from bench.probe_server import FrameProbe, install_session_probe
    from sonicwire.server.workers import _worker_main

    probe = FrameProbe()
    install_session_probe(probe)
    try:
        _worker_main(config, index, parent_pid)
    finally:
        probe.save(_probe_file())


def main(argv: list[str] | None = None) -> int:
    from bench.probe_server import FrameProbe, install_session_probe
    from sonicwire.server import cli, workers

    workers._worker_main = probed_worker_main
    probe = FrameProbe()  # one process serving: the probe is here
    install_session_probe(probe)
    try:
        return cli.main(argv)
    finally:
        if probe.starts:  # the supervisor of --workers serves nothing itself
            probe.save(_probe_file())


if __name__ == "__main__":
    sys.exit(main())
