"""Notes and compaction inside runs: agents share notes; long inputs fit the model's window."""

from __future__ import annotations

import pytest

import orchestra as oc
from orchestra.testing import FakeModel, FakeReply, FakeRequest, FakeToolCall, fake_constellation

pytestmark = pytest.mark.anyio


async def test_agents_share_notes_through_tools_and_placeholder(fake: FakeModel) -> None:
    """A note written with write_note is read by a later node's {notes} and read_notes tool."""

    def answer(request: FakeRequest) -> FakeReply:
        if request.task_id == "scout" and not request.tool_results:
            return FakeReply(tool_calls=[FakeToolCall("write_note", {"text": "budget is $5"})])
        if request.task_id == "plan" and not request.tool_results:
            return FakeReply(tool_calls=[FakeToolCall("read_notes", {})])
        return FakeReply(f"{request.task_id}: {request.tool_results}")

    fake.handler = answer
    orch = oc.Orchestra(models=fake_constellation(fake), agents=[oc.Agent(name="w", notes=True)])
    plan = oc.Plan(
        tasks=[
            oc.Task(id="scout", agent="w", prompt="Look around"),
            oc.Task(id="plan", agent="w", prompt="Notes so far:\n{notes}", after=["scout"]),
        ]
    )
    result = await orch.execute(plan)
    assert fake.calls_for("plan")[0].prompt == "Notes so far:\n- [scout] budget is $5"
    assert result.output == "plan: ['- [scout] budget is $5']"
    assert [t["function"]["name"] for t in fake.calls_for("scout")[0].tools] == [
        "write_note",
        "read_notes",
    ]


async def test_long_inputs_are_truncated_to_the_window(fake: FakeModel) -> None:
    """A dependency output far past the model's window is cut with a marker; the node runs."""
    fake.responses = {"big": "x" * 40_000}
    models = fake_constellation(fake, {"fast": {"max_context": 2000}})
    orch = oc.Orchestra(models=models, agents=[oc.Agent(name="w")])
    plan = oc.Plan(
        tasks=[
            oc.Task(id="big", agent="w", prompt="Produce a lot"),
            oc.Task(id="use", agent="w", prompt="Use this:\n{big}", after=["big"]),
        ]
    )
    await orch.execute(plan)
    prompt = fake.calls_for("use")[0].prompt
    assert "characters cut to fit the context window" in prompt
    assert len(prompt) <= (2000 - 500) * 4 + 100


async def test_long_inputs_can_be_summarised_by_the_cheapest_model(fake: FakeModel) -> None:
    """With compaction="summarize", the cheapest model summarises; its cost is the node's."""
    fake.handler = lambda r: "SHORT SUMMARY" if r.prompt.startswith("Summarise") else "done"
    fake.responses = {"big": "fact " * 10_000}
    models = fake_constellation(
        fake,
        {
            "fast": {"max_context": 3000, "input_cost": 0.1, "output_cost": 0.1},
            "tiny": {"input_cost": 0.01, "output_cost": 0.01},
        },
    )
    orch = oc.Orchestra(
        models=models,
        agents=[
            oc.Agent(name="w", model="fast"),
            oc.Agent(name="s", model="fast", compaction="summarize"),
        ],
    )
    plan = oc.Plan(
        tasks=[
            oc.Task(id="big", agent="w", prompt="Produce a lot"),
            oc.Task(id="use", agent="s", prompt="Use this:\n{big}", after=["big"]),
        ]
    )
    result = await orch.execute(plan)
    assert fake.calls_for("use")[-1].prompt == "Use this:\nSHORT SUMMARY"
    assert "tiny" in result.nodes["use"].usage.by_model
