"""Tools: one neutral description, per-backend conversion, a registry, and a per-session runner.

Modules (dependencies point down the list; none imports the session core, grpc or a backend)::

    spec.py      ToolSpec, ToolExecutor, ToolSpecError     what a tool is
    tool.py      Tool, ToolContext, ToolError, @tool       a server tool = spec + async handler
    outcome.py   ToolInvocation, ToolDispatch, ToolOutcome, ToolStatus
    convert.py   to_nova_tool                              Nova's form (pure)
    registry.py  ToolRegistry, build_registry              built-ins, entry points, module:attr
    runner.py    ToolRunner                                one session's calls
    builtin.py   get_date_time, track_order                (import it directly)
    orders.py    OrderStore, python -m ...tools.orders     SQLite behind track_order
    bridge.py    SessionTools                              core ToolAction <-> ToolRunner

Exceptions::

    ValueError
     └── ToolSpecError            bad spec, duplicate or shadowing name
          └── ToolPluginError     a plugin failed to import or is not tools
     └── OrderImportError         (orders.py) a bad order file
    Exception
     └── ToolError                raised by handlers; becomes an ERROR outcome, never propagates

``builtin`` and ``orders`` are not re-exported here so that running
``python -m sonicwire.server.tools.orders`` does not import that module twice; ``bridge`` is
not either, so that the framework itself does not import the session core. See
``docs/tools.md`` for writing a tool and wiring the runner.
"""

from .convert import to_nova_tool, to_nova_tool_configuration
from .outcome import ToolDispatch, ToolInvocation, ToolOutcome, ToolStatus, error_result_json
from .registry import (
    ENTRY_POINT_GROUP,
    ToolPluginError,
    ToolRegistry,
    build_registry,
    coerce_plugin,
    load_reference,
)
from .runner import ToolRunner
from .spec import TOOL_NAME_PATTERN, ToolExecutor, ToolSpec, ToolSpecError
from .tool import Tool, ToolContext, ToolError, ToolHandler, tool

__all__ = [
    "ENTRY_POINT_GROUP",
    "TOOL_NAME_PATTERN",
    "Tool",
    "ToolContext",
    "ToolDispatch",
    "ToolError",
    "ToolExecutor",
    "ToolHandler",
    "ToolInvocation",
    "ToolOutcome",
    "ToolPluginError",
    "ToolRegistry",
    "ToolRunner",
    "ToolSpec",
    "ToolSpecError",
    "ToolStatus",
    "build_registry",
    "coerce_plugin",
    "error_result_json",
    "load_reference",
    "to_nova_tool",
    "to_nova_tool_configuration",
    "tool",
]
