"""Orchestra end to end on FakeModel: data flow, routing, usage, failures, budgets, swaps."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

import orchestra as oc

if TYPE_CHECKING:
    from tests.conftest import InFlight
from orchestra.testing import FakeModel, FakeReply, FakeRequest

pytestmark = pytest.mark.anyio

MEMO_PLAN = oc.Plan(
    tasks=[
        oc.Task(id="facts", agent="researcher", prompt="List facts about {topic}"),
        oc.Task(id="draft", agent="writer", prompt="Write a memo from:\n{facts}", after=["facts"]),
    ]
)


async def test_outputs_flow_into_placeholders_and_sink_is_output(
    fake: FakeModel, orch: oc.Orchestra
) -> None:
    """Inputs and dependency outputs fill the prompts; the sink's output is the answer."""
    fake.responses = {"researcher": "GPUs are parallel.", "writer": "MEMO"}
    result = await orch.execute(MEMO_PLAN, inputs={"topic": "GPUs"})
    assert result.output == "MEMO"
    assert result.status == "succeeded"
    assert fake.calls_for("facts")[0].prompt == "List facts about GPUs"
    assert fake.calls_for("draft")[0].prompt == "Write a memo from:\nGPUs are parallel."
    assert result.nodes["draft"].model == "mid"
    assert result.nodes["facts"].model == "fast"  # the default router: cheapest


async def test_cost_is_tokens_times_prices(fake: FakeModel, orch: oc.Orchestra) -> None:
    """Per node, per model and per run, cost is reported tokens times the spec's prices."""
    fake.responses = {
        "researcher": FakeReply("facts", input_tokens=1_000_000, output_tokens=500_000),
        "writer": FakeReply("memo", input_tokens=2_000_000, output_tokens=1_000_000),
    }
    result = await orch.execute(MEMO_PLAN, inputs={"topic": "x"})
    fast, mid = orch.models["fast"], orch.models["mid"]
    assert result.nodes["facts"].cost_usd == pytest.approx(
        1 * fast.input_cost + 0.5 * fast.output_cost
    )
    assert result.nodes["draft"].cost_usd == pytest.approx(2 * mid.input_cost + 1 * mid.output_cost)
    assert result.usage.cost_usd == pytest.approx(
        result.nodes["facts"].cost_usd + result.nodes["draft"].cost_usd
    )
    assert result.usage.by_model["mid"].input_tokens == 2_000_000
    assert result.usage.input_tokens == 3_000_000
    assert result.usage.calls == 2


async def test_several_sinks_are_joined_under_headings(fake: FakeModel, orch: oc.Orchestra) -> None:
    """With two sinks and no `output`, the answer joins both under their ids."""
    fake.handler = lambda r: f"out-{r.task_id}"
    plan = oc.Plan(
        tasks=[
            oc.Task(id="a", agent="researcher", prompt="x"),
            oc.Task(id="b", agent="researcher", prompt="y"),
        ]
    )
    result = await orch.execute(plan)
    assert result.output == "## a\n\nout-a\n\n## b\n\nout-b"


async def test_fast_chain_finishes_before_slow_sibling(fake: FakeModel, orch: oc.Orchestra) -> None:
    """No superstep barrier: a chain of quick nodes completes while a slow sibling still runs."""
    fake.handler = lambda r: FakeReply(
        r.task_id or "", latency=0.3 if r.task_id == "slow" else 0.01
    )
    plan = oc.Plan(
        tasks=[
            oc.Task(id="slow", agent="researcher", prompt="slow"),
            oc.Task(id="c1", agent="researcher", prompt="c1"),
            oc.Task(id="c2", agent="researcher", prompt="{c1}", after=["c1"]),
            oc.Task(id="c3", agent="researcher", prompt="{c2}", after=["c2"]),
            oc.Task(id="end", agent="researcher", prompt="{c3} {slow}", after=["c3", "slow"]),
        ]
    )
    result = await orch.execute(plan)
    assert result.nodes["c3"].finished < result.nodes["slow"].finished
    assert list(result.nodes)[:3] == ["c1", "c2", "c3"]


async def test_failed_node_keeps_finished_siblings(fake: FakeModel, orch: oc.Orchestra) -> None:
    """A failing node raises NodeFailed after in-flight siblings settle; their results are kept."""

    def answer(request: FakeRequest) -> FakeReply:
        if request.task_id == "bad":
            return FakeReply("", latency=0.01)  # empty content is an error
        return FakeReply("fine", latency=0.05)

    fake.handler = answer
    plan = oc.Plan(
        tasks=[
            oc.Task(id="bad", agent="researcher", prompt="x"),
            oc.Task(id="sibling", agent="researcher", prompt="y"),
            oc.Task(id="after_bad", agent="researcher", prompt="{bad}", after=["bad"]),
        ]
    )
    with pytest.raises(oc.NodeFailed, match=r"task 'bad' failed: .*empty content") as info:
        await orch.execute(plan)
    error = info.value
    assert error.task_id == "bad"
    assert error.result.nodes["sibling"].output == "fine"
    assert error.result.nodes["bad"].error is not None
    assert "after_bad" not in error.result.nodes
    assert isinstance(error.__cause__, oc.ModelError)
    assert error.result.status == "failed"


async def test_budget_stop_keeps_finished_nodes(fake: FakeModel, orch: oc.Orchestra) -> None:
    """Past max_usd no new node starts; BudgetExceeded carries the finished ones."""
    fake.responses = {"researcher": FakeReply("x", input_tokens=1_000_000, output_tokens=0)}
    plan = oc.Plan(
        tasks=[
            oc.Task(id="a", agent="researcher", prompt="a"),
            oc.Task(id="b", agent="researcher", prompt="{a}", after=["a"]),
            oc.Task(id="c", agent="researcher", prompt="{b}", after=["b"]),
        ]
    )
    with pytest.raises(oc.BudgetExceeded, match="max_usd") as info:
        await orch.execute(plan, budget=oc.Budget(max_usd=0.04))
    assert info.value.limit == "max_usd"
    assert list(info.value.result.nodes) == ["a"]
    assert info.value.result.status == "budget_exceeded"
    assert len(fake.calls) == 1


async def test_deadline_cancels_in_flight_and_keeps_finished(
    fake: FakeModel, orch: oc.Orchestra
) -> None:
    """max_seconds cancels calls in flight; nodes that finished are kept."""
    fake.handler = lambda r: FakeReply("x", latency=5.0 if r.task_id == "hang" else 0.0)
    plan = oc.Plan(
        tasks=[
            oc.Task(id="quick", agent="researcher", prompt="q"),
            oc.Task(id="hang", agent="researcher", prompt="h"),
        ]
    )
    with pytest.raises(oc.BudgetExceeded, match="max_seconds") as info:
        await orch.execute(plan, budget=oc.Budget(max_seconds=0.2))
    assert list(info.value.result.nodes) == ["quick"]


async def test_max_parallel_caps_nodes_in_flight(
    fake: FakeModel, team: list[oc.Agent], in_flight: InFlight
) -> None:
    """With max_parallel=2 no more than two nodes run at once, highest priority first."""
    from orchestra.testing import fake_constellation

    orch = oc.Orchestra(models=fake_constellation(fake), agents=team, max_parallel=2)
    plan = oc.Plan(tasks=[oc.Task(id=f"t{i}", agent="researcher", prompt="x") for i in range(6)])
    await orch.execute(plan)
    assert in_flight.peak == 2


async def test_hot_swap_mid_run_sends_later_calls_to_new_model(
    fake: FakeModel, orch: oc.Orchestra
) -> None:
    """A swap mid-run: the call in flight ends on the old spec, later calls use the new one."""
    other = FakeModel(responses={"researcher": "from-new"})

    def answer(request: FakeRequest) -> str:
        if request.task_id == "first":
            orch.models.swap(
                "fast", orch.models["fast"].model_copy(update={"model": other.model("fast")})
            )
        return "from-old"

    fake.handler = answer
    plan = oc.Plan(
        tasks=[
            oc.Task(id="first", agent="researcher", prompt="1"),
            oc.Task(id="second", agent="researcher", prompt="{first}", after=["first"]),
        ]
    )
    result = await orch.execute(plan)
    assert result.nodes["first"].output == "from-old"
    assert result.nodes["second"].output == "from-new"
    other.close()


async def test_invalid_plan_fails_before_any_call(fake: FakeModel, orch: oc.Orchestra) -> None:
    """A plan with an unknown agent raises PlanError and no model is called."""
    plan = oc.Plan(tasks=[oc.Task(id="a", agent="ghost", prompt="x")])
    with pytest.raises(oc.PlanError, match="unknown agent 'ghost'"):
        await orch.execute(plan)
    assert fake.calls == []


async def test_boss_plans_then_workers_execute(fake: FakeModel, orch: oc.Orchestra) -> None:
    """run(): the boss's JSON plan is validated and executed; its cost counts in the usage."""
    plan = {
        "tasks": [
            {"id": "facts", "agent": "researcher", "prompt": "Facts"},
            {"id": "memo", "agent": "writer", "prompt": "Memo: {facts}", "after": ["facts"]},
        ]
    }
    fake.responses = {"plan": f"```json\n{json.dumps(plan)}\n```", "researcher": "F", "writer": "M"}
    result = await orch.run("Write a memo")
    assert result.output == "M"
    assert result.plan is not None and [t.id for t in result.plan.tasks] == ["facts", "memo"]
    assert "boss" in result.usage.by_model
    boss_call = fake.calls_for("plan")[0]
    assert boss_call.prompt == "Write a memo"
    assert "researcher" in boss_call.messages[0]["content"]


async def test_boss_is_asked_again_with_the_errors(fake: FakeModel, orch: oc.Orchestra) -> None:
    """An invalid first plan goes back to the boss with numbered problems; the fixed one runs."""
    bad = {"tasks": [{"id": "a", "agent": "writr", "prompt": "x"}]}
    good = {"tasks": [{"id": "a", "agent": "writer", "prompt": "x"}]}
    fake.responses = {"plan": [json.dumps(bad), json.dumps(good)], "writer": "done"}
    events: list[oc.Event] = []
    orch = oc.Orchestra(
        models=orch.models, agents=list(orch.agents.values()), boss="boss", on_event=events.append
    )
    result = await orch.run("task")
    assert result.output == "done"
    retry = fake.calls_for("plan")[1].messages[-1]["content"]
    assert "1. task 'a' uses unknown agent 'writr'; did you mean 'writer'?" in retry
    assert [e.kind for e in events].count("plan_rejected") == 1


async def test_incurable_boss_ends_in_plan_error_with_attempts(
    fake: FakeModel, orch: oc.Orchestra
) -> None:
    """A boss that never answers JSON: PlanError holding every answer; no worker runs."""
    fake.responses = {"plan": "I would rather chat."}
    with pytest.raises(oc.PlanError, match="no valid plan in 2 attempts") as info:
        await orch.run("task")
    assert info.value.attempts == ("I would rather chat.", "I would rather chat.")
    assert all(c.agent == "plan" for c in fake.calls)


async def test_run_without_boss_is_config_error(fake: FakeModel, team: list[oc.Agent]) -> None:
    """run() on an Orchestra without a boss says how to fix it."""
    from orchestra.testing import fake_constellation

    orch = oc.Orchestra(models=fake_constellation(fake), agents=team)
    with pytest.raises(oc.ConfigError, match="no boss"):
        await orch.run("x")


async def test_events_of_a_run_in_order(fake: FakeModel, team: list[oc.Agent]) -> None:
    """A hand-written two-node plan emits the expected event sequence."""
    from orchestra.testing import fake_constellation

    events: list[oc.Event] = []
    orch = oc.Orchestra(models=fake_constellation(fake), agents=team, on_event=events.append)
    await orch.execute(MEMO_PLAN, inputs={"topic": "t"})
    assert [(e.kind, getattr(e, "task_id", None)) for e in events] == [
        ("run_started", None),
        ("plan_ready", None),
        ("node_started", "facts"),
        ("node_routed", "facts"),
        ("model_called", "facts"),
        ("node_finished", "facts"),
        ("node_started", "draft"),
        ("node_routed", "draft"),
        ("model_called", "draft"),
        ("node_finished", "draft"),
        ("run_finished", None),
    ]


def test_run_sync_inside_event_loop_is_refused(fake: FakeModel, orch: oc.Orchestra) -> None:
    """The sync bridge refuses to block a running event loop, and says to await instead."""
    import anyio

    async def inside() -> None:
        with pytest.raises(oc.OrchestraError, match="use `await run"):
            orch.run_sync("x")

    anyio.run(inside, backend="asyncio")


def test_config_errors_at_construction(fake: FakeModel) -> None:
    """Unknown boss, unknown pinned model and duplicate agents are caught up front."""
    from orchestra.testing import fake_constellation

    models = fake_constellation(fake)
    with pytest.raises(oc.ConfigError, match="boss 'chief' is not a model"):
        oc.Orchestra(models=models, boss="chief")
    with pytest.raises(oc.ConfigError, match="pinned to unknown model 'big'"):
        oc.Orchestra(models=models, agents=[oc.Agent(name="a", model="big")])
    with pytest.raises(oc.ConfigError, match="two agents are named 'a'"):
        oc.Orchestra(models=models, agents=[oc.Agent(name="a"), oc.Agent(name="a")])


async def test_deadline_leaves_no_stray_tasks(fake: FakeModel, orch: oc.Orchestra) -> None:
    """At the deadline every in-flight call is cancelled before execute() returns."""
    import anyio

    started: list[str] = []
    settled: list[str] = []

    async def hang(request: FakeRequest) -> str:
        started.append(request.task_id or "")
        try:
            await anyio.sleep(10)
        except anyio.get_cancelled_exc_class():
            settled.append(request.task_id or "")
            raise
        return "never"

    fake.handler = hang
    plan = oc.Plan(tasks=[oc.Task(id=f"h{i}", agent="researcher", prompt="x") for i in range(3)])
    with pytest.raises(oc.BudgetExceeded):
        await orch.execute(plan, budget=oc.Budget(max_seconds=0.05))
    # How many calls start within 0.05 s depends on the machine's load; each one that did must
    # have been cancelled, none left running.
    assert sorted(settled) == sorted(started)
