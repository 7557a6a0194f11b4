"""Plan validation: every problem named, with its task and fix, before any model call."""

from __future__ import annotations

import networkx as nx
import pytest
from hypothesis import given
from hypothesis import strategies as st

import orchestra as oc
from orchestra.testing.strategies import plans

AGENTS = ["researcher", "writer"]


def check(*tasks: oc.Task, inputs: tuple[str, ...] = ()) -> None:
    oc.validate_plan(oc.Plan(tasks=tasks), agents=AGENTS, models=["fast"], inputs=inputs)


def test_cycle_is_named_in_full() -> None:
    """A cycle's message lists its path from its smallest id."""
    with pytest.raises(oc.PlanError, match=r"cycle: a -> b -> c -> a") as info:
        check(
            oc.Task(id="b", agent="writer", prompt="x", after=["a"]),
            oc.Task(id="c", agent="writer", prompt="x", after=["b"]),
            oc.Task(id="a", agent="writer", prompt="x", after=["c"]),
        )
    assert info.value.task_id == "a"


def test_unknown_dependency_suggests_the_close_name() -> None:
    """A misspelt dependency gets a did-you-mean."""
    with pytest.raises(oc.PlanError, match="unknown task 'fact'; did you mean 'facts'") as info:
        check(
            oc.Task(id="facts", agent="researcher", prompt="x"),
            oc.Task(id="draft", agent="writer", prompt="x", after=["fact"]),
        )
    assert info.value.task_id == "draft"


def test_duplicate_ids_are_rejected() -> None:
    """Two tasks with one id is an error naming it."""
    with pytest.raises(oc.PlanError, match="duplicate task id 'a'"):
        check(
            oc.Task(id="a", agent="writer", prompt="x"), oc.Task(id="a", agent="writer", prompt="y")
        )


def test_unknown_agent_and_model() -> None:
    """Unknown agents and pinned models are named with a suggestion."""
    with pytest.raises(oc.PlanError, match="unknown agent 'writr'; did you mean 'writer'"):
        check(oc.Task(id="a", agent="writr", prompt="x"))
    with pytest.raises(oc.PlanError, match="unknown model 'fats'; did you mean 'fast'"):
        check(oc.Task(id="a", agent="writer", prompt="x", model="fats"))


def test_placeholder_of_a_task_not_waited_for() -> None:
    """Using a task's output without depending on it says to add it to `after`."""
    with pytest.raises(oc.PlanError, match="add 'facts' to its after list") as info:
        check(
            oc.Task(id="facts", agent="researcher", prompt="x"),
            oc.Task(id="draft", agent="writer", prompt="Memo from {facts}"),
        )
    assert info.value.task_id == "draft"


def test_unresolved_placeholder_names_inputs() -> None:
    """A placeholder that is neither dependency nor input is an error; with the input it is fine."""
    task = oc.Task(id="a", agent="writer", prompt="About {topic}")
    with pytest.raises(
        oc.PlanError, match=r"\{topic\}, which is neither a dependency nor an input"
    ):
        check(task)
    check(task, inputs=("topic",))


def test_every_problem_is_listed() -> None:
    """With several problems the error carries them all, in plan order."""
    with pytest.raises(oc.PlanError) as info:
        check(
            oc.Task(id="a", agent="nobody", prompt="x"),
            oc.Task(id="b", agent="writer", prompt="{zzz}", after=["nope"]),
        )
    assert [p.task_id for p in info.value.problems] == ["a", "b", "b"]
    assert "2 more problem(s)" in str(info.value)


@given(plans(agents=AGENTS, inputs=("topic",)))
def test_random_valid_plans_are_accepted(plan: oc.Plan) -> None:
    """Every DAG the strategy builds validates."""
    assert oc.plan_problems(plan, agents=AGENTS, inputs=["topic"]) == []


@given(plans(agents=AGENTS, min_tasks=2), st.data())
def test_random_corruptions_are_rejected_with_the_right_task(
    plan: oc.Plan, data: st.DataObject
) -> None:
    """A back edge, unknown dependency, unknown agent or stray placeholder names the right task."""
    tasks = list(plan.tasks)
    index = data.draw(st.integers(0, len(tasks) - 1))
    victim = tasks[index]
    kind = data.draw(st.sampled_from(["agent", "dep", "placeholder", "cycle", "duplicate"]))
    if kind == "agent":
        tasks[index] = victim.model_copy(update={"agent": "ghost"})
        expected = {victim.id}
    elif kind == "dep":
        tasks[index] = victim.model_copy(update={"after": (*victim.after, "ghost_task")})
        expected = {victim.id}
    elif kind == "placeholder":
        tasks[index] = victim.model_copy(update={"prompt": victim.prompt + " {ghost_input}"})
        expected = {victim.id}
    elif kind == "duplicate":
        other = tasks[(index + 1) % len(tasks)]
        tasks.append(other.model_copy(update={"after": ()}))
        expected = {other.id}
    else:
        graph = plan.graph()
        descendants = nx.descendants(graph, victim.id)
        if not descendants:
            tasks[index] = victim.model_copy(update={"after": (*victim.after, victim.id)})
            expected = {victim.id}
        else:
            target = sorted(descendants)[0]
            tasks[index] = victim.model_copy(update={"after": (*victim.after, target)})
            # Any cycle now runs through the new edge: its nodes lie between victim and target.
            expected = (descendants & nx.ancestors(graph, target)) | {victim.id, target}
    corrupted = oc.Plan(tasks=tasks)
    with pytest.raises(oc.PlanError) as info:
        oc.validate_plan(corrupted, agents=AGENTS, inputs=())
    assert info.value.task_id in expected


@pytest.mark.slow
def test_thousands_of_misspelt_dependencies_get_bounded_hints() -> None:
    """3,000 misspelt dependencies are all reported; only the first few carry a did-you-mean
    (each computed over a shortlist), so a hostile plan cannot stall validation."""
    from orchestra.validation import _MAX_HINTS  # pyright: ignore[reportPrivateUsage]

    count = 3000
    tasks = [oc.Task(id=f"step_{i}", agent="researcher", prompt="x") for i in range(count)]
    tasks += [
        oc.Task(id=f"use_{i}", agent="researcher", prompt="x", after=[f"stpe_{i}"])
        for i in range(count)
    ]
    problems = oc.plan_problems(oc.Plan(tasks=tasks), agents=AGENTS)
    assert len(problems) == count
    hinted = [p for p in problems if "did you mean" in str(p)]
    assert len(hinted) == _MAX_HINTS
    assert "did you mean 'step_0'?" in str(problems[0])
    assert str(problems[-1]) == "task 'use_2999' depends on unknown task 'stpe_2999'"


def test_a_run_id_is_checked_where_it_enters() -> None:
    """Printable ids of any script pass; control characters, line breaks, blanks and overlong
    ids are refused with a ConfigError; None makes a fresh id."""
    from orchestra.validation import MAX_RUN_ID_CHARS, run_id_or_new

    assert run_id_or_new("café-报告-2026") == "café-报告-2026"
    assert len(run_id_or_new(None)) == 12
    for bad in ("a\r\nX-Injected: 1", "tab\there", "", " padded", "x" * (MAX_RUN_ID_CHARS + 1)):
        with pytest.raises(oc.ConfigError, match="run id"):
            run_id_or_new(bad)
