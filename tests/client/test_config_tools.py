"""session_config() defaults and client tool declaration/execution."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest

from sonicwire.client import ClientTool, session_config
from sonicwire.client.tools import declare_tools, run_tool
from sonicwire.v1 import voice_service_pb2 as pb


def test_defaults_are_16k_mono_pcm_both_ways() -> None:
    config = session_config()
    for fmt in (config.input_format, config.output_format):
        assert (fmt.encoding, fmt.sample_rate_hz, fmt.channels) == (
            pb.AUDIO_ENCODING_PCM_S16LE,
            16000,
            1,
        )
    assert not config.barge_in.disabled and not config.echo_cancellation.disabled
    assert not config.client_tools


def test_options_map_onto_the_proto() -> None:
    config = session_config(
        sample_rate_hz=8000,
        output_sample_rate_hz=24000,
        voice="joe",
        system_prompt="be brief",
        barge_in=False,
        echo_cancellation=False,
        vad_engine="silero",
        endpointing="low",
        server_tools=["get_date_time"],
        max_tokens=128,
    )
    assert config.input_format.sample_rate_hz == 8000
    assert config.output_format.sample_rate_hz == 24000
    assert (config.voice, config.system_prompt) == ("joe", "be brief")
    assert config.barge_in.disabled and config.echo_cancellation.disabled
    assert config.vad.engine == pb.VAD_ENGINE_SILERO
    assert config.inference.endpointing_sensitivity == pb.ENDPOINTING_SENSITIVITY_LOW
    assert list(config.server_tools) == ["get_date_time"]
    assert config.inference.max_tokens == 128


@pytest.mark.parametrize("kwargs", [{"sample_rate_hz": 44100}, {"output_sample_rate_hz": 22050}])
def test_unsupported_rates_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must be one of 8000, 16000, 24000, 48000"):
        session_config(**kwargs)  # type: ignore[arg-type]


def lookup(args: dict[str, Any]) -> dict[str, Any]:
    """Look up an order."""
    return {"status": "shipped", **args}


def test_declare_tools_adds_definitions_without_touching_the_input() -> None:
    base = session_config()
    schema = {"type": "object", "properties": {"id": {"type": "string"}}}
    config, tools = declare_tools(
        base,
        {"lookup": lookup, "ping": ClientTool(lambda a: "pong", "Ping.", schema, timeout_ms=500)},
    )
    assert not base.client_tools
    by_name = {d.name: d for d in config.client_tools}
    assert by_name["lookup"].description == "Look up an order."  # from the docstring
    assert json.loads(by_name["lookup"].parameters_json_schema) == {"type": "object"}
    assert json.loads(by_name["ping"].parameters_json_schema) == schema
    assert by_name["ping"].timeout_ms == 500
    assert set(tools) == {"lookup", "ping"}


def test_a_hand_written_declaration_wins() -> None:
    base = session_config()
    base.client_tools.add(name="lookup", description="mine")
    config, _ = declare_tools(base, {"lookup": lookup})
    assert [(d.name, d.description) for d in config.client_tools] == [("lookup", "mine")]


def test_invalid_tool_names_are_refused() -> None:
    with pytest.raises(ValueError, match="invalid tool name"):
        declare_tools(session_config(), {"9lives": lookup})


async def test_run_tool_sync_in_a_thread_async_on_the_loop_and_errors() -> None:
    threads: list[str] = []

    def sync_tool(args: dict[str, Any]) -> dict[str, Any]:
        threads.append(threading.current_thread().name)
        return {"n": args["n"] + 1}

    async def async_tool(args: dict[str, Any]) -> str:
        await asyncio.sleep(0)
        return "plain text"

    def broken(args: dict[str, Any]) -> None:
        raise KeyError("id")

    assert await run_tool(ClientTool(sync_tool), {"n": 1}) == ('{"n": 2}', False)
    assert threads and threads[0] != threading.current_thread().name
    assert await run_tool(ClientTool(async_tool), {}) == ("plain text", False)
    content, is_error = await run_tool(ClientTool(broken), {})
    assert is_error and json.loads(content) == {"error": "KeyError: 'id'"}
    unserialisable, is_error = await run_tool(ClientTool(lambda a: object()), {})
    assert is_error and "TypeError" in unserialisable
