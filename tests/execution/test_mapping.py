"""Map nodes: fan out over a dependency's list, bounded, joined in item order."""

from __future__ import annotations

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

import orchestra as oc
from orchestra.execution.mapping import items_of
from orchestra.execution.state import DagState
from orchestra.testing import FakeModel, FakeReply, FakeRequest

pytestmark = pytest.mark.anyio


def plan_over(listing: str, *, max_items: int = 50) -> oc.Plan:
    return oc.Plan(
        tasks=[
            oc.Task(id="list", agent="researcher", prompt="List the cities"),
            oc.Task(
                id="each",
                agent="researcher",
                prompt="Describe {item} in one line",
                after=["list"],
                map="list",
                max_items=max_items,
            ),
            oc.Task(id="join", agent="writer", prompt="Summarise:\n{each}", after=["each"]),
        ]
    )


def test_items_of_lists_json_and_lines() -> None:
    """A list, a JSON array, or bulleted/numbered lines all give the items."""
    assert items_of(["a", 2]) == ["a", "2"]
    assert items_of('["x", "y"]') == ["x", "y"]
    assert items_of("Cities:\n1. Paris\n2) Rome\n\n- Oslo") == ["Cities:", "Paris", "Rome", "Oslo"]


async def test_map_fans_out_and_joins_in_item_order(fake: FakeModel, orch: oc.Orchestra) -> None:
    """Each item runs as its own node with {item} filled in; the join gets the list in order."""
    fake.responses = {"list": "- Paris\n- Rome {old}\n- Oslo"}
    fake.handler = lambda r: r.prompt.upper() if r.task_id != "join" else f"joined: {r.prompt}"
    events: list[oc.Event] = []
    orch = oc.Orchestra(
        models=orch.models, agents=list(orch.agents.values()), on_event=events.append
    )
    result = await orch.execute(plan_over("x"))
    assert result.nodes["each"].output == [
        "DESCRIBE PARIS IN ONE LINE",
        "DESCRIBE ROME {OLD} IN ONE LINE",
        "DESCRIBE OSLO IN ONE LINE",
    ]
    assert result.nodes["each__1"].output == "DESCRIBE ROME {OLD} IN ONE LINE"
    assert '"DESCRIBE OSLO IN ONE LINE"' in result.output
    assert result.nodes["each"].model is None  # the join calls no model
    assert [e.items for e in events if e.kind == "map_expanded"] == [3]


async def test_map_over_fifty_items_respects_the_cap(fake: FakeModel, team: list[oc.Agent]) -> None:
    """Fifty items run in parallel, never more than max_parallel at once; all fifty are joined."""
    from orchestra.testing import fake_constellation

    running = peak = 0

    async def answer(request: FakeRequest) -> FakeReply:
        nonlocal running, peak
        if request.task_id == "list":
            return FakeReply("\n".join(f"item {i}" for i in range(50)))
        running += 1
        peak = max(peak, running)
        await anyio.sleep(0.002)
        running -= 1
        return FakeReply(f"done {request.prompt}")

    fake.handler = answer
    orch = oc.Orchestra(models=fake_constellation(fake), agents=team, max_parallel=5)
    result = await orch.execute(plan_over("x"))
    assert len(result.nodes["each"].output) == 50
    assert 1 < peak <= 5


async def test_too_many_items_fail_the_map_task(fake: FakeModel, orch: oc.Orchestra) -> None:
    """A list longer than max_items fails the map task with a clear error, running no item."""
    fake.responses = {"list": "\n".join(f"x{i}" for i in range(12))}
    with pytest.raises(
        oc.NodeFailed, match="maps over 12 items of 'list', more than its max_items=10"
    ):
        await orch.execute(plan_over("x", max_items=10))
    assert not any(call.task_id and call.task_id.startswith("each__") for call in fake.calls)


def test_map_validation_needs_the_dependency_and_item() -> None:
    """A map task must wait for its list and say where {item} goes."""
    bad = oc.Plan(
        tasks=[
            oc.Task(id="list", agent="w", prompt="x"),
            oc.Task(id="each", agent="w", prompt="no item here", map="list"),
        ]
    )
    problems = [str(p) for p in oc.plan_problems(bad, agents=["w"])]
    assert any("does not wait for it" in p for p in problems)
    assert any("has no {item}" in p for p in problems)


@given(st.integers(0, 6), st.data())
def test_state_expand_runs_children_then_the_join(count: int, data: st.DataObject) -> None:
    """After expand, the node waits for exactly its children, which run after its deps."""
    state = DagState()
    state.add("src")
    state.add("map", ["src"])
    state.add("after", ["map"])
    assert state.pop() == "src"
    state.finish("src")
    assert state.pop() == "map"
    kids = [(f"k{i}", ["src"], 1.0) for i in range(count)]
    state.expand("map", kids)
    order: list[str] = []
    while not state.finished:
        ready = list(iter(state.pop, None))
        order += ready
        for node in data.draw(st.permutations(ready)):
            state.finish(node)
    assert order[-2:] == ["map", "after"]
    assert sorted(order[:-2]) == sorted(k for k, _, _ in kids)


def test_a_hostile_list_is_read_as_lines() -> None:
    """100,000 nested brackets are not a list to parse (bounded nesting): one line, one item."""
    from orchestra.execution.mapping import items_of

    assert items_of("[" * 100_000) == ["[" * 100_000]
