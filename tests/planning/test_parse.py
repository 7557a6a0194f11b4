"""Reading the boss's answer: any garbage is a PlanError the boss is shown, never a crash."""

from __future__ import annotations

import pytest

import orchestra as oc
from orchestra.planning.parse import MAX_PLAN_CHARS, parse_plan
from orchestra.planning.stream import PlanStream
from orchestra.testing import FakeModel

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        ("[" * 100_000, "recursion limit"),
        ('{"tasks": ' + "[" * 100_000, "recursion limit"),
        ("{" + " " * (MAX_PLAN_CHARS + 1) + "}", "a plan must fit"),
        ('{"tasks": [{"id": "a", "agent": "w", "prompt": 7}]}', "prompt"),
        ("no json at all \ud800", "no JSON object"),
    ],
    ids=["brackets", "deep-tasks", "huge", "bad-field", "prose"],
)
def test_garbage_is_a_plan_error_saying_what_is_wrong(answer: str, says: str) -> None:
    """Deep nesting, huge answers, bad fields and prose give a PlanError naming the problem."""
    with pytest.raises(oc.PlanError, match=says):
        parse_plan(answer)


async def test_a_boss_answering_100000_brackets_gets_a_typed_error(
    fake: FakeModel, orch: oc.Orchestra
) -> None:
    """A boss answering 100,000 nested `[` twice: run() raises PlanError (with its answers),
    never a RecursionError."""
    fake.responses = {"plan": "[" * 100_000}
    with pytest.raises(oc.PlanError, match="no valid plan") as info:
        await orch.run("task")
    assert len(info.value.attempts) == 2


def test_a_streamed_plan_stops_scanning_past_the_bound() -> None:
    """The stream reader counts nesting without recursing and stops at the plan size bound."""
    stream = PlanStream()
    assert stream.feed('{"tasks": [' + "[" * 200_000) == []
    assert stream.feed("x" * MAX_PLAN_CHARS) == []
    assert len(stream.text) < MAX_PLAN_CHARS + 300_000
