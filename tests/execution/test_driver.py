"""The run driver: what a streaming boss's planning call counts for when a node fails early."""

from __future__ import annotations

import json

import pytest

import orchestra as oc
from orchestra.events import BudgetStopped
from orchestra.testing import FakeFailure, FakeModel, FakeReply, fake_constellation

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_a_streaming_boss_finishes_its_plan_for_the_replan(fake: FakeModel) -> None:
    """The first streamed task fails for good while the boss still streams the rest: the boss
    finishes (its call is in the run's usage, as the provider billed it), the replan extends the
    whole plan, and the run succeeds."""
    plan = {
        "tasks": [
            {"id": "probe", "agent": "researcher", "prompt": "probe"},
            {"id": "notes", "agent": "researcher", "prompt": " ".join(["word"] * 120)},
        ],
        "output": "notes",
    }
    replan = {"tasks": [{"id": "probe2", "agent": "writer", "prompt": "probe again"}]}
    # Spread over the stream's chunks, the boss's latency keeps it streaming after `probe`
    # (dispatched from the first chunks) failed.
    fake.responses = {
        "plan": [
            FakeReply(json.dumps(plan), input_tokens=1000, output_tokens=100, latency=1.0),
            FakeReply(json.dumps(replan), input_tokens=2000, output_tokens=10),
        ],
        "probe": FakeFailure(400),
    }
    fake.default = FakeReply("done", input_tokens=5, output_tokens=1)
    models = fake_constellation(fake)
    models.swap("boss", models["boss"].model_copy(update={"stream": True}))
    orch = oc.Orchestra(
        models=models,
        agents=[oc.Agent(name="researcher"), oc.Agent(name="writer")],
        boss="boss",
        journal=None,
    )
    result = await orch.run("investigate")
    assert result.status == "succeeded"
    assert result.usage.total_tokens == 1000 + 100 + 2000 + 10 + 2 * (5 + 1)
    assert result.plan is not None
    assert [t.id for t in result.plan.tasks] == ["probe", "notes", "probe2"]
    assert len(fake.calls_for("notes")) == 1


async def test_a_budget_stop_lets_a_streaming_boss_finish_and_counts_it(fake: FakeModel) -> None:
    """The run's budget stops it while the boss still streams the plan: the boss's call
    settles like every call in flight and is in the run's usage, and the whole plan is kept."""
    plan = {
        "tasks": [
            {"id": f"t{i}", "agent": "researcher", "prompt": f"part {i} " + "word " * 40}
            for i in range(3)
        ]
    }
    fake.responses = {
        "plan": FakeReply(json.dumps(plan), input_tokens=1000, output_tokens=100, latency=1.0)
    }
    # $0.10 a worker call, one at a time: the second does not fit in $0.15.
    fake.default = FakeReply("done", input_tokens=1000, output_tokens=0)
    models = fake_constellation(
        fake,
        {
            "boss": {"input_cost": 0.0, "output_cost": 0.0, "stream": True},
            "fast": {"input_cost": 100.0, "output_cost": 0.0, "max_concurrency": 1},
        },
    )
    orch = oc.Orchestra(
        models=models, agents=[oc.Agent(name="researcher", model="fast")], boss="boss"
    )
    with pytest.raises(oc.BudgetExceeded) as caught:
        await orch.run("investigate", budget=oc.Budget(max_usd=0.15))
    result = caught.value.result
    assert result.usage.total_tokens == 1000 + 100 + 1000
    assert result.plan is not None and [t.id for t in result.plan.tasks] == ["t0", "t1", "t2"]


async def test_a_replan_the_budget_cannot_pay_for_ends_the_run_on_its_failure(
    fake: FakeModel,
) -> None:
    """A node fails for good and the boss's replan call does not fit the run's budget: the run
    ends with NodeFailed carrying every node and the boss's cost, and a budget stop event —
    not the internal BudgetRefused."""
    plan = {"tasks": [{"id": "probe", "agent": "researcher", "prompt": "probe"}]}
    # $0.10 a boss call (1000 prompt tokens at $100 per 1M): the replan does not fit in $0.15.
    fake.responses = {
        "plan": FakeReply(json.dumps(plan), input_tokens=1000, output_tokens=0),
        "probe": FakeFailure(400),
    }
    events: list[oc.Event] = []
    orch = oc.Orchestra(
        models=fake_constellation(
            fake, {"boss": {"input_cost": 100.0, "output_cost": 0.0}, "fast": {"input_cost": 0.0}}
        ),
        agents=[oc.Agent(name="researcher", model="fast")],
        boss="boss",
        journal=None,
        on_event=events.append,
    )
    with pytest.raises(oc.NodeFailed) as caught:
        await orch.run("investigate", budget=oc.Budget(max_usd=0.15))
    assert len(fake.calls_for("plan")) == 1
    assert caught.value.result.cost_usd == pytest.approx(0.1)
    assert caught.value.result.nodes["probe"].error is not None
    assert [e.limit for e in events if isinstance(e, BudgetStopped)] == ["max_usd"]


async def test_a_map_finished_before_a_replan_is_not_run_again(fake: FakeModel) -> None:
    """A map's items that finished before a replan are kept, not called again (the shrunk case
    of the replan combination property)."""
    plan = {
        "tasks": [
            {"id": "probe", "agent": "researcher", "prompt": "probe"},
            {"id": "items", "agent": "researcher", "prompt": "list"},
            {"id": "each", "agent": "researcher", "prompt": "do {item}", "map": "items"},
        ]
    }
    plan["tasks"][2]["after"] = ["items"]
    replan = {"tasks": [{"id": "probe2", "agent": "researcher", "prompt": "probe again"}]}
    fake.responses = {
        "plan": [json.dumps(plan), json.dumps(replan)],
        "probe": FakeFailure(400),
        "items": '["p", "q"]',
    }
    orch = oc.Orchestra(
        models=fake_constellation(fake),
        agents=[oc.Agent(name="researcher", model="fast")],
        boss="boss",
        journal=None,
    )
    result = await orch.run("investigate")
    assert [len(fake.calls_for(f"each__{i}")) for i in range(2)] == [1, 1]
    assert result.nodes["each"].output == ["ok", "ok"]


@pytest.mark.parametrize("boss_answer", ["no plan here", FakeFailure(401)])
async def test_a_failed_replan_ends_the_run_with_its_work_kept(
    fake: FakeModel, boss_answer: str | FakeFailure
) -> None:
    """A node fails for good and the boss cannot replan (no valid plan, or the boss fails for
    good): the run ends on the node's failure with a result holding every finished node and the
    boss's cost, says why the replan failed, and reports its end."""
    plan = {
        "tasks": [
            {"id": "facts", "agent": "researcher", "prompt": "facts"},
            {"id": "probe", "agent": "researcher", "prompt": "probe"},
        ]
    }
    fake.responses = {
        "plan": [FakeReply(json.dumps(plan), input_tokens=100, output_tokens=10), boss_answer],
        "probe": FakeFailure(400),
    }
    fake.default = FakeReply("done", input_tokens=5, output_tokens=1)
    events: list[oc.Event] = []
    orch = oc.Orchestra(
        models=fake_constellation(fake),
        agents=[oc.Agent(name="researcher")],
        boss="boss",
        journal=None,
        on_event=events.append,
    )
    with pytest.raises(oc.NodeFailed, match="replanning failed") as caught:
        await orch.run("investigate")
    result = caught.value.result
    assert result is not None and result.status == "failed"
    assert result.nodes["facts"].ok and not result.nodes["probe"].ok
    # The plan and two replan answers were billed; a failed boss call bills nothing.
    billed = 3 if isinstance(boss_answer, str) else 1
    assert result.usage.by_model["boss"].calls == billed
    assert [e.kind for e in events][-1] == "run_finished"
