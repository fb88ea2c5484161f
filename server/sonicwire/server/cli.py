"""`sonicwire-server` (also run as `sonicwire serve`): the gRPC server's own entry point."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

from sonicwire.server.app import serve
from sonicwire.server.config import ServerConfig, parse_server_args

__all__ = ["main", "setup_logging"]


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(config: ServerConfig) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if config.log_json:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=config.log_level.upper(), handlers=[handler], force=True)


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_server_args(argv)
    setup_logging(config)
    try:
        if config.workers > 1:
            from sonicwire.server.workers import serve_workers

            run_until_drained(serve_workers(config))
        else:
            run_until_drained(serve(config))
    except (ValueError, RuntimeError, OSError) as error:
        print(f"sonicwire serve: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


def run_until_drained(main: Coroutine[Any, Any, None], *, cleanup_s: float = 2.0) -> None:
    """Run ``main`` on a fresh loop, then exit even if some task refuses to be cancelled.

    ``asyncio.run`` waits without limit for every task it cancels at the end, so one tool that
    swallows CancelledError would keep a drained server alive until the kubelet kills it.
    """
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main)
    finally:
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.wait(pending, timeout=cleanup_s))
        stubborn = [task for task in pending if not task.done()]
        if stubborn:
            logging.getLogger(__name__).warning(
                "exiting with %d task(s) that ignored cancellation", len(stubborn)
            )
        loop.run_until_complete(
            asyncio.wait([loop.create_task(loop.shutdown_default_executor())], timeout=cleanup_s)
        )
        loop.close()
