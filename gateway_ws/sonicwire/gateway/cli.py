"""``sonicwire gateway``: serve the browser page and bridge WebSockets to the gRPC server."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence

from .app import run_gateway
from .config import parse_gateway_args

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the gateway until SIGTERM/SIGINT.

    Args:
        argv: the flags (without the program name); ``None`` reads ``sys.argv``.

    Returns:
        The exit status: 0 after a clean stop, 2 for an unusable configuration.
    """
    config = parse_gateway_args(argv)
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        asyncio.run(run_gateway(config))
    except OSError as error:
        print(f"sonicwire gateway: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0
