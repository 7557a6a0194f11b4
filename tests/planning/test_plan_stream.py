"""Property tests: streamed plans parse like whole ones; repairs keep the valid part."""

from __future__ import annotations

import json

import anyio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import orchestra as oc
from orchestra.planning.stream import PlanStream
from orchestra.testing import FakeModel
from orchestra.testing.strategies import plans

AGENTS = ("researcher", "writer")


@given(plans(agents=AGENTS), st.data())
def test_streamed_tasks_equal_the_whole_plan(plan: oc.Plan, data: st.DataObject) -> None:
    """Fed in random chunks, after prose and a code fence, the stream yields every task, in
    order, exactly as the whole JSON holds them."""
    indent = data.draw(st.sampled_from([None, 1, 2]))
    body = json.dumps(plan.model_dump(mode="json"), indent=indent)
    text = data.draw(st.sampled_from(["", "Sure! ", "Plan:\n```json\n"])) + body + "\n```"
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(text) - 1)), max_size=20)))
    reader = PlanStream()
    found: list[dict[str, object]] = []
    for start, end in zip([0, *cuts], [*cuts, len(text)], strict=True):
        found += reader.feed(text[start:end])
    assert [oc.Task.model_validate(item) for item in found] == list(plan.tasks)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans(agents=AGENTS, min_tasks=2, max_tasks=8), st.data())
def test_corrupted_plans_are_repaired_keeping_their_valid_part(
    plan: oc.Plan, data: st.DataObject
) -> None:
    """A plan with one corrupted task gets feedback naming just that task; the boss's repaired
    plan runs with every other task unchanged."""
    index = data.draw(st.integers(0, len(plan.tasks) - 1))
    victim = plan.tasks[index]
    broken_task = victim.model_copy(update={"agent": "ghost"})
    broken = oc.Plan(tasks=(*plan.tasks[:index], broken_task, *plan.tasks[index + 1 :]))
    fake = FakeModel(
        responses={"plan": [broken.model_dump_json(), plan.model_dump_json()]},
        handler=lambda request: f"out {request.task_id}",
    )
    orch = oc.Orchestra(
        models=oc.testing.fake_constellation(fake),
        agents=[oc.Agent(name=name) for name in AGENTS],
        boss="boss",
    )
    try:
        result = anyio.run(orch.run, "a task", backend="asyncio")
    finally:
        fake.close()
    feedback = fake.calls_for("plan")[1].messages[-1]["content"]
    assert feedback.count("1. ") == 1 and f"task {victim.id!r}" in feedback
    assert "2. " not in feedback
    assert result.plan == plan
