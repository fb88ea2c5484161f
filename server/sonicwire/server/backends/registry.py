"""Backend names -> factories. Imports are lazy so the light backends need no heavy packages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sonicwire.server.backends.base import Backend
from sonicwire.server.core.errors import BackendError

__all__ = ["BACKEND_NAMES", "create_backend"]


def _echo(**_: Any) -> Backend:
    from sonicwire.server.backends.echo import EchoBackend

    return EchoBackend()


def _local(**options: Any) -> Backend:
    from sonicwire.server.backends.local.engine import LocalBackend

    return LocalBackend.from_options(**options)


def _nova_sonic(**options: Any) -> Backend:
    from sonicwire.server.backends.nova_sonic.backend import NovaSonicBackend

    return NovaSonicBackend.from_options(**options)


_FACTORIES: dict[str, Callable[..., Backend]] = {
    "echo": _echo,
    "local": _local,
    "nova-sonic": _nova_sonic,
}
BACKEND_NAMES = tuple(_FACTORIES)


def create_backend(name: str, **options: Any) -> Backend:
    """Create the backend called ``name``. Raises `BackendError` for an unknown name."""
    try:
        factory = _FACTORIES[name.replace("_", "-")]
    except KeyError:
        raise BackendError(
            "BACKEND_UNKNOWN", f"unknown backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}"
        ) from None
    return factory(**options)
