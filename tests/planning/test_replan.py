"""Replanning after an early failure: unstarted independent work survives untouched and runs;
only what needed the failure is replanned; the loop guard tells a loop from untried work."""

from __future__ import annotations

import json

import pytest

import orchestra as oc
from orchestra.events import PlanRejected, Replanned
from orchestra.testing import FakeFailure, FakeModel, fake_constellation

pytestmark = pytest.mark.anyio

# One node at a time, and `probe` (the longest prompt: the critical path) first: it fails
# before the independent branch left -> right has started; `report` needs the failure.
EARLY_FAILURE = {
    "tasks": [
        {"id": "probe", "agent": "researcher", "prompt": "Probe the source. " * 40},
        {"id": "left", "agent": "researcher", "prompt": "Left branch"},
        {"id": "right", "agent": "writer", "prompt": "Right on {left}", "after": ["left"]},
        {"id": "report", "agent": "writer", "prompt": "Write the report", "after": ["probe"]},
    ]
}
NEW_WORK = [
    {"id": "probe2", "agent": "writer", "prompt": "Probe another way"},
    {
        "id": "report2",
        "agent": "writer",
        "prompt": "Write the report",
        "after": ["probe2", "right"],
    },
]


def orchestra(fake: FakeModel, events: list[oc.Event]) -> oc.Orchestra:
    return oc.Orchestra(
        models=fake_constellation(fake, {"boss": {}, "fast": {"retry": {"max_retries": 0}}}),
        agents=[oc.Agent(name="researcher", model="fast"), oc.Agent(name="writer", model="fast")],
        boss="boss",
        max_parallel=1,
        on_event=events.append,
    )


def answers(fake: FakeModel, *replans: dict[str, object]) -> None:
    fake.responses = {
        "plan": [json.dumps(EARLY_FAILURE), *(json.dumps(r) for r in replans)],
        "probe": FakeFailure(400),
    }
    fake.handler = lambda request: f"{request.task_id} done"


async def test_unstarted_independent_work_survives_and_runs(fake: FakeModel) -> None:
    """A node failing before its independent siblings started: the boss is told what survives;
    it plans only the replacement (which may use a survivor's output); the survivors run
    once, as they were."""
    events: list[oc.Event] = []
    answers(fake, {"tasks": NEW_WORK, "output": "report2"})
    result = await orchestra(fake, events).run("investigate")
    assert result.status == "succeeded" and result.output == "report2 done"
    assert [len(fake.calls_for(t)) for t in ("left", "right", "probe2")] == [1, 1, 1]
    assert fake.calls_for("report") == []
    assert result.plan is not None
    planned = {t.id: t for t in result.plan.tasks}
    assert list(planned) == ["probe", "left", "right", "probe2", "report2"]
    assert planned["right"] == oc.Task(
        id="right", agent="writer", prompt="Right on {left}", after=["left"]
    )
    asked = fake.calls_for("plan")[1].messages[-1]["content"]
    assert "run next (use their outputs as {id} with the id in `after`; do not plan them " in asked
    assert "again): left, right" in asked and "Blocked by the failure" in asked
    assert "report" in asked.split("Blocked by the failure")[1]
    replanned = [e for e in events if isinstance(e, Replanned)]
    assert [e.new_tasks for e in replanned] == [("probe2", "report2")]


async def test_survivors_restated_as_they_were_are_not_a_loop(fake: FakeModel) -> None:
    """A boss that copies the surviving tasks into its answer, ids and all, passes the loop
    guard; they still run once."""
    survivors = EARLY_FAILURE["tasks"][1:3]
    answers(fake, {"tasks": [*survivors, *NEW_WORK], "output": "report2"})
    result = await orchestra(fake, []).run("investigate")
    assert result.status == "succeeded"
    assert [len(fake.calls_for(t)) for t in ("left", "right")] == [1, 1]


async def test_a_survivor_planned_again_under_a_new_id_is_sent_back(fake: FakeModel) -> None:
    """Planning a survivor's work again under another id is a problem the boss repairs: the
    work is not done twice."""
    events: list[oc.Event] = []
    twice = {"id": "left_again", "agent": "researcher", "prompt": "left  BRANCH"}
    answers(
        fake,
        {"tasks": [twice, *NEW_WORK], "output": "report2"},
        {"tasks": NEW_WORK, "output": "report2"},
    )
    result = await orchestra(fake, events).run("investigate")
    assert result.status == "succeeded" and fake.calls_for("left_again") == []
    rejected = [e for e in events if isinstance(e, PlanRejected)]
    assert any("repeats task 'left', which is not started yet" in p for p in rejected[0].problems)


async def test_blocked_work_replanned_as_it_was_is_not_a_loop(fake: FakeModel) -> None:
    """`report` never ran (it needed the failure): planning the same work after a new probe is
    new work, not a loop."""
    answers(fake, {"tasks": NEW_WORK, "output": "report2"})
    assert (await orchestra(fake, []).run("investigate")).status == "succeeded"
    assert len(fake.calls_for("report2")) == 1


async def test_repeating_the_failed_work_is_a_loop(fake: FakeModel) -> None:
    """A replan proposing the failed probe again, under a new id, stops the run."""
    again = {
        "tasks": [{"id": "probe3", "agent": "researcher", "prompt": "Probe the source. " * 40}]
    }
    answers(fake, again)
    with pytest.raises(
        oc.NodeFailed, match="loop guard: the replan proposes work already attempted"
    ):
        await orchestra(fake, []).run("investigate")
    assert fake.calls_for("probe3") == []


def test_survivors_are_those_not_needing_a_failure() -> None:
    """Unstarted tasks whose dependencies all finished or survive, dependencies first."""
    from datetime import datetime, timezone

    from orchestra.planning.replan import survivors
    from orchestra.results import NodeResult

    now = datetime.now(timezone.utc)
    plan = oc.Plan.model_validate(EARLY_FAILURE)
    failed = NodeResult(task_id="probe", agent="researcher", started=now, finished=now, error="x")
    assert [t.id for t in survivors(plan, {"probe": failed})] == ["left", "right"]
    left = NodeResult(task_id="left", agent="researcher", output="L", started=now, finished=now)
    assert [t.id for t in survivors(plan, {"probe": failed, "left": left})] == ["right"]
