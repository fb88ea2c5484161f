"""`sonicwire serve` (and `sonicwire up`, once the gateway exists)."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Sequence

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
        asyncio.run(serve(config))
    except ValueError as error:
        print(f"sonicwire serve: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


def up_main(argv: Sequence[str] | None = None) -> int:
    """`sonicwire up`: the gRPC server and the browser gateway in one process."""
    try:
        from sonicwire.gateway.up import up_main as gateway_up_main
    except ImportError as error:
        print(f"sonicwire up needs the gateway: pip install 'sonicwire[gateway]' ({error})")
        return 2
    return gateway_up_main(argv)
