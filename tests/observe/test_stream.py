"""`Orchestra.stream`: a run's events as an async iterator, structured, errors to the reader."""

from __future__ import annotations

import pytest

import orchestra as oc
from orchestra.events import Event
from orchestra.testing import FakeModel, fake_constellation

pytestmark = pytest.mark.anyio

PLAN = oc.Plan(
    tasks=[
        oc.Task(id="a", agent="researcher", prompt="A"),
        oc.Task(id="b", agent="writer", prompt="B from {a}", after=["a"]),
    ]
)


async def test_stream_yields_the_runs_events_then_its_result(
    fake: FakeModel, team: list[oc.Agent]
) -> None:
    """The iterator gives exactly what on_event sees, in order; `.result` is the RunResult."""
    seen: list[Event] = []
    orch = oc.Orchestra(models=fake_constellation(fake), agents=team, on_event=seen.append)
    streamed: list[Event] = []
    async with orch.stream(PLAN, run_id="s1") as events:
        async for event in events:
            streamed.append(event)
    assert streamed == seen and streamed[-1].kind == "run_finished"
    assert events.result is not None and events.result.run_id == "s1"
    assert orch._events.sinks == (seen.append,)  # the stream's sink is gone


async def test_stream_of_a_boss_planned_task(fake: FakeModel, orch: oc.Orchestra) -> None:
    """A task in words is planned by the boss; the stream starts with the run and its plan."""
    fake.responses = {"plan": '{"tasks": [{"id": "x", "agent": "writer", "prompt": "go"}]}'}
    async with orch.stream("Write it") as events:
        kinds = [event.kind async for event in events]
    assert kinds[:3] == ["run_started", "model_called", "plan_ready"]
    assert events.result is not None and events.result.output == "ok"


async def test_the_runs_error_is_raised_after_its_events() -> None:
    """A failing run: every event is delivered, then NodeFailed itself (no ExceptionGroup)."""
    bad = FakeModel(fail_first=100, fail_status=401)
    agents = [oc.Agent(name="researcher", description="finds facts")]
    orch = oc.Orchestra(models=[oc.ModelSpec(name="m", model=bad.model("m"))], agents=agents)
    plan = oc.Plan(tasks=[oc.Task(id="a", agent="researcher", prompt="A")])
    kinds: list[str] = []

    async def read() -> None:
        async with orch.stream(plan) as events:
            async for event in events:
                kinds.append(event.kind)

    with pytest.raises(oc.NodeFailed) as info:
        await read()
    assert kinds[-2:] == ["node_finished", "run_finished"]
    assert info.value.task_id == "a" and info.value.result.status == "failed"
    bad.close()


async def test_leaving_early_cancels_the_run(fake: FakeModel, team: list[oc.Agent]) -> None:
    """Breaking out of the stream cancels the run and unsubscribes; nothing outlives the block."""
    orch = oc.Orchestra(models=fake_constellation(fake), agents=team)
    async with orch.stream(PLAN) as events:
        async for event in events:
            assert event.kind == "run_started"
            break
    assert events.result is None and orch._events.sinks == ()
    assert not fake.calls_for("b")  # the dependent never ran


async def test_the_callers_error_leaves_the_block_unchanged(
    fake: FakeModel, team: list[oc.Agent]
) -> None:
    """An exception raised while reading comes out as itself, not inside an ExceptionGroup."""
    orch = oc.Orchestra(models=fake_constellation(fake), agents=team)

    async def read() -> None:
        async with orch.stream(PLAN) as events:
            async for _ in events:
                raise KeyError("mine")

    with pytest.raises(KeyError, match="mine"):
        await read()


async def test_two_streams_see_only_their_own_run(fake: FakeModel, team: list[oc.Agent]) -> None:
    """Concurrent runs of one Orchestra: each stream carries only its run's events."""
    orch = oc.Orchestra(models=fake_constellation(fake), agents=team)
    async with orch.stream(PLAN, run_id="one") as first, orch.stream(PLAN, run_id="two") as second:
        ones = [e.run_id async for e in first]
        twos = [e.run_id async for e in second]
    assert set(ones) == {"one"} and set(twos) == {"two"} and len(ones) == len(twos)


async def test_misuse_is_explained(fake: FakeModel, team: list[oc.Agent]) -> None:
    """Iterating without `async with`, or entering twice, says what to do."""
    orch = oc.Orchestra(models=fake_constellation(fake), agents=team)
    stream = orch.stream(PLAN)
    with pytest.raises(TypeError, match="enter the stream before iterating"):
        stream.__aiter__()
    async with stream as events:
        _ = [e async for e in events]
    with pytest.raises(RuntimeError, match="runs once"):
        async with stream:
            pass
