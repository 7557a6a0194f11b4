"""Features together, not alone: budgets under per-model and global caps, map nodes, task
budgets, provider faults and concurrent runs, driven by hypothesis through the real call path."""

from __future__ import annotations

import random

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import orchestra as oc
from orchestra.models.tokens import prompt_tokens
from orchestra.testing import FakeFailure, FakeModel, FakeReply, FakeRequest

MAX_TOKENS = 40


@st.composite
def plans(draw: st.DrawFn) -> oc.Plan:
    """A random DAG of 1-10 tasks on two agents; some tasks have budgets, one may be a map."""
    count = draw(st.integers(1, 10))
    tasks: list[oc.Task] = []
    for i in range(count):
        after = sorted(
            draw(st.sets(st.sampled_from([t.id for t in tasks]), max_size=2)) if tasks else set()
        )
        budget = draw(st.none() | st.builds(oc.Budget, max_usd=st.floats(0.001, 0.05)))
        prompt = " ".join(["x"] + [f"{{{d}}}" for d in after])
        tasks.append(
            oc.Task(
                id=f"t{i}",
                agent=draw(st.sampled_from(["a", "b"])),
                prompt=prompt,
                after=after,
                budget=budget,
            )
        )
    if draw(st.booleans()):
        tasks.append(oc.Task(id="items", agent="a", prompt="list"))
        tasks.append(
            oc.Task(
                id="each",
                agent="b",
                prompt="do {item}",
                after=["items"],
                map="items",
                budget=draw(st.none() | st.builds(oc.Budget, max_usd=st.floats(0.001, 0.05))),
            )
        )
    return oc.Plan(tasks=tasks)


def honest(seed: int, fault_rate: float, outputs: dict[str, int]) -> object:
    """A provider whose answers cost what orchestra expects once it has seen one: prompt
    tokens counted the same way, a fixed answer length per model within max_tokens (so the
    first estimate, max_tokens, is high and later ones exact); some 429s and 500s."""
    rng = random.Random(seed)

    def answer(request: FakeRequest) -> FakeReply | FakeFailure:
        roll = rng.random()
        if roll < fault_rate / 2:
            return FakeFailure(429, retry_after=0)
        if roll < fault_rate:
            return FakeFailure(500)
        content = '["p", "q", "r", "s"]' if request.task_id == "items" else "done"
        used = prompt_tokens(request.messages, request.tools)
        return FakeReply(content, input_tokens=used, output_tokens=outputs[request.model])

    return answer


@pytest.mark.slow
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    plan=plans(),
    prices=st.tuples(st.floats(0.0, 500.0), st.floats(0.0, 500.0)),
    caps=st.tuples(st.none() | st.integers(1, 3), st.none() | st.integers(1, 3)),
    global_cap=st.none() | st.integers(1, 4),
    max_usd=st.floats(0.0005, 0.2),
    fault_rate=st.sampled_from([0.0, 0.2]),
    runs=st.integers(1, 2),
    seed=st.integers(0, 1000),
    outputs=st.tuples(st.integers(1, MAX_TOKENS), st.integers(1, MAX_TOKENS)),
)
def test_a_usd_budget_holds_whatever_else_happens(
    plan: oc.Plan,
    prices: tuple[float, float],
    caps: tuple[int | None, int | None],
    global_cap: int | None,
    max_usd: float,
    fault_rate: float,
    runs: int,
    seed: int,
    outputs: tuple[int, int],
) -> None:
    """When no call costs more than it was estimated, no run, task or map budget is ever
    exceeded — under per-model and global caps, map nodes, task budgets, 429s and 500s, and
    runs sharing one Orchestra at once — and a run that stops keeps every node that finished."""
    fake = FakeModel(handler=honest(seed, fault_rate, {"m1": outputs[0], "m2": outputs[1]}))  # type: ignore[arg-type]
    specs = [
        oc.ModelSpec(
            name=name,
            model=fake.model(name),
            input_cost=prices[i],
            output_cost=prices[1 - i],
            max_concurrency=caps[i],
            litellm_params={"max_tokens": MAX_TOKENS},
            retry=oc.RetryPolicy(max_retries=1, backoff=0),
        )
        for i, name in enumerate(["m1", "m2"])
    ]
    agents = [oc.Agent(name="a", model="m1"), oc.Agent(name="b", model="m2")]
    orch = oc.Orchestra(models=specs, agents=agents, max_concurrent_calls=global_cap, journal=None)
    budget = oc.Budget(max_usd=max_usd)
    outcomes: list[oc.RunResult] = []

    async def one(run_id: str) -> None:
        try:
            outcomes.append(await orch.execute(plan, budget=budget, run_id=run_id))
        except (oc.BudgetExceeded, oc.NodeFailed) as stopped:
            outcomes.append(stopped.result)

    async def main() -> None:
        async with anyio.create_task_group() as group:
            for index in range(runs):
                group.start_soon(one, f"r{index}")

    try:
        anyio.run(main, backend="asyncio")
    finally:
        fake.close()
    tasks = {t.id: t for t in plan.tasks}
    for result in outcomes:
        assert result.cost_usd <= max_usd + 1e-12
        for task_id, node in result.nodes.items():
            task = tasks.get(task_id)
            if task is not None and task.budget is not None and task.budget.max_usd is not None:
                assert node.cost_usd <= task.budget.max_usd + 1e-12
        each = tasks.get("each")
        if each is not None and each.budget is not None and each.budget.max_usd is not None:
            items = [n for tid, n in result.nodes.items() if tid.startswith("each__")]
            assert sum(n.cost_usd for n in items) <= each.budget.max_usd + 1e-12
        for node in result.nodes.values():
            assert node.ok == (node.error is None)
