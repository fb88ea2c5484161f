"""ToolSpec: the neutral description validates itself."""

from __future__ import annotations

from typing import Any

import pytest

from sonicwire.server.tools import ToolExecutor, ToolSpec, ToolSpecError

OBJ = {"type": "object", "properties": {"q": {"type": "string"}}}


@pytest.mark.parametrize("name", ["a", "get_weather", "Tool-2", "x" * 64])
def test_good_names(name: str) -> None:
    assert ToolSpec(name=name, description="d", parameters=OBJ).name == name


@pytest.mark.parametrize("name", ["", "2fast", "_private", "has space", "dot.name", "x" * 65, "é"])
def test_bad_names(name: str) -> None:
    with pytest.raises(ToolSpecError, match="must match"):
        ToolSpec(name=name, description="d", parameters=OBJ)


@pytest.mark.parametrize(
    ("parameters", "fragment"),
    [
        ([], "must be a JSON schema object"),
        ({"type": "string"}, '"type": "object"'),
        ({"properties": {}}, '"type": "object"'),
        ({"type": "object", "properties": {"q": {"type": "strang"}}}, "not a valid JSON schema"),
        ({"type": "object", "required": "q"}, "not a valid JSON schema"),
        ({"type": "object", "default": float("nan")}, "not plain JSON"),
        ({"type": "object", "default": {1, 2}}, "not plain JSON"),
    ],
)
def test_bad_schemas(parameters: object, fragment: str) -> None:
    with pytest.raises(ToolSpecError, match=fragment):
        ToolSpec(name="t", description="d", parameters=parameters)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"description": None}, "description"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"timeout_s": float("inf")}, "timeout_s"),
        ({"timeout_s": True}, "timeout_s"),
        ({"executor": "robot"}, "executor"),
        ({"keywords": ("ok", "")}, "keywords"),
    ],
)
def test_bad_fields(kwargs: dict[str, object], fragment: str) -> None:
    fields: dict[str, object] = {"name": "t", "description": "d", "parameters": OBJ}
    fields.update(kwargs)
    with pytest.raises(ToolSpecError, match=fragment):
        ToolSpec(**fields)  # type: ignore[arg-type]


def test_spec_copies_its_schema_and_coerces_fields() -> None:
    schema: dict[str, Any] = {"type": "object", "properties": {"q": {"type": "string"}}}
    spec = ToolSpec(name="t", description="d", parameters=schema, executor="client", timeout_s=3)  # type: ignore[arg-type]
    schema["properties"]["q"]["type"] = "integer"
    assert spec.parameters["properties"]["q"]["type"] == "string"
    assert spec.executor is ToolExecutor.CLIENT
    assert spec.timeout_s == 3.0 and isinstance(spec.timeout_s, float)
    assert hash(spec) == hash(
        ToolSpec(
            name="t", description="d", parameters=OBJ, executor=ToolExecutor.CLIENT, timeout_s=3.0
        )
    )


def test_from_json() -> None:
    spec = ToolSpec.from_json("crm_lookup", "Look up.", '{"type": "object", "required": []}')
    assert spec.executor is ToolExecutor.CLIENT
    assert spec.parameters == {"type": "object", "required": []}
    assert ToolSpec.from_json("t", "d", "").parameters == {"type": "object", "properties": {}}
    with pytest.raises(ToolSpecError, match="not valid JSON"):
        ToolSpec.from_json("t", "d", "{oops")


def test_validate_arguments_reports_paths() -> None:
    spec = ToolSpec(
        name="t",
        description="d",
        parameters={
            "type": "object",
            "properties": {"items": {"type": "array", "items": {"type": "integer"}}},
        },
    )
    assert spec.validate_arguments({"items": [1, 2]}) == []
    [problem] = spec.validate_arguments({"items": [1, "two"]})
    assert problem.startswith("$.items[1]: ")


CITY = {"type": "object", "properties": {"city": {"type": "string"}}}


def test_examples_and_answer_are_kept_normalised() -> None:
    spec = ToolSpec(
        name="weather",
        description="d",
        parameters=CITY,
        examples=["what's the  weather in {city}", "weather"],
        answer=" It is {sky} in {city}. ",
    )
    assert spec.examples == ("what's the weather in {city}", "weather")
    assert spec.answer == "It is {sky} in {city}."


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"examples": "weather in {city}"}, "list of strings"),
        ({"examples": ["weather in {town}"]}, "not a property"),
        ({"examples": ["weather in {city"]}, "unbalanced"),
        ({"examples": ["weather in {}"]}, "unbalanced"),
        ({"examples": [""]}, "non-empty"),
        ({"examples": ["x" * 201]}, "longer than 200"),
        ({"examples": ["weather"] * 101}, "at most 100"),
        ({"answer": "It is {sky"}, "unbalanced"),
        ({"answer": "x" * 501}, "longer than 500"),
        ({"answer": 3}, "must be a string"),
    ],
)
def test_bad_examples_and_answers(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ToolSpecError, match=fragment):
        ToolSpec(name="weather", description="d", parameters=CITY, **kwargs)  # type: ignore[arg-type]


def test_client_declarations_carry_examples_and_answer() -> None:
    from sonicwire.server import convert
    from sonicwire.server.core.errors import ProtocolError
    from sonicwire.v1 import voice_service_pb2 as pb

    definition = pb.ToolDefinition(
        name="weather",
        parameters_json_schema='{"type": "object", "properties": {"city": {"type": "string"}}}',
        examples=["weather in {city}"],
        answer_template="It is {sky}.",
    )
    (spec,) = convert.client_tools_from_config(pb.SessionConfig(client_tools=[definition]))
    assert (spec.examples, spec.answer) == (("weather in {city}",), "It is {sky}.")
    definition.examples.append("weather in {town}")
    with pytest.raises(ProtocolError, match="not a property"):
        convert.client_tools_from_config(pb.SessionConfig(client_tools=[definition]))


@pytest.mark.parametrize(
    ("count", "example_chars", "answer_chars", "accepted"),
    [
        (100, 200, 500, True),  # the caps of ToolSpec, the proto comment and docs/tools.md
        (101, 20, 10, False),
        (1, 201, 10, False),
        (1, 20, 501, False),
    ],
)
def test_client_tool_caps_are_the_tool_spec_caps(
    count: int, example_chars: int, answer_chars: int, accepted: bool
) -> None:
    """The config's shape check and `ToolSpec` apply one rule: a client tool at the caps
    passes both, one over is refused by the shape check (before any parse) and by the spec."""
    from sonicwire.server import convert
    from sonicwire.server.core.errors import ProtocolError
    from sonicwire.server.tools import spec as spec_module
    from sonicwire.server.validate import ConfigLimits, check_config_shape
    from sonicwire.v1 import voice_service_pb2 as pb

    example = ("weather in {city} " + "x" * example_chars)[:example_chars]
    definition = pb.ToolDefinition(
        name="weather",
        parameters_json_schema='{"type": "object", "properties": {"city": {"type": "string"}}}',
        examples=[example] * count,
        answer_template="a" * answer_chars,
    )
    config = pb.SessionConfig(client_tools=[definition])
    if accepted:
        check_config_shape(config, ConfigLimits())
        (spec,) = convert.client_tools_from_config(config)
        assert (len(spec.examples), len(spec.answer)) == (count, answer_chars)
        return
    with pytest.raises(ProtocolError) as shape:
        check_config_shape(config, ConfigLimits())
    assert shape.value.reason == "CLIENT_TOOL_INVALID"
    with pytest.raises(ToolSpecError):
        ToolSpec(
            name="weather",
            description="d",
            parameters=CITY,
            examples=tuple(definition.examples),
            answer=definition.answer_template,
        )
    assert (spec_module.MAX_EXAMPLES, spec_module.MAX_EXAMPLE_CHARS) == (100, 200)


def test_continue_on_interruption_is_declared_by_the_author() -> None:
    from sonicwire.server.convert import client_tools_from_config, settings_from_config
    from sonicwire.server.tools import tool
    from sonicwire.v1 import voice_service_pb2 as pb

    assert ToolSpec(name="t", description="d", parameters=OBJ).continue_on_interruption is False

    @tool(description="Slow.", continue_on_interruption=True)
    async def slow(args: dict[str, Any], ctx: object) -> str:
        return "done"

    assert slow.spec.continue_on_interruption is True
    with pytest.raises(ToolSpecError, match="continue_on_interruption must be True or False"):
        ToolSpec(name="t", description="d", parameters=OBJ, continue_on_interruption="yes")  # type: ignore[arg-type]
    # A client's declaration carries it into its spec and the session's settings.
    config = pb.SessionConfig(
        client_tools=[
            pb.ToolDefinition(name="keeps", continue_on_interruption=True),
            pb.ToolDefinition(name="cancels"),
        ]
    )
    specs = client_tools_from_config(config)
    assert [s.continue_on_interruption for s in specs] == [True, False]
    assert settings_from_config(config, specs).tools_surviving_interruption == {"keeps"}
