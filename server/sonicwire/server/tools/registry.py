"""The process-wide set of server tools, and how plugins get into it.

Plugins come from two places, and both accept the same kinds of object:

* installed packages, through the entry point group ``sonicwire.tools``::

      [project.entry-points."sonicwire.tools"]
      weather = "acme_tools.weather:TOOLS"

* references given on the command line, ``--tools acme_tools.weather:TOOLS``
  (``module:attr``; ``attr`` may be dotted).

The object named may be a :class:`~sonicwire.server.tools.tool.Tool`, a list (or any iterable)
of them, or a callable taking no arguments that returns either.

The registry is built once at start-up and only read afterwards; each session asks it for
:meth:`ToolRegistry.specs_for_session`, which adds the client's own tools.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

from .spec import ToolExecutor, ToolSpec, ToolSpecError
from .tool import Tool

__all__ = [
    "ENTRY_POINT_GROUP",
    "ToolPluginError",
    "ToolRegistry",
    "build_registry",
    "coerce_plugin",
    "load_reference",
]

ENTRY_POINT_GROUP = "sonicwire.tools"

_log = logging.getLogger(__name__)


class ToolPluginError(ToolSpecError):
    """A plugin could not be imported or did not provide tools; the message names it."""


def coerce_plugin(obj: Any, source: str) -> list[Tool]:
    """Turn a plugin object into tools.

    Args:
        obj: a ``Tool``, an iterable of ``Tool``, or a no-argument callable returning either.
        source: where ``obj`` came from, for error messages.

    Raises:
        ToolPluginError: ``obj`` is none of those, or the callable raised.
    """
    if isinstance(obj, Tool):
        return [obj]
    if callable(obj):
        try:
            produced = obj()
        except Exception as exc:
            raise ToolPluginError(f"plugin {source}: calling it raised {exc!r}") from exc
        if isinstance(produced, Tool):
            return [produced]
        return _tool_list(produced, source)
    return _tool_list(obj, source)


def _tool_list(obj: Any, source: str) -> list[Tool]:
    if isinstance(obj, str | bytes | dict) or not isinstance(obj, Iterable):
        raise ToolPluginError(
            f"plugin {source}: expected a Tool, a list of Tools or a callable returning them, "
            f"got {type(obj).__name__}"
        )
    tools = list(obj)
    for item in tools:
        if not isinstance(item, Tool):
            raise ToolPluginError(
                f"plugin {source}: expected only Tool objects, got {type(item).__name__}"
            )
    return tools


def load_reference(reference: str) -> list[Tool]:
    """Import ``module:attr`` (``attr`` may be dotted) and coerce it to tools.

    Raises:
        ToolPluginError: malformed reference, import failure, missing attribute, or not tools.
    """
    module_name, sep, attr_path = reference.partition(":")
    if not sep or not module_name.strip() or not attr_path.strip():
        raise ToolPluginError(
            f"tool reference {reference!r} must look like 'package.module:attribute'"
        )
    try:
        obj: Any = importlib.import_module(module_name.strip())
    except Exception as exc:
        raise ToolPluginError(
            f"tool reference {reference!r}: cannot import {module_name!r}: {exc!r}"
        ) from exc
    for part in attr_path.strip().split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise ToolPluginError(f"tool reference {reference!r}: no attribute {part!r}") from exc
    return coerce_plugin(obj, reference)


class ToolRegistry:
    """Server tools by name, in registration order."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        self._sources: dict[str, str] = {}
        for item in tools:
            self.register(item)

    def register(self, item: Tool, *, source: str = "code", replace: bool = False) -> None:
        """Add one tool.

        Raises:
            ToolSpecError: another tool has this name (unless ``replace``), or ``item`` is
                not a Tool.
        """
        if not isinstance(item, Tool):
            raise ToolSpecError(f"expected a Tool, got {type(item).__name__}")
        name = item.spec.name
        if name in self._tools and not replace:
            raise ToolSpecError(
                f"tool {name!r} from {source} is already registered by {self._sources[name]}"
            )
        self._tools[name] = item
        self._sources[name] = source

    def load_reference(self, reference: str) -> list[str]:
        """Register the tools named by ``module:attr``; return their names.

        Raises:
            ToolPluginError, ToolSpecError: see :func:`load_reference` and :meth:`register`.
        """
        tools = load_reference(reference)
        for item in tools:
            self.register(item, source=reference)
        return [t.spec.name for t in tools]

    def load_entry_points(
        self, group: str = ENTRY_POINT_GROUP, *, strict: bool = True
    ) -> list[str]:
        """Register the tools of every installed entry point in ``group``; return their names.

        Args:
            strict: raise on the first broken plugin (the default: a server that silently
                lacks a tool is worse than one that does not start). With ``strict=False``
                a broken plugin is logged and skipped.

        Raises:
            ToolPluginError, ToolSpecError: a plugin failed to load or clashes (strict only).
        """
        names: list[str] = []
        for ep in sorted(importlib.metadata.entry_points(group=group), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist is not None else "?"
            source = f"entry point {ep.name!r} ({ep.value}) of {dist}"
            try:
                try:
                    obj = ep.load()
                except Exception as exc:
                    raise ToolPluginError(f"{source}: cannot load: {exc!r}") from exc
                tools = coerce_plugin(obj, source)
                for item in tools:
                    self.register(item, source=source)
            except ToolSpecError:
                if strict:
                    raise
                _log.exception("skipping tool plugin %s", source)
                continue
            names.extend(t.spec.name for t in tools)
        return names

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def names(self) -> list[str]:
        return list(self._tools)

    def source(self, name: str) -> str | None:
        """Where a tool came from ("builtin", a reference, an entry point), for logs."""
        return self._sources.get(name)

    def specs(self) -> list[ToolSpec]:
        """The server tools' specs, in registration order (what ``ListTools`` reports)."""
        return [t.spec for t in self._tools.values()]

    def specs_for_session(
        self,
        client_tools: Sequence[ToolSpec] = (),
        server_tools: Collection[str] | None = None,
    ) -> list[ToolSpec]:
        """Everything one session can use: the chosen server tools, then the client's tools.

        Args:
            client_tools: the client's own tools (``SessionConfig.client_tools``).
            server_tools: names of the server tools to offer (``SessionConfig.server_tools``);
                ``None`` or empty offers all of them.

        Raises:
            ToolSpecError: a requested server tool does not exist; a client tool is not
                ``executor=CLIENT``, is declared twice, or has the name of a server tool
                (offered or not: names stay unambiguous in logs and ``ListTools``).
        """
        if server_tools:
            unknown = sorted(set(server_tools) - set(self._tools))
            if unknown:
                raise ToolSpecError(
                    f"unknown server tool(s) {unknown}; this server has {sorted(self._tools)}"
                )
            offered = [t.spec for t in self._tools.values() if t.spec.name in server_tools]
        else:
            offered = self.specs()
        seen: set[str] = set()
        for spec in client_tools:
            if not isinstance(spec, ToolSpec) or spec.executor is not ToolExecutor.CLIENT:
                raise ToolSpecError(
                    f"client tool {getattr(spec, 'name', spec)!r} must be a ToolSpec "
                    "with executor=CLIENT"
                )
            if spec.name in self._tools:
                raise ToolSpecError(
                    f"client tool {spec.name!r} has the name of a server tool; "
                    f"server tools are {sorted(self._tools)}"
                )
            if spec.name in seen:
                raise ToolSpecError(f"client tool {spec.name!r} is declared more than once")
            seen.add(spec.name)
        return [*offered, *client_tools]


def build_registry(
    references: Sequence[str] = (),
    *,
    builtins: bool = True,
    entry_points: bool = True,
    orders_db: str | Path | None = None,
    default_timezone: str = "UTC",
    strict: bool = True,
) -> ToolRegistry:
    """The registry a server starts with: built-ins, installed plugins, then ``--tools``.

    Args:
        references: ``module:attr`` strings (the ``--tools`` flag, repeatable).
        builtins: include ``get_date_time`` and ``track_order``.
        entry_points: load the ``sonicwire.tools`` entry point group.
        orders_db: the order store's SQLite file (default: ``$SONICWIRE_ORDERS_DB`` or
            ``~/.local/share/sonicwire/orders.db``).
        default_timezone: ``get_date_time``'s zone when the model gives none.
        strict: see :meth:`ToolRegistry.load_entry_points`.

    Raises:
        ToolSpecError: a plugin is broken or two tools share a name.
    """
    registry = ToolRegistry()
    if builtins:
        # Imported here so that importing the package does not import ``orders``: that keeps
        # ``python -m sonicwire.server.tools.orders`` free of runpy's double-import warning.
        from .builtin import builtin_tools
        from .orders import OrderStore

        for item in builtin_tools(
            order_store=OrderStore(orders_db), default_timezone=default_timezone
        ):
            registry.register(item, source="builtin")
    if entry_points:
        registry.load_entry_points(strict=strict)
    for reference in references:
        registry.load_reference(reference)
    return registry
