"""The one door for model calls: budgets by reservation, usage settlement, unpriced models,
rate limits as scheduler input, and the boss through the same door."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

import orchestra as oc
from orchestra.events import BudgetStopped, ModelCalled, RateLimited, RunFinished
from orchestra.models.tokens import prompt_tokens
from orchestra.testing import (
    Error,
    FakeFailure,
    FakeModel,
    FakeReply,
    FakeRequest,
    OpenAICompatibleServer,
    Reply,
)

pytestmark = pytest.mark.anyio

KEY = "sk-test"


def spec(server: OpenAICompatibleServer, name: str, **fields: object) -> oc.ModelSpec:
    fields.setdefault("input_cost", 1.0)
    fields.setdefault("output_cost", 1.0)
    return oc.ModelSpec(
        name=name, model=f"openai/{name}", api_base=server.url, api_key=KEY, **fields
    )  # type: ignore[arg-type]


def tasks(count: int) -> oc.Plan:
    return oc.Plan(tasks=[oc.Task(id=f"t{i:02}", agent="w", prompt=f"p{i}") for i in range(count)])


def costing(usd: float, *, price: float = 1.0) -> Reply:
    """An answer the server reports as costing `usd` at `price` USD per 1M input tokens."""
    return Reply("x", input_tokens=round(usd / price * 1_000_000), output_tokens=0)


@pytest.mark.parametrize(("count", "each", "cap"), [(10, 2.0, 1), (40, 1.0, 4)])
async def test_a_usd_budget_holds_under_a_per_model_cap(count: int, each: float, cap: int) -> None:
    """The budget holds where calls wait: at most one wave of calls sent before the first
    answer taught the door what a call costs, never every queued call."""
    with OpenAICompatibleServer(api_key=KEY, default=costing(each)) as server:
        orch = oc.Orchestra(
            models=[spec(server, "m", max_concurrency=cap)], agents=[oc.Agent(name="w")]
        )
        with pytest.raises(oc.BudgetExceeded) as info:
            await orch.execute(tasks(count), budget=oc.Budget(max_usd=5.0))
        sent = len(server.requests)
    result = info.value.result
    assert sent < count
    assert result.cost_usd == pytest.approx(sent * each)
    # Overshoot is bounded by estimation error: only the first wave was sent blind.
    assert result.cost_usd <= 5.0 + cap * each
    assert all(n.ok for n in result.nodes.values())
    assert len(result.nodes) == sent


async def test_honest_estimates_never_overshoot(fake: FakeModel) -> None:
    """With max_tokens set and usage no larger than estimated, spending never passes max_usd,
    whatever the concurrency."""
    fake.handler = lambda request: FakeReply("x" * 40, input_tokens=1, output_tokens=10)
    models = oc.Constellation(
        [
            oc.ModelSpec(
                name="m",
                model=fake.model("m"),
                input_cost=1000.0,
                output_cost=1000.0,
                litellm_params={"max_tokens": 10},
            )
        ]
    )
    orch = oc.Orchestra(models=models, agents=[oc.Agent(name="w")])
    with pytest.raises(oc.BudgetExceeded):
        await orch.execute(tasks(50), budget=oc.Budget(max_usd=0.1))
    assert len(fake.calls) * 11 * 1000 / 1e6 <= 0.1 + 1e-12


async def test_an_unpriced_model_is_refused_under_a_usd_budget(fake: FakeModel) -> None:
    """A model with no price is unknown, not free: under max_usd the call is never sent."""
    models = oc.Constellation([oc.ModelSpec(name="local", model=fake.model("local"))])
    orch = oc.Orchestra(models=models, agents=[oc.Agent(name="w")])
    with pytest.raises(oc.NodeFailed) as info:
        await orch.execute(tasks(1), budget=oc.Budget(max_usd=1.0))
    assert isinstance(info.value.__cause__, oc.ConfigError)
    assert "input_cost and output_cost" in str(info.value.__cause__)
    assert fake.calls == []
    free = oc.ModelSpec(name="local", model=fake.model("local"), input_cost=0, output_cost=0)
    orch = oc.Orchestra(models=[free], agents=[oc.Agent(name="w")])
    result = await orch.execute(tasks(1), budget=oc.Budget(max_usd=1.0))
    assert result.status == "succeeded"


async def test_routing_ranks_an_unpriced_model_after_priced_ones(fake: FakeModel) -> None:
    """Cheapest never takes an unpriced model for a free one."""
    models = oc.Constellation(
        [
            oc.ModelSpec(name="local", model=fake.model("local"), quality=0.5),
            oc.ModelSpec(
                name="paid", model=fake.model("paid"), quality=0.5, input_cost=1, output_cost=1
            ),
        ]
    )
    orch = oc.Orchestra(
        models=models, agents=[oc.Agent(name="w")], router=oc.routing.Cheapest(min_quality=0.5)
    )
    result = await orch.execute(tasks(1))
    assert result.nodes["t00"].model == "paid"


async def test_missing_usage_is_estimated_and_marked() -> None:
    """A provider that reports no usage: the cost is estimated, and marked so on the node's
    usage, the run's usage and the model_called event; streams too."""
    events: list[oc.Event] = []
    with OpenAICompatibleServer(api_key=KEY, default=Reply("a" * 400, no_usage=True)) as server:
        for stream in (False, True):
            orch = oc.Orchestra(
                models=[spec(server, "m", stream=stream)],
                agents=[oc.Agent(name="w")],
                on_event=events.append,
            )
            result = await orch.execute(tasks(1))
            assert result.usage.estimated and result.nodes["t00"].usage.estimated
            assert result.usage.output_tokens == 100 and result.cost_usd > 0
    called = [e for e in events if isinstance(e, ModelCalled)]
    assert len(called) == 2 and all(e.estimated for e in called)


async def test_reported_usage_is_not_marked_estimated() -> None:
    """Usage the provider reports, streamed or not, is taken as it is."""
    with OpenAICompatibleServer(api_key=KEY, default=Reply("x", output_tokens=7)) as server:
        for stream in (False, True):
            orch = oc.Orchestra(
                models=[spec(server, "m", stream=stream)], agents=[oc.Agent(name="w")]
            )
            result = await orch.execute(tasks(1))
            assert not result.usage.estimated and result.usage.output_tokens == 7


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": -1_000_000, "completion_tokens": 5},
        {"prompt_tokens": 10, "completion_tokens": -3},
    ],
)
async def test_negative_usage_fails_the_call_and_never_refunds(usage: dict[str, object]) -> None:
    """Negative counts are an error of that call: the node fails, the run is charged the
    call's estimate, and the budget never grows."""
    broken = Reply("x", usage=usage)
    with OpenAICompatibleServer(api_key=KEY, default=broken) as server:
        orch = oc.Orchestra(
            models=[spec(server, "m", retry=oc.RetryPolicy(max_retries=0))],
            agents=[oc.Agent(name="w")],
        )
        with pytest.raises(oc.NodeFailed, match="unusable usage") as info:
            await orch.execute(tasks(1), budget=oc.Budget(max_usd=10.0))
    assert info.value.result.cost_usd > 0
    assert info.value.result.usage.estimated


async def test_an_empty_answer_is_a_failure_the_budget_still_pays_for() -> None:
    """An answer with no content fails the call, but the provider billed it: each empty
    answer's reported usage is charged to the node, the run and its budget."""
    empty = Reply("", input_tokens=1_000_000, output_tokens=0)  # $1 at $1 per 1M tokens
    with OpenAICompatibleServer(api_key=KEY) as server:
        server.script("m", [empty, empty, costing(0.5)])
        orch = oc.Orchestra(
            models=[spec(server, "m", retry=oc.RetryPolicy(max_retries=2, backoff=0.0))],
            agents=[oc.Agent(name="w")],
        )
        result = await orch.execute(tasks(1), budget=oc.Budget(max_usd=10.0))
    assert result.nodes["t00"].output == "x"
    assert result.cost_usd == pytest.approx(2.5)
    assert result.nodes["t00"].usage.calls == 3 and not result.usage.estimated


async def test_a_run_budget_nests_inside_the_orchestras() -> None:
    """A run's own budget can tighten the Orchestra's, never loosen it."""
    with OpenAICompatibleServer(api_key=KEY, default=costing(1.0)) as server:
        orch = oc.Orchestra(
            models=[spec(server, "m", max_concurrency=1)],
            agents=[oc.Agent(name="w")],
            budget=oc.Budget(max_usd=2.0),
        )
        with pytest.raises(oc.BudgetExceeded) as info:
            await orch.execute(tasks(10), budget=oc.Budget(max_usd=100.0))
    assert info.value.result.cost_usd <= 2.0 + 1.0


async def test_a_task_budget_fails_its_task_only(fake: FakeModel) -> None:
    """A task whose own budget cannot fit a call fails (it can be replanned); the run's budget
    was not the one refused, so sibling nodes finish."""
    fake.handler = lambda request: FakeReply("x", input_tokens=100_000, output_tokens=0)
    models = [oc.ModelSpec(name="m", model=fake.model("m"), input_cost=1.0, output_cost=1.0)]
    agent = oc.Agent(name="w", tools=[], max_steps=3)
    orch = oc.Orchestra(models=models, agents=[agent])
    plan = oc.Plan(
        tasks=[
            oc.Task(id="sibling", agent="w", prompt="a"),
            oc.Task(id="capped", agent="w", prompt="b", budget=oc.Budget(max_usd=0.000001)),
        ]
    )
    with pytest.raises(oc.NodeFailed) as info:
        await orch.execute(plan, budget=oc.Budget(max_usd=1.0))
    assert info.value.task_id == "capped"
    assert "task 'capped' cannot fit" in str(info.value)
    assert info.value.result.nodes["sibling"].ok


async def test_map_children_share_their_map_tasks_budget(fake: FakeModel) -> None:
    """A map task's budget covers all its items together."""
    fake.responses = {"list": '["a", "b", "c", "d", "e", "f"]'}
    fake.handler = lambda request: FakeReply("x", input_tokens=1000, output_tokens=0)
    models = [oc.ModelSpec(name="m", model=fake.model("m"), input_cost=1.0, output_cost=0.0)]
    orch = oc.Orchestra(models=models, agents=[oc.Agent(name="w")], max_parallel=1)
    plan = oc.Plan(
        tasks=[
            oc.Task(id="list", agent="w", prompt="list"),
            oc.Task(
                id="each",
                agent="w",
                prompt="do {item}",
                after=["list"],
                map="list",
                budget=oc.Budget(max_usd=0.0035),
            ),
        ]
    )
    with pytest.raises(oc.NodeFailed):
        await orch.execute(plan)
    children = [c for c in fake.calls if (c.task_id or "").startswith("each__")]
    assert len(children) <= 4  # 0.0035 fits three calls of $0.001 and one blind first one


async def test_the_boss_goes_through_the_door(fake: FakeModel) -> None:
    """Planning calls wait first in line, carry idempotency keys, are charged to the run's
    budget and emit events."""
    plan = {"tasks": [{"id": "a", "agent": "w", "prompt": "x"}]}
    fake.responses = {"plan": json.dumps(plan)}
    events: list[oc.Event] = []
    models = oc.Constellation(
        [
            oc.ModelSpec(name="boss", model=fake.model("boss"), input_cost=1, output_cost=1),
            oc.ModelSpec(name="m", model=fake.model("m"), input_cost=1, output_cost=1),
        ]
    )
    orch = oc.Orchestra(
        models=models, agents=[oc.Agent(name="w", model="m")], boss="boss", on_event=events.append
    )
    result = await orch.run("do it")
    boss_calls = [e for e in events if isinstance(e, ModelCalled) and e.model == "boss"]
    assert len(boss_calls) == 1 and boss_calls[0].reason == "boss"
    assert result.usage.by_model["boss"].calls == 1


async def test_a_boss_refused_by_the_budget_is_a_budget_stop(fake: FakeModel) -> None:
    """A boss call that cannot fit ends the run with BudgetExceeded, not a bare refusal."""
    fake.handler = lambda request: FakeReply("not a plan", input_tokens=10_000_000)
    models = [oc.ModelSpec(name="boss", model=fake.model("boss"), input_cost=1, output_cost=1)]
    events: list[oc.Event] = []
    orch = oc.Orchestra(models=models, boss="boss", on_event=events.append)
    with pytest.raises(oc.BudgetExceeded) as info:
        await orch.run("do it", budget=oc.Budget(max_usd=5.0))
    assert info.value.result.cost_usd == pytest.approx(10.0)
    assert any(isinstance(e, BudgetStopped) for e in events)
    finished = [e for e in events if isinstance(e, RunFinished)]
    assert finished[-1].cost_usd == pytest.approx(10.0)


async def test_a_failed_planning_run_records_what_the_boss_cost(
    fake: FakeModel, tmp_path: Path
) -> None:
    """A run whose boss never wrote a valid plan is journaled with the boss's cost, not $0."""
    fake.handler = lambda request: FakeReply("no plan here", input_tokens=1000, output_tokens=0)
    models = [oc.ModelSpec(name="boss", model=fake.model("boss"), input_cost=1, output_cost=1)]
    orch = oc.Orchestra(models=models, boss="boss", journal=tmp_path / "runs.sqlite")
    with pytest.raises(oc.PlanError):
        await orch.run("do it", run_id="failed-plan")
    record = orch.runs()[0]
    assert record.run_id == "failed-plan"
    assert record.cost_usd == pytest.approx(2 * 1000 / 1e6)


async def test_a_streaming_boss_that_fails_raises_plan_error(fake: FakeModel) -> None:
    """A streaming boss that never writes a valid plan is a PlanError, not an exception group."""
    fake.handler = lambda request: FakeReply('{"tasks": [{"id": "a", "agent": "nobody"')
    models = [
        oc.ModelSpec(
            name="boss", model=fake.model("boss"), input_cost=1, output_cost=1, stream=True
        )
    ]
    orch = oc.Orchestra(models=models, boss="boss")
    with pytest.raises(oc.PlanError):
        await orch.run("do it")


async def test_rate_limited_calls_wait_and_keep_their_retries() -> None:
    """A 429 pauses the model: the call goes again after the pause, the retry policy
    untouched, and a rate_limited event says how long and at what concurrency."""
    events: list[oc.Event] = []
    script = [Error(429, retry_after=0.05), Error(429, retry_after=0.05), Reply("done")]
    with OpenAICompatibleServer(api_key=KEY) as server:
        server.script("m", script)
        orch = oc.Orchestra(
            models=[spec(server, "m", retry=oc.RetryPolicy(max_retries=0), max_concurrency=4)],
            agents=[oc.Agent(name="w")],
            on_event=events.append,
        )
        result = await orch.execute(tasks(1))
    assert result.output == "done"
    limited = [e for e in events if isinstance(e, RateLimited)]
    assert [e.concurrency for e in limited] == [1, 1]


async def test_waiting_calls_go_by_critical_path_priority(fake: FakeModel) -> None:
    """Under a cap of one, the node heading the longest remaining chain is called first, even
    though every node was dispatched at once."""
    order: list[str] = []

    async def answer(request: object) -> str:
        task_id = getattr(request, "task_id", None)
        order.append(str(task_id))
        await anyio.lowlevel.checkpoint()
        return "x"

    fake.handler = answer
    models = [
        oc.ModelSpec(
            name="m", model=fake.model("m"), input_cost=1, output_cost=1, max_concurrency=1
        )
    ]
    orch = oc.Orchestra(models=models, agents=[oc.Agent(name="w")])
    plan = oc.Plan(
        tasks=[
            oc.Task(id="a_short", agent="w", prompt="x"),
            oc.Task(id="b_short", agent="w", prompt="x"),
            oc.Task(id="z_long", agent="w", prompt="x"),
            oc.Task(id="z_long2", agent="w", prompt="{z_long}", after=["z_long"]),
            oc.Task(id="z_long3", agent="w", prompt="{z_long2}", after=["z_long2"]),
        ]
    )
    await orch.execute(plan)
    assert order[0] == "z_long"


async def test_a_custom_backend_gets_fully_described_nodes(fake: FakeModel) -> None:
    """The scheduler hands a backend each node with its priority, inputs, dependency outputs,
    idempotency key and attempt: no hidden context."""
    seen: list[oc.backends.NodeWork] = []
    models = [oc.ModelSpec(name="m", model=fake.model("m"), input_cost=1, output_cost=1)]
    orch = oc.Orchestra(models=models, agents=[oc.Agent(name="w")])
    inner = orch.backend

    class Spy:
        async def run(
            self, work: oc.backends.NodeWork, run: oc.backends.RunScope
        ) -> oc.backends.NodeOutcome:
            seen.append(work)
            return await inner.run(work, run)

    orch.backend = Spy()
    plan = oc.Plan(
        tasks=[
            oc.Task(id="a", agent="w", prompt="{topic}"),
            oc.Task(id="b", agent="w", prompt="{a}", after=["a"]),
        ]
    )
    await orch.execute(plan, inputs={"topic": "GPUs"}, run_id="r1")
    first, second = seen
    assert first.priority > second.priority
    assert first.inputs == {"topic": "GPUs"} and second.outputs == {"a": "ok"}
    assert (first.key, first.attempt) == ("r1:a:1", 1)


def test_idempotency_keys_reach_the_server() -> None:
    """The boss's and the nodes' requests carry idempotency keys; retries share one."""

    async def main() -> list[str | None]:
        with OpenAICompatibleServer(api_key=KEY) as server:
            server.script("m", [Error(500), Reply("ok")])
            orch = oc.Orchestra(models=[spec(server, "m")], agents=[oc.Agent(name="w")])
            await orch.execute(tasks(1), run_id="keyed")
            return [r.headers.get("idempotency-key") for r in server.requests]

    keys = anyio.run(main, backend="asyncio")
    assert keys == ["keyed:t00:1", "keyed:t00:1"]


async def test_a_planning_run_cut_by_its_deadline_records_what_the_boss_cost(
    fake: FakeModel, tmp_path: Path
) -> None:
    """The boss's first (invalid) answer was paid; its second is cut by max_seconds, its prompt
    charged (estimated): the run ends with BudgetExceeded carrying both, and the journal
    records them."""
    answers = iter(
        [
            FakeReply("no plan", input_tokens=1000, output_tokens=0),
            FakeReply("too late", latency=30.0),
        ]
    )
    fake.handler = lambda request: next(answers)
    models = [oc.ModelSpec(name="boss", model=fake.model("boss"), input_cost=1, output_cost=1)]
    orch = oc.Orchestra(models=models, boss="boss", journal=tmp_path / "runs.sqlite")
    with pytest.raises(oc.BudgetExceeded) as info:
        await orch.run("do it", run_id="cut", budget=oc.Budget(max_seconds=0.5))
    assert info.value.limit == "max_seconds"
    cut = fake.calls[1]
    # Its charge is orchestra's estimate of the prompt it built, which the provider received
    # with a little more (the plan's format): between half and all of what the fake saw.
    sent = prompt_tokens(cut.messages, cut.tools)
    usage = info.value.result.usage
    assert (usage.calls, usage.estimated) == (2, True)
    assert 1000 + sent / 2 < usage.input_tokens <= 1000 + sent
    cost = usage.input_tokens / 1e6
    assert usage.cost_usd == pytest.approx(cost)
    assert orch.runs()[0].cost_usd == pytest.approx(cost)


async def test_replanned_work_spends_only_what_the_run_has_left(fake: FakeModel) -> None:
    """A node fails for good, the boss replans the rest, and the new tasks spend inside the
    same run budget: the run never passes it."""
    first = {
        "tasks": [
            {"id": "a", "agent": "w", "prompt": "x"},
            {"id": "b", "agent": "w", "prompt": "y"},
        ]
    }
    again = {
        "tasks": [
            *({"id": f"c{i}", "agent": "w", "prompt": "z"} for i in range(8)),
            {"id": "end", "agent": "w", "prompt": "sum up", "after": [f"c{i}" for i in range(8)]},
        ]
    }
    boss = [json.dumps(first)]

    def answer(request: FakeRequest) -> FakeReply | FakeFailure:
        if request.agent == "plan":
            plan = boss.pop() if boss else json.dumps(again)
            return FakeReply(plan, input_tokens=10, output_tokens=10)
        if request.task_id == "b":
            return FakeFailure(400)
        return FakeReply("done", input_tokens=100_000, output_tokens=0)

    fake.handler = answer
    models = oc.Constellation(
        [
            oc.ModelSpec(name="boss", model=fake.model("boss"), input_cost=1, output_cost=1),
            oc.ModelSpec(name="m", model=fake.model("m"), input_cost=1, output_cost=1),
        ]
    )
    orch = oc.Orchestra(
        models=models, agents=[oc.Agent(name="w", model="m")], boss="boss", journal=None
    )
    with pytest.raises((oc.BudgetExceeded, oc.NodeFailed)) as info:
        await orch.run("do it", budget=oc.Budget(max_usd=0.35))
    result = info.value.result
    assert any(task_id.startswith("c") for task_id in result.nodes)
    assert result.cost_usd <= 0.35 + 0.1  # at most one call sent before its price was learned
