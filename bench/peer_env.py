"""The pipecat peer's own virtual environment, created on first use.

pipecat-ai 1.14.0 requires ``protobuf<7`` and ``soxr~=1.0``, while Sonicwire's generated stubs
need protobuf >= 7.35 (they refuse to load on an older runtime): the two cannot share the
project's ``.venv``. The peer therefore runs from a separate venv built from the pinned
``bench/pipecat-requirements.txt`` (no torch: pipecat's Silero VAD runs on onnxruntime).

Location: ``$SONICWIRE_BENCH_PIPECAT_VENV`` or ``~/.cache/sonicwire/bench-pipecat-venv``.
``python -m bench.peer_env`` creates it ahead of a run.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["REQUIREMENTS", "PeerEnvError", "ensure_peer_env", "peer_python"]

REQUIREMENTS = Path(__file__).resolve().parent / "pipecat-requirements.txt"


class PeerEnvError(RuntimeError):
    """The peer environment could not be created; the message says why."""


def _venv_dir() -> Path:
    default = Path.home() / ".cache" / "sonicwire" / "bench-pipecat-venv"
    return Path(os.environ.get("SONICWIRE_BENCH_PIPECAT_VENV", default))


def peer_python() -> Path:
    return _venv_dir() / "bin" / "python"


def _stamp() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]


def ensure_peer_env(timeout_s: float = 600.0) -> Path:
    """Return the peer venv's python, creating or updating the venv if needed."""
    venv = _venv_dir()
    python = peer_python()
    stamp_file = venv / ".sonicwire-requirements"
    if python.exists() and stamp_file.exists() and stamp_file.read_text() == _stamp():
        return python
    base = getattr(sys, "_base_executable", sys.executable)
    try:
        if not python.exists():
            subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--no-input", "-r", str(REQUIREMENTS)],
            check=True,
            timeout=timeout_s,
            capture_output=True,
        )
    except subprocess.CalledProcessError as error:
        tail = (error.stderr or b"").decode(errors="replace")[-800:]
        raise PeerEnvError(f"pip install of the pipecat peer failed: {tail}") from None
    except (OSError, subprocess.TimeoutExpired) as error:
        raise PeerEnvError(f"could not create the pipecat peer venv: {error}") from None
    stamp_file.write_text(_stamp())
    return python


if __name__ == "__main__":
    print(ensure_peer_env())
