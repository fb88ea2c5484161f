"""Real L7 gRPC balancers on loopback for the multi-replica tests: HAProxy (`proto h2`, active
checks) and nginx (`grpc_pass`, no active checks), each in front of a list of replica ports.

A balancer is started as a context manager and yields a `Balancer`: its port, and
`routes_to(index)`, which returns once the balancer would send a new stream to the replica at
``backends[index]`` again (after that replica restarted). A replica answering SERVING is not
yet one the balancer routes to: HAProxy marks it UP only at its next check.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import os
import shutil
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["BALANCERS", "Balancer", "haproxy", "haproxy_statuses", "nginx"]


@dataclass(frozen=True)
class Balancer:
    """A running balancer: where clients connect, and how to wait until it routes to a
    restarted replica (``routes_to(index)``, ``index`` into the backends it was given)."""

    port: int
    routes_to: Callable[[int], Awaitable[None]]


def _haproxy_server(index: int) -> str:
    """HAProxy's name for the server of ``backends[index]`` in backend ``replicas``."""
    return f"r{index}"


async def haproxy_statuses(socket_path: Path) -> dict[str, str]:
    """Each server's status in backend ``replicas`` ("UP", "DOWN", ...) from HAProxy's runtime
    API: `show stat` (CSV) on its stats socket, which answers one command and closes."""
    reader, writer = await asyncio.open_unix_connection(str(socket_path))
    try:
        writer.write(b"show stat\n")
        await writer.drain()
        text = (await reader.read()).decode()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    rows = csv.DictReader(io.StringIO(text.removeprefix("# ")))
    return {row["svname"]: row["status"] for row in rows if row["pxname"] == "replicas"}


async def _haproxy_until_up(socket_path: Path, log: Path, index: int) -> None:
    """Until HAProxy reports the server of ``backends[index]`` UP (its TCP check, every 200 ms
    and later on a loaded machine, saw the replica listen); fails after 300 polls."""
    name = _haproxy_server(index)
    statuses: dict[str, str] = {}
    for _ in range(300):
        with contextlib.suppress(OSError):  # the socket is not there until HAProxy is up
            statuses = await haproxy_statuses(socket_path)
        if statuses.get(name) == "UP":
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"HAProxy never marked {name} UP: {statuses}\n{_tail(log)}")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:] if log.exists() else ""


@contextlib.contextmanager
def haproxy(port: int, backends: list[int], tmp_path: Path) -> Iterator[Balancer]:
    """HAProxy on ``port`` in front of ``backends``, with its stats socket in ``tmp_path``."""
    binary = shutil.which("haproxy", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    if binary is None:
        pytest.fail("haproxy is missing: run scripts/setup.sh (apt-get install haproxy)")
    # Per-request round robin over h2 backends; a replica that refuses the connection (restarting)
    # is marked down by the TCP check and the request is re-dispatched to another one.
    servers = "\n".join(
        f"  server {_haproxy_server(i)} 127.0.0.1:{p} proto h2 check inter 200ms fall 1 rise 1"
        for i, p in enumerate(backends)
    )
    stats = tmp_path / "haproxy.sock"
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        f"""global
  maxconn 2000
  stats socket {stats} mode 600 level user
defaults
  mode http
  timeout connect 1s
  timeout client 120s
  timeout server 120s
  timeout tunnel 120s
  retries 3
  option redispatch 1
  retry-on conn-failure empty-response
frontend grpc_in
  bind 127.0.0.1:{port} proto h2
  default_backend replicas
backend replicas
  balance roundrobin
{servers}
"""
    )
    check = subprocess.run([binary, "-c", "-f", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    # its warnings (a server marked DOWN or UP, and why) go to a log the tests can show
    log_path = tmp_path / "haproxy.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([binary, "-db", "-f", str(config)], stdout=log, stderr=log)
    try:
        yield Balancer(port, lambda index: _haproxy_until_up(stats, log_path, index))
    finally:
        process.terminate()
        process.wait(timeout=10)


async def _nginx_routes_to(index: int) -> None:
    """nginx has no active checks and, with ``max_fails=0``, never marks a replica down: a
    stream goes to a restarted replica as soon as it listens, so there is nothing to wait for."""


@contextlib.contextmanager
def nginx(port: int, backends: list[int], tmp_path: Path) -> Iterator[Balancer]:
    """nginx `grpc_pass` on ``port`` in front of ``backends``."""
    binary = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    if binary is None:
        pytest.fail("nginx is missing: run scripts/setup.sh (apt-get install nginx-light)")
    root = tmp_path / "nginx"
    root.mkdir()
    servers = "\n".join(f"    server 127.0.0.1:{p} max_fails=0;" for p in backends)
    temp = " ".join(
        f"{kind}_temp_path {root / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    config = root / "nginx.conf"
    # Round robin per stream. A replica that refuses the connection (restarting) makes nginx try
    # the next one (grpc_next_upstream; gRPC calls are POSTs, which nginx retries only with
    # `non_idempotent`: safe here, a refused connection ran nothing). max_fails=0: with the
    # passive marking (max_fails=1 fail_timeout=1s) the test saw ~300 refused streams per run,
    # mostly "no live upstreams" 502s.
    config.write_text(
        f"""daemon off;
worker_processes 1;
pid {root / "nginx.pid"};
error_log {root / "error.log"} warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  {temp}
  upstream replicas {{
{servers}
  }}
  server {{
    listen 127.0.0.1:{port} http2;
    client_body_timeout 120s;
    location / {{
      grpc_pass grpc://replicas;
      grpc_next_upstream error timeout non_idempotent;
      grpc_connect_timeout 1s;
      grpc_read_timeout 120s;
      grpc_send_timeout 120s;
    }}
  }}
}}
"""
    )
    check = subprocess.run(
        [binary, "-t", "-p", str(root), "-c", str(config)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    process = subprocess.Popen(
        [binary, "-p", str(root), "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield Balancer(port, _nginx_routes_to)
    finally:
        process.terminate()
        process.wait(timeout=10)


BALANCERS = {"haproxy": haproxy, "nginx": nginx}
