"""ToolRunner: validation, outcomes, timeouts, cancellation, concurrency, client tools."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import pytest

from sonicwire.server.testing.tools import DispatchRecorder, ManualClock, OutcomeRecorder
from sonicwire.server.tools import (
    Tool,
    ToolContext,
    ToolError,
    ToolExecutor,
    ToolInvocation,
    ToolRegistry,
    ToolRunner,
    ToolSpec,
    ToolSpecError,
    ToolStatus,
    tool,
)

TEXT_SCHEMA = {
    "type": "object",
    "properties": {"text": {"type": "string", "minLength": 1}},
    "required": ["text"],
    "additionalProperties": False,
}


class Harness:
    """Test tools with observable side effects, a registry and a runner factory."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.never = asyncio.Event()  # never set: handlers waiting on it only end by cancel
        self.release = asyncio.Event()
        self.entered: list[str] = []
        self.cancelled: list[str] = []
        self.running = 0
        self.max_running = 0
        self.clock = ManualClock(100.0)
        self.outcomes = OutcomeRecorder()
        self.dispatches = DispatchRecorder()
        h = self

        @tool(description="Echo the text back.", parameters=TEXT_SCHEMA)
        async def echo(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
            h.calls.append(("echo", args))
            return {"text": args["text"], "call_id": ctx.call_id, "session": ctx.session_id}

        @tool(description="Wait forever.", timeout_s=30)
        async def hang(args: dict[str, Any], ctx: ToolContext) -> None:
            h.entered.append(ctx.call_id)
            try:
                await h.never.wait()
            except asyncio.CancelledError:
                h.cancelled.append(ctx.call_id)
                raise

        @tool(description="Wait forever, with a tiny timeout.", timeout_s=0.01)
        async def hang_briefly(args: dict[str, Any], ctx: ToolContext) -> None:
            try:
                await h.never.wait()
            except asyncio.CancelledError:
                h.cancelled.append(ctx.call_id)
                raise

        @tool(description="Count concurrent runs, wait for release.")
        async def gate(args: dict[str, Any], ctx: ToolContext) -> str:
            h.running += 1
            h.max_running = max(h.max_running, h.running)
            h.entered.append(ctx.call_id)
            try:
                await h.release.wait()
            finally:
                h.running -= 1
            return "done"

        @tool(description="Raise an unexpected exception.")
        async def boom(args: dict[str, Any], ctx: ToolContext) -> None:
            raise RuntimeError("disk on fire")

        @tool(description="Raise a tool error.")
        async def refuse(args: dict[str, Any], ctx: ToolContext) -> None:
            raise ToolError("Not allowed today.", type="forbidden", details={"retry": False})

        @tool(description="Return something that is not JSON.")
        async def unjsonable(args: dict[str, Any], ctx: ToolContext) -> object:
            return object()

        @tool(description="Take 1.5 s by the manual clock.")
        async def slow_clock(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
            h.clock.advance(1.5)
            return {}

        @tool(description="Return a long text.")
        async def big(args: dict[str, Any], ctx: ToolContext) -> str:
            return "x" * 500

        self.registry = ToolRegistry(
            [echo, hang, hang_briefly, gate, boom, refuse, unjsonable, slow_clock, big]
        )
        self.client_tools = [
            ToolSpec(
                name="lookup_customer",
                description="Look up a customer in the caller's CRM.",
                parameters={
                    "type": "object",
                    "properties": {"email": {"type": "string", "format": "email"}},
                    "required": ["email"],
                },
                executor=ToolExecutor.CLIENT,
            ),
            ToolSpec(
                name="slow_client",
                description="A client tool nobody answers.",
                parameters={"type": "object"},
                executor=ToolExecutor.CLIENT,
                timeout_s=0.01,
            ),
        ]

    def runner(self, **kwargs: Any) -> ToolRunner:
        kwargs.setdefault("on_outcome", self.outcomes)
        kwargs.setdefault("on_dispatch", self.dispatches)
        kwargs.setdefault("clock", self.clock)
        kwargs.setdefault("session_id", "sess-1")
        return ToolRunner(self.registry, self.client_tools, **kwargs)


@pytest.fixture
def h() -> Harness:
    return Harness()


async def spin(rounds: int = 20) -> None:
    """Let scheduled tasks run without waiting on wall-clock time."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def error_of(result_json: str) -> dict[str, Any]:
    value = json.loads(result_json)
    assert set(value) == {"error"}
    error: dict[str, Any] = value["error"]
    assert isinstance(error["type"], str) and isinstance(error["message"], str)
    return error


async def test_valid_arguments_run_the_handler(h: Harness) -> None:
    async with h.runner() as runner:
        runner.start(ToolInvocation("c1", "echo", '{"text": "hi"}'))
        outcome = await h.outcomes.wait_for("c1")
    assert outcome.status is ToolStatus.OK and outcome.ok
    assert json.loads(outcome.result_json) == {"text": "hi", "call_id": "c1", "session": "sess-1"}
    assert outcome.error == "" and outcome.name == "echo"
    assert h.calls == [("echo", {"text": "hi"})]
    [dispatch] = h.dispatches.dispatches
    assert (dispatch.call_id, dispatch.executor, dispatch.timeout_s) == (
        "c1",
        ToolExecutor.SERVER,
        10.0,
    )


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ('{"text": 5}', "is not of type 'string'"),
        ("{}", "'text' is a required property"),
        ('{"text": ""}', "should be non-empty"),
        ('{"text": "a", "extra": 1}', "Additional properties"),
        ("{not json", "not valid JSON"),
        ('["text"]', "must be a JSON object"),
        ('{"text": NaN}', "not valid JSON"),
    ],
)
async def test_invalid_arguments_never_reach_the_handler(
    h: Harness, arguments: str, fragment: str
) -> None:
    async with h.runner() as runner:
        runner.start(ToolInvocation("c1", "echo", arguments))
        # Settled synchronously: no await needed.
        [outcome] = h.outcomes.outcomes
    assert outcome.status is ToolStatus.INVALID_ARGUMENTS
    error = error_of(outcome.result_json)
    assert error["type"] == "invalid_arguments"
    assert fragment in outcome.error
    assert error["details"]["errors"]
    assert h.calls == [] and h.dispatches.dispatches == []


async def test_format_is_checked(h: Harness) -> None:
    async with h.runner() as runner:
        runner.start(ToolInvocation("c1", "lookup_customer", '{"email": "not an email"}'))
    [outcome] = h.outcomes.outcomes
    assert outcome.status is ToolStatus.INVALID_ARGUMENTS
    assert "is not a 'email'" in outcome.error


async def test_empty_arguments_count_as_an_empty_object(h: Harness) -> None:
    async with h.runner() as runner:
        runner.start(ToolInvocation("c1", "big", ""))
        outcome = await h.outcomes.wait_for("c1")
    assert outcome.status is ToolStatus.OK


async def test_unknown_tool(h: Harness) -> None:
    async with h.runner() as runner:
        runner.start(ToolInvocation("c1", "launch_rockets", "{}"))
    [outcome] = h.outcomes.outcomes
    assert outcome.status is ToolStatus.UNKNOWN_TOOL
    error = error_of(outcome.result_json)
    assert error["type"] == "unknown_tool"
    assert "echo" in error["details"]["available_tools"]


async def test_handler_exception_becomes_an_error_outcome(h: Harness) -> None:
    async with h.runner() as runner:
        runner.start(ToolInvocation("c1", "boom", "{}"))
        outcome = await h.outcomes.wait_for("c1")
    assert outcome.status is ToolStatus.ERROR
    assert "disk on fire" in outcome.error
    assert error_of(outcome.result_json)["type"] == "tool_error"


async def test_tool_error_keeps_its_type_and_details(h: Harness) -> None:
    async with h.runner() as runner:
        runner.start(ToolInvocation("c1", "refuse", "{}"))
        outcome = await h.outcomes.wait_for("c1")
    assert outcome.status is ToolStatus.ERROR
    assert error_of(outcome.result_json) == {
        "type": "forbidden",
        "message": "Not allowed today.",
        "details": {"retry": False},
    }


async def test_results_that_are_not_json_or_too_large_are_errors(h: Harness) -> None:
    async with h.runner(max_result_chars=100) as runner:
        runner.start(ToolInvocation("c1", "unjsonable", "{}"))
        runner.start(ToolInvocation("c2", "big", "{}"))
        await h.outcomes.wait_count(2)
    by_id = {o.call_id: o for o in h.outcomes.outcomes}
    assert by_id["c1"].status is ToolStatus.ERROR
    assert "not JSON" in by_id["c1"].error
    assert error_of(by_id["c2"].result_json)["type"] == "result_too_large"


async def test_duration_uses_the_injected_clock(h: Harness) -> None:
    async with h.runner() as runner:
        runner.start(ToolInvocation("c1", "slow_clock", "{}"))
        outcome = await h.outcomes.wait_for("c1")
    assert outcome.duration_s == 1.5


async def test_timeout(h: Harness) -> None:
    async with h.runner() as runner:
        runner.start(ToolInvocation("c1", "hang_briefly", "{}"))
        outcome = await h.outcomes.wait_for("c1")
        assert outcome.status is ToolStatus.TIMEOUT
        assert error_of(outcome.result_json)["type"] == "timeout"
        assert runner.pending == []
    # The handler was cancelled and unwound before aclose returned.
    assert h.cancelled == ["c1"]
    assert len(h.outcomes.outcomes) == 1


async def test_timeout_is_capped_by_max_timeout(h: Harness) -> None:
    async with h.runner(max_timeout_s=0.01) as runner:
        spec = runner.spec("hang")
        assert spec is not None and runner.timeout_for(spec) == 0.01
        runner.start(ToolInvocation("c1", "hang", "{}"))
        outcome = await h.outcomes.wait_for("c1")
    assert outcome.status is ToolStatus.TIMEOUT


async def test_cancel_gives_exactly_one_cancelled_outcome(h: Harness) -> None:
    runner = h.runner()
    runner.start(ToolInvocation("c1", "hang", "{}"))
    await spin()
    assert h.entered == ["c1"]
    assert runner.cancel("c1", "barge-in") is True
    # Settled at once, before the handler has even seen the cancellation.
    [outcome] = h.outcomes.outcomes
    assert outcome.status is ToolStatus.CANCELLED
    assert outcome.error == "barge-in"
    error = error_of(outcome.result_json)
    assert error["type"] == "cancelled" and "barge-in" in error["message"]
    assert runner.cancel("c1", "again") is False
    await runner.aclose()
    assert h.cancelled == ["c1"]
    assert len(h.outcomes.outcomes) == 1


async def test_cancel_all_covers_running_queued_and_client_calls(h: Harness) -> None:
    runner = h.runner(max_concurrent=1)
    runner.start(ToolInvocation("run", "hang", "{}"))
    runner.start(ToolInvocation("queued", "hang", "{}"))
    runner.start(ToolInvocation("client", "lookup_customer", '{"email": "a@example.com"}'))
    await spin()
    assert h.entered == ["run"]  # the second waits for the only slot
    assert sorted(runner.pending) == ["client", "queued", "run"]
    assert runner.cancel_all("session end") == 3
    await runner.aclose()
    statuses = {o.call_id: o.status for o in h.outcomes.outcomes}
    assert statuses == dict.fromkeys(["run", "queued", "client"], ToolStatus.CANCELLED)
    assert len(h.outcomes.outcomes) == 3
    assert h.entered == ["run"]  # the queued call never started
    assert runner.deliver_client_result("client", "{}", False) is False
    others = asyncio.all_tasks() - {asyncio.current_task()}
    assert not [t for t in others if t.get_name().startswith(("tool ", "handler "))]


async def test_aclose_cancels_pending_calls_and_refuses_new_ones(h: Harness) -> None:
    runner = h.runner()
    runner.start(ToolInvocation("c1", "hang", "{}"))
    await spin()
    await runner.aclose()
    assert [o.status for o in h.outcomes.outcomes] == [ToolStatus.CANCELLED]
    assert h.cancelled == ["c1"]
    runner.start(ToolInvocation("c2", "echo", '{"text": "late"}'))
    assert h.outcomes.outcomes[-1].call_id == "c2"
    assert h.outcomes.outcomes[-1].status is ToolStatus.CANCELLED
    assert h.calls == []


async def test_concurrency_is_bounded(h: Harness) -> None:
    async with h.runner(max_concurrent=2) as runner:
        for i in range(6):
            runner.start(ToolInvocation(f"g{i}", "gate", "{}"))
        await spin()
        assert h.running == 2
        assert h.entered == ["g0", "g1"]  # first come, first served
        h.release.set()
        outcomes = await h.outcomes.wait_count(6)
    assert h.max_running == 2
    assert {o.status for o in outcomes} == {ToolStatus.OK}
    assert h.entered == [f"g{i}" for i in range(6)]


async def test_duplicate_pending_call_id_is_ignored(h: Harness) -> None:
    async with h.runner() as runner:
        runner.start(ToolInvocation("c1", "hang", "{}"))
        runner.start(ToolInvocation("c1", "echo", '{"text": "x"}'))
        await spin()
        assert h.calls == []
    assert [o.call_id for o in h.outcomes.outcomes] == ["c1"]


async def test_a_failing_callback_does_not_break_the_runner(h: Harness) -> None:
    seen: list[str] = []

    def bad_callback(outcome: Any) -> None:
        seen.append(outcome.call_id)
        raise RuntimeError("callback bug")

    async with h.runner(on_outcome=bad_callback) as runner:
        runner.start(ToolInvocation("c1", "launch_rockets", "{}"))
        runner.start(ToolInvocation("c2", "echo", '{"text": "x"}'))
        await spin()
    assert seen == ["c1", "c2"]


async def test_context_extras_reach_the_handler() -> None:
    seen: list[ToolContext] = []

    @tool(description="Capture the context.")
    async def capture(args: dict[str, Any], ctx: ToolContext) -> None:
        seen.append(ctx)

    outcomes = OutcomeRecorder()
    runner = ToolRunner(
        ToolRegistry([capture]),
        on_outcome=outcomes,
        session_id="s9",
        context_extras={"caller": "svc-a"},
    )
    async with runner:
        runner.start(ToolInvocation("c1", "capture", "{}"))
        await outcomes.wait_for("c1")
    [ctx] = seen
    assert (ctx.session_id, ctx.call_id, ctx.name, ctx.timeout_s) == ("s9", "c1", "capture", 10.0)
    assert ctx.extras["caller"] == "svc-a"


def test_client_tools_must_not_shadow_server_tools(h: Harness) -> None:
    shadow = ToolSpec(
        name="echo",
        description="Client echo.",
        parameters={"type": "object"},
        executor=ToolExecutor.CLIENT,
    )
    with pytest.raises(ToolSpecError, match="name of a server tool"):
        ToolRunner(h.registry, [shadow], on_outcome=h.outcomes)


def test_limits_must_be_positive(h: Harness) -> None:
    with pytest.raises(ValueError):
        ToolRunner(h.registry, on_outcome=h.outcomes, max_concurrent=0)
    with pytest.raises(ValueError):
        ToolRunner(h.registry, on_outcome=h.outcomes, default_timeout_s=0)


def test_start_needs_a_running_loop(h: Harness) -> None:
    runner = ToolRunner(h.registry, on_outcome=h.outcomes)
    with pytest.raises(RuntimeError):
        runner.start(ToolInvocation("c1", "echo", '{"text": "x"}'))
    assert h.outcomes.outcomes == []


# -- client-executed tools -----------------------------------------------------------------


async def test_client_tool_round_trip(h: Harness) -> None:
    async with h.runner() as runner:
        runner.start(ToolInvocation("c1", "lookup_customer", '{"email": "ada@example.com"}'))
        [dispatch] = h.dispatches.dispatches
        assert dispatch.executor is ToolExecutor.CLIENT
        assert dispatch.arguments_json == '{"email": "ada@example.com"}'
        assert h.outcomes.outcomes == []
        h.clock.advance(0.25)
        assert runner.deliver_client_result("c1", '{"name": "Ada", "tier": "gold"}', False)
        [outcome] = h.outcomes.outcomes
    assert outcome.status is ToolStatus.OK
    assert json.loads(outcome.result_json) == {"name": "Ada", "tier": "gold"}
    assert outcome.duration_s == 0.25


async def test_client_content_that_is_not_json_is_wrapped_as_a_string(h: Harness) -> None:
    async with h.runner() as runner:
        runner.start(ToolInvocation("c1", "lookup_customer", '{"email": "ada@example.com"}'))
        assert runner.deliver_client_result("c1", "Ada Lovelace, gold tier", False)
    [outcome] = h.outcomes.outcomes
    assert outcome.status is ToolStatus.OK
    assert json.loads(outcome.result_json) == "Ada Lovelace, gold tier"


@pytest.mark.parametrize(
    ("content", "message", "details"),
    [
        ("CRM is down", "CRM is down", None),
        ('"CRM is down"', "CRM is down", None),
        ('{"code": 503}', "The client reported an error running lookup_customer.", {"code": 503}),
    ],
)
async def test_client_error(h: Harness, content: str, message: str, details: Any) -> None:
    async with h.runner() as runner:
        runner.start(ToolInvocation("c1", "lookup_customer", '{"email": "ada@example.com"}'))
        assert runner.deliver_client_result("c1", content, True)
    [outcome] = h.outcomes.outcomes
    assert outcome.status is ToolStatus.ERROR
    error = error_of(outcome.result_json)
    assert error["type"] == "tool_error" and error["message"] == message
    assert error.get("details") == details


async def test_a_long_client_error_is_cut_in_the_log_not_for_the_model(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    # Red-team session (s23): the whole error text (up to the 64 KiB result limit) went into
    # one INFO line per failed call.
    caplog.set_level(logging.INFO, logger="sonicwire.server.tools.runner")
    text = "CRM is down. " * 5000
    async with h.runner() as runner:
        runner.start(ToolInvocation("c1", "lookup_customer", '{"email": "ada@example.com"}'))
        assert runner.deliver_client_result("c1", text, True)
    [outcome] = h.outcomes.outcomes
    assert error_of(outcome.result_json)["message"] == text  # the model gets all of it
    [line] = [r.getMessage() for r in caplog.records if "lookup_customer" in r.getMessage()]
    assert len(line) < 500 and line.endswith("...")


async def test_unknown_duplicate_and_misdirected_deliveries_return_false(h: Harness) -> None:
    async with h.runner() as runner:
        assert runner.deliver_client_result("nope", "{}", False) is False
        runner.start(ToolInvocation("c1", "lookup_customer", '{"email": "ada@example.com"}'))
        assert runner.deliver_client_result("c1", "{}", False) is True
        assert runner.deliver_client_result("c1", "{}", False) is False
        runner.start(ToolInvocation("s1", "hang", "{}"))
        assert runner.deliver_client_result("s1", "{}", False) is False  # a server call
    assert [o.call_id for o in h.outcomes.outcomes] == ["c1", "s1"]


async def test_invalid_arguments_for_a_client_tool_are_not_dispatched(h: Harness) -> None:
    async with h.runner() as runner:
        runner.start(ToolInvocation("c1", "lookup_customer", '{"mail": "ada@example.com"}'))
        assert h.dispatches.dispatches == []
        assert runner.deliver_client_result("c1", "{}", False) is False
    [outcome] = h.outcomes.outcomes
    assert outcome.status is ToolStatus.INVALID_ARGUMENTS


async def test_a_client_that_never_answers_times_out(h: Harness) -> None:
    async with h.runner() as runner:
        runner.start(ToolInvocation("c1", "slow_client", "{}"))
        outcome = await h.outcomes.wait_for("c1")
        assert outcome.status is ToolStatus.TIMEOUT
        assert error_of(outcome.result_json)["type"] == "timeout"
        # The late answer is refused, and the runner keeps working.
        assert runner.deliver_client_result("c1", "{}", False) is False
        runner.start(ToolInvocation("c2", "echo", '{"text": "still here"}'))
        assert (await h.outcomes.wait_for("c2")).status is ToolStatus.OK
    assert len(h.outcomes.for_call("c1")) == 1


async def test_dispatch_callback_may_answer_a_client_call_synchronously(h: Harness) -> None:
    holder: list[ToolRunner] = []

    def answer(dispatch: Any) -> None:
        holder[0].deliver_client_result(dispatch.call_id, '{"ok": true}', False)

    runner = h.runner(on_dispatch=answer)
    holder.append(runner)
    async with runner:
        runner.start(ToolInvocation("c1", "lookup_customer", '{"email": "ada@example.com"}'))
        await spin()
    assert [o.status for o in h.outcomes.outcomes] == [ToolStatus.OK]


def test_tool_rejects_sync_handlers_and_client_specs() -> None:
    def sync_handler(args: dict[str, Any], ctx: ToolContext) -> None:
        return None

    spec = ToolSpec(name="t", description="d", parameters={"type": "object"})
    with pytest.raises(ToolSpecError, match="async"):
        Tool(spec=spec, handler=sync_handler)  # type: ignore[arg-type]
    client = ToolSpec(
        name="t", description="d", parameters={"type": "object"}, executor=ToolExecutor.CLIENT
    )

    async def handler(args: dict[str, Any], ctx: ToolContext) -> None:
        return None

    with pytest.raises(ToolSpecError, match="client tools"):
        Tool(spec=client, handler=handler)


async def test_handlers_that_resist_cancellation(caplog: pytest.LogCaptureFixture) -> None:
    done = asyncio.Event()
    never = asyncio.Event()

    @tool(description="Swallow the cancellation and return anyway.")
    async def swallow(args: dict[str, Any], ctx: ToolContext) -> str:
        with contextlib.suppress(asyncio.CancelledError):
            await never.wait()
        return "finished anyway"

    @tool(description="Ignore cancellation until told to stop.")
    async def stubborn(args: dict[str, Any], ctx: ToolContext) -> None:
        while not done.is_set():
            try:
                await done.wait()
            except asyncio.CancelledError:
                continue

    outcomes = OutcomeRecorder()
    runner = ToolRunner(ToolRegistry([swallow, stubborn]), on_outcome=outcomes)
    runner.start(ToolInvocation("a", "swallow", "{}"))
    runner.start(ToolInvocation("b", "stubborn", "{}"))
    await spin()
    await runner.aclose(grace_s=0.01)
    # One CANCELLED outcome each, whatever the handlers did with the cancellation.
    assert [(o.call_id, o.status) for o in outcomes.outcomes] == [
        ("a", ToolStatus.CANCELLED),
        ("b", ToolStatus.CANCELLED),
    ]
    assert "still running" in caplog.text
    done.set()
    await spin()


async def test_server_tools_not_offered_to_the_session_are_unknown(h: Harness) -> None:
    async with h.runner(server_tools=["echo"]) as runner:
        assert [s.name for s in runner.specs] == ["echo", "lookup_customer", "slow_client"]
        runner.start(ToolInvocation("c1", "boom", "{}"))
    [outcome] = h.outcomes.outcomes
    assert outcome.status is ToolStatus.UNKNOWN_TOOL
