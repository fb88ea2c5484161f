"""ToolRegistry: registration, plugins from entry points and module:attr, session specs."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sonicwire.server.testing.tools import OutcomeRecorder
from sonicwire.server.tools import (
    ENTRY_POINT_GROUP,
    ToolContext,
    ToolExecutor,
    ToolInvocation,
    ToolPluginError,
    ToolRegistry,
    ToolRunner,
    ToolSpec,
    ToolSpecError,
    build_registry,
    coerce_plugin,
    tool,
)

PLUGIN_SRC = Path(__file__).parent / "plugin_pkg"
PLUGIN_MODULE = "sonicwire_test_plugin"


@tool(description="A tool defined in the test module.")
async def local_tool(args: dict[str, Any], ctx: ToolContext) -> str:
    return "local"


def install_fake_dist(site: Path, name: str, entry_points: str) -> None:
    """Write a minimal installed distribution: what pip would leave in site-packages."""
    info = site / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(entry_points, encoding="utf-8")


@pytest.fixture
def plugin_on_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make the test plugin importable; forget it afterwards."""
    monkeypatch.syspath_prepend(str(PLUGIN_SRC))
    yield
    for module in [m for m in sys.modules if m.split(".")[0] == PLUGIN_MODULE]:
        del sys.modules[module]


@pytest.fixture
def installed_plugin(plugin_on_path: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    install_fake_dist(
        site,
        "sonicwire-test-plugin",
        f"[{ENTRY_POINT_GROUP}]\n"
        f"text = {PLUGIN_MODULE}:reverse_text\n"
        f"math = {PLUGIN_MODULE}:make_math_tools\n",
    )
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    return site


async def test_plugin_from_an_entry_point(installed_plugin: Path) -> None:
    registry = ToolRegistry()
    names = registry.load_entry_points()
    assert sorted(names) == ["add_numbers", "reverse_text"]
    source = registry.source("reverse_text")
    assert source is not None and "sonicwire-test-plugin" in source
    # And it runs like any other tool.
    outcomes = OutcomeRecorder()
    async with ToolRunner(registry, on_outcome=outcomes) as runner:
        runner.start(ToolInvocation("c1", "reverse_text", '{"text": "abc"}'))
        runner.start(ToolInvocation("c2", "add_numbers", '{"a": 2, "b": 40}'))
        await outcomes.wait_count(2)
    results = {o.call_id: json.loads(o.result_json) for o in outcomes.outcomes}
    assert results == {"c1": {"reversed": "cba"}, "c2": {"sum": 42}}


def test_build_registry_includes_builtins_and_plugins(
    installed_plugin: Path, tmp_path: Path
) -> None:
    registry = build_registry(orders_db=tmp_path / "o.db")
    assert registry.names() == ["get_date_time", "track_order", "add_numbers", "reverse_text"]
    assert registry.source("get_date_time") == "builtin"
    assert not (tmp_path / "o.db").exists()  # the store is opened on first use only


def test_broken_entry_point(
    plugin_on_path: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = "sonicwire.tools.test-broken"
    install_fake_dist(
        tmp_path,
        "broken-plugin",
        f"[{group}]\nbad = {PLUGIN_MODULE}:NOT_TOOLS\nmissing = no_such_module_xyz:TOOLS\n",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ToolPluginError, match=r"'bad'.*expected a Tool"):
        ToolRegistry().load_entry_points(group)
    # Lenient mode skips broken plugins (and logs them).
    assert ToolRegistry().load_entry_points(group, strict=False) == []


@pytest.mark.parametrize(
    ("reference", "names"),
    [
        (f"{PLUGIN_MODULE}:TOOLS", ["reverse_text", "add_numbers"]),
        (f"{PLUGIN_MODULE}:reverse_text", ["reverse_text"]),
        (f"{PLUGIN_MODULE}:make_math_tools", ["add_numbers"]),
        (f"{PLUGIN_MODULE}:Namespace.TOOLS", ["reverse_text"]),
    ],
)
def test_module_attr_reference(plugin_on_path: None, reference: str, names: list[str]) -> None:
    registry = ToolRegistry()
    assert registry.load_reference(reference) == names
    assert registry.names() == names
    assert registry.source(names[0]) == reference


@pytest.mark.parametrize(
    ("reference", "fragment"),
    [
        ("no_colon", "must look like"),
        (f"{PLUGIN_MODULE}:", "must look like"),
        ("no_such_module_xyz:TOOLS", "cannot import"),
        (f"{PLUGIN_MODULE}:MISSING", "no attribute 'MISSING'"),
        (f"{PLUGIN_MODULE}:NOT_TOOLS", "expected a Tool"),
    ],
)
def test_bad_references(plugin_on_path: None, reference: str, fragment: str) -> None:
    with pytest.raises(ToolPluginError, match=fragment):
        ToolRegistry().load_reference(reference)


def test_coerce_plugin_shapes() -> None:
    assert coerce_plugin(local_tool, "x") == [local_tool]
    assert coerce_plugin((local_tool,), "x") == [local_tool]
    assert coerce_plugin(lambda: local_tool, "x") == [local_tool]
    assert coerce_plugin(lambda: [local_tool], "x") == [local_tool]
    with pytest.raises(ToolPluginError, match="only Tool objects"):
        coerce_plugin([local_tool, "nope"], "x")
    with pytest.raises(ToolPluginError, match="got str"):
        coerce_plugin("local_tool", "x")

    def explode() -> None:
        raise RuntimeError("bad config")

    with pytest.raises(ToolPluginError, match="bad config"):
        coerce_plugin(explode, "x")


def test_duplicate_names_are_refused() -> None:
    registry = ToolRegistry([local_tool])
    with pytest.raises(ToolSpecError, match="already registered"):
        registry.register(local_tool, source="again")
    registry.register(local_tool, source="again", replace=True)
    assert registry.source("local_tool") == "again"
    assert len(registry) == 1 and "local_tool" in registry


def test_specs_for_session() -> None:
    registry = ToolRegistry([local_tool])
    client = ToolSpec(
        name="crm", description="CRM.", parameters={"type": "object"}, executor=ToolExecutor.CLIENT
    )
    assert [s.name for s in registry.specs_for_session([client])] == ["local_tool", "crm"]
    with pytest.raises(ToolSpecError, match="more than once"):
        registry.specs_for_session([client, client])
    server_kind = ToolSpec(name="crm", description="CRM.", parameters={"type": "object"})
    with pytest.raises(ToolSpecError, match="executor=CLIENT"):
        registry.specs_for_session([server_kind])
    shadow = ToolSpec(
        name="local_tool",
        description="x",
        parameters={"type": "object"},
        executor=ToolExecutor.CLIENT,
    )
    with pytest.raises(ToolSpecError, match="name of a server tool"):
        registry.specs_for_session([shadow])


def test_build_registry_with_tools_flag(plugin_on_path: None, tmp_path: Path) -> None:
    registry = build_registry(
        [f"{PLUGIN_MODULE}:TOOLS"], entry_points=False, orders_db=tmp_path / "o.db"
    )
    assert registry.names() == ["get_date_time", "track_order", "reverse_text", "add_numbers"]
    with pytest.raises(ToolSpecError, match="already registered"):
        build_registry(
            [f"{PLUGIN_MODULE}:TOOLS", f"{PLUGIN_MODULE}:reverse_text"],
            builtins=False,
            entry_points=False,
        )


def test_specs_for_session_offers_only_the_requested_server_tools() -> None:
    @tool(description="Another server tool.")
    async def other(args: dict[str, Any], ctx: ToolContext) -> None:
        return None

    registry = ToolRegistry([local_tool, other])
    assert [s.name for s in registry.specs_for_session([], ["other"])] == ["other"]
    assert [s.name for s in registry.specs_for_session([], [])] == ["local_tool", "other"]
    with pytest.raises(ToolSpecError, match=r"unknown server tool\(s\) \['nope'\]"):
        registry.specs_for_session([], ["nope"])
