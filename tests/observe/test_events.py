"""The event family: the exact stream of a scripted run, and one serialiser that round-trips."""

from __future__ import annotations

import io
import json
import typing
from pathlib import Path

import pytest

import orchestra as oc
from orchestra.events import EVENTS, Event
from orchestra.observe.jsonl import JsonLines, dump_event, parse_events, read_events
from orchestra.testing import FakeModel, fake_constellation

pytestmark = pytest.mark.anyio

PLAN = oc.Plan(
    tasks=[
        oc.Task(id="facts", agent="researcher", prompt="Facts on {topic}"),
        oc.Task(id="prices", agent="researcher", prompt="Prices of {topic}"),
        oc.Task(
            id="memo", agent="writer", prompt="Memo:\n{facts}\n{prices}", after=["facts", "prices"]
        ),
    ]
)


def _kinds(events: list[Event]) -> list[tuple[str, str | None]]:
    return [(e.kind, getattr(e, "task_id", None)) for e in events]


async def test_event_stream_of_a_hand_written_plan(fake: FakeModel, team: list[oc.Agent]) -> None:
    """Three nodes with a join, one at a time: the run, the plan, then each node's start,
    route, call and finish, longest remaining critical path first (`prices` has the longer
    prompt)."""
    events: list[Event] = []
    orch = oc.Orchestra(
        models=fake_constellation(fake), agents=team, max_parallel=1, on_event=events.append
    )
    await orch.execute(PLAN, inputs={"topic": "GPUs"}, run_id="r1")
    assert _kinds(events) == [
        ("run_started", None),
        ("plan_ready", None),
        ("node_started", "prices"),
        ("node_routed", "prices"),
        ("model_called", "prices"),
        ("node_finished", "prices"),
        ("node_started", "facts"),
        ("node_routed", "facts"),
        ("model_called", "facts"),
        ("node_finished", "facts"),
        ("node_started", "memo"),
        ("node_routed", "memo"),
        ("model_called", "memo"),
        ("node_finished", "memo"),
        ("run_finished", None),
    ]
    assert {e.run_id for e in events} == {"r1"}
    assert [e.at for e in events] == sorted(e.at for e in events)


async def test_a_sink_that_raises_is_unsubscribed_and_the_run_goes_on(
    fake: FakeModel, team: list[oc.Agent]
) -> None:
    """A sink that raises gets no further event (a RuntimeWarning says so); the run finishes and
    a stream's sink, subscribed after it, still sees every event."""
    got: list[Event] = []

    def broken(event: Event) -> None:
        got.append(event)
        raise ValueError("boom")

    orch = oc.Orchestra(models=fake_constellation(fake), agents=team, on_event=broken)
    with pytest.warns(RuntimeWarning, match="raised ValueError.*unsubscribed"):
        async with orch.stream(PLAN, inputs={"topic": "GPUs"}) as events:
            kinds = [event.kind async for event in events]
    assert [e.kind for e in got] == ["run_started"]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert events.result is not None and events.result.status == "succeeded"


async def test_event_stream_of_a_boss_planned_run(fake: FakeModel, orch: oc.Orchestra) -> None:
    """A boss-planned run opens with the boss's call, then the plan, then the node."""
    plan = {"tasks": [{"id": "only", "agent": "writer", "prompt": "Write"}]}
    fake.responses = {"plan": json.dumps(plan), "writer": "done"}
    events: list[Event] = []
    orch = oc.Orchestra(
        models=orch.models, agents=list(orch.agents.values()), boss="boss", on_event=events.append
    )
    await orch.run("Write something")
    assert _kinds(events) == [
        ("run_started", None),
        ("model_called", "(plan)"),
        ("plan_ready", None),
        ("node_started", "only"),
        ("node_routed", "only"),
        ("model_called", "only"),
        ("node_finished", "only"),
        ("run_finished", None),
    ]


def test_every_kind_is_distinct() -> None:
    """Each class of the family has its own `kind`, the discriminator of the one serialiser."""
    union = typing.get_args(typing.get_args(Event)[0])
    kinds = [cls.model_fields["kind"].default for cls in union]
    assert len(kinds) == len(set(kinds)) == len(union)


def test_scripted_events_round_trip_through_jsonl(scripted: list[Event]) -> None:
    """Events written as JSON lines read back equal, field for field and type for type."""
    out = io.StringIO()
    sink = JsonLines(out)
    for event in scripted:
        sink(event)
    lines = out.getvalue().splitlines()
    assert len(lines) == len(scripted)
    assert all(json.loads(line)["kind"] == e.kind for line, e in zip(lines, scripted, strict=True))
    assert parse_events(lines) == scripted
    assert [dump_event(e) for e in parse_events(lines)] == lines


async def test_a_real_runs_events_round_trip(fake: FakeModel, team: list[oc.Agent]) -> None:
    """The events of a run survive EVENTS.dump_json / validate_json unchanged."""
    events: list[Event] = []
    orch = oc.Orchestra(models=fake_constellation(fake), agents=team, on_event=events.append)
    await orch.execute(PLAN, inputs={"topic": "GPUs"})
    assert [EVENTS.validate_json(EVENTS.dump_json(e)) for e in events] == events


def test_read_events_names_the_bad_line(tmp_path: Path, scripted: list[Event]) -> None:
    """A log with a line that is not an event fails with that line's number."""
    log = tmp_path / "run.jsonl"
    log.write_text(dump_event(scripted[0]) + "\n\n" + '{"kind": "nope"}\n')
    with pytest.raises(ValueError, match="line 3 is not an orchestra event"):
        read_events(log)
    log.write_text("".join(dump_event(e) + "\n" for e in scripted))
    assert read_events(log) == scripted
