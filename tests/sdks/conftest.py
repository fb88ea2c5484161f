"""Fixtures for the TypeScript and Go SDK tests: real servers in child processes and the two
`talk` examples as commands.

Each server is a separate process (`python -m sonicwire.server`, i.e. `sonicwire serve`, with
the offline local engine) bound to 127.0.0.1 port 0; the fixture reads the address from its
banner and kills it afterwards.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from sonicwire.server.testing.local_harness import speak

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "sdk-test-key"
TS_TALK = ROOT / "clients" / "typescript" / "examples" / "talk.mjs"
GO = ROOT / "scripts" / "go"


@dataclass(frozen=True)
class Server:
    target: str
    process: subprocess.Popen[str]


def _start(args: list[str]) -> Iterator[Server]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SONICWIRE_")}
    env["SONICWIRE_LOG_LEVEL"] = "WARNING"
    process = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()  # blocks until the server listens (or exits)
        found = re.search(r"gRPC on (\S+)", banner)
        assert found, f"server did not start: {banner!r} (exit {process.poll()})"
        yield Server(found.group(1), process)
    finally:
        process.kill()
        process.wait(timeout=30)


@pytest.fixture(scope="package")
def local_server() -> Iterator[Server]:
    """`sonicwire serve --backend local` with an API key, on a free loopback port."""
    yield from _start(
        ["-m", "sonicwire.server", "--backend", "local", "--host", "127.0.0.1", "--port", "0",
         "--api-key", API_KEY]
    )  # fmt: skip


@dataclass(frozen=True)
class Pki:
    """A test CA, a server certificate for localhost/127.0.0.1 and a client certificate."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


@pytest.fixture(scope="package")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    ca = trustme.CA()
    root = tmp_path_factory.mktemp("sdk-pki")
    files = Pki(*(root / name for name in ("ca.pem", "server.pem", "server.key", "client.pem",
                                            "client.key")))  # fmt: skip
    ca.cert_pem.write_to_path(str(files.ca))
    for name, issued in (("server", ca.issue_cert("localhost", "127.0.0.1")),
                         ("client", ca.issue_cert("client.example"))):  # fmt: skip
        cert, key = getattr(files, f"{name}_cert"), getattr(files, f"{name}_key")
        for index, pem in enumerate(issued.cert_chain_pems):
            pem.write_to_path(str(cert), append=index > 0)
        issued.private_key_pem.write_to_path(str(key))
    return files


@pytest.fixture(scope="package")
def tls_server(pki: Pki) -> Iterator[Server]:
    """`sonicwire serve` with TLS that requires a client certificate (mTLS) and an API key."""
    yield from _start(
        ["-m", "sonicwire.server", "--backend", "local", "--host", "127.0.0.1", "--port", "0",
         "--api-key", API_KEY, "--tls-cert", str(pki.server_cert), "--tls-key",
         str(pki.server_key), "--tls-client-ca", str(pki.ca)]
    )  # fmt: skip


def spoken_wav(path: Path, text: str) -> Path:
    """``text`` in an espeak-ng voice (never the engine's own), 16 kHz, after 0.5 s of silence."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is missing: run scripts/setup.sh")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes(bytes(16_000) + speak(text, "espeak:en-us"))
    return path


@pytest.fixture(scope="package")
def question_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ "what time is it", spoken."""
    return spoken_wav(tmp_path_factory.mktemp("sdk-audio") / "question.wav", "what time is it")


@pytest.fixture(scope="package")
def weather_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ "what's the weather in lisbon", spoken: asks for the examples' client tool."""
    path = tmp_path_factory.mktemp("sdk-audio") / "weather.wav"
    return spoken_wav(path, "what's the weather in lisbon")


@dataclass(frozen=True)
class Run:
    """One run of a `talk` example with `--json`: exit code, records, stderr."""

    returncode: int
    records: list[dict[str, object]]
    stderr: str

    def of(self, kind: str) -> list[dict[str, object]]:
        return [r for r in self.records if r.get("type") == kind]

    def last(self, kind: str) -> dict[str, object]:
        found = self.of(kind)
        assert found, f"no {kind!r} record; stderr:\n{self.stderr}\nrecords: {self.records}"
        return found[-1]


def run_talk(command: list[str], *args: str, timeout: float = 120) -> Run:
    """Run a `talk` example (with `--json`, so its output is machine-readable)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SONICWIRE_")}
    result = subprocess.run(
        [*command, *args, "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return Run(result.returncode, records, result.stderr)
