"""Plans: placeholders, rendering, the graph, and field validation."""

import pytest

import orchestra as oc
from orchestra.plan import placeholders, render_prompt


def test_placeholders_are_identifiers_in_order() -> None:
    """Only `{identifier}` forms are placeholders; JSON braces and `{{x}}` are literal."""
    template = 'Use {facts} and {topic}, again {facts}; JSON {"a": 1}; {{literal}}; { spaced }'
    assert placeholders(template) == ["facts", "topic"]


def test_render_fills_values_and_unescapes() -> None:
    """Rendering fills placeholders and turns `{{`/`}}` into single braces."""
    assert render_prompt("{a} + {{b}} = {c}", {"a": "1", "c": "3"}) == "1 + {b} = 3"


def test_graph_is_networkx_dag_keyed_by_task_id() -> None:
    """`graph()` gives a DiGraph with edges from dependency to dependent and the task on nodes."""
    plan = oc.Plan(
        tasks=[
            oc.Task(id="a", agent="w", prompt="x"),
            oc.Task(id="b", agent="w", prompt="{a}", after=["a"]),
            oc.Task(id="c", agent="w", prompt="{a}", after=["a"]),
        ]
    )
    graph = plan.graph()
    assert sorted(graph.edges) == [("a", "b"), ("a", "c")]
    assert graph.nodes["b"]["task"].prompt == "{a}"
    assert plan.sinks() == ["b", "c"]
    assert plan.answer_ids() == ["b", "c"]


def test_bad_task_fields_raise_plan_error_naming_the_task() -> None:
    """A malformed task id is a PlanError carrying the id and the rule it broke."""
    with pytest.raises(oc.PlanError, match="task '1 bad'") as info:
        oc.Task(id="1 bad", agent="w", prompt="x")
    assert info.value.task_id == "1 bad"


def test_empty_plan_is_rejected() -> None:
    """A plan needs at least one task."""
    with pytest.raises(oc.PlanError, match="tasks"):
        oc.Plan(tasks=[])


def test_plan_json_schema_round_trip() -> None:
    """A plan serialises to JSON valid against its schema and back."""
    plan = oc.Plan(tasks=[oc.Task(id="a", agent="w", prompt="x", after=[])], output="a")
    assert oc.Plan.model_validate_json(plan.model_dump_json()) == plan
    assert "tasks" in oc.Plan.model_json_schema()["properties"]


def test_unknown_task_lookup_is_plan_error() -> None:
    """Looking up a missing task names it."""
    plan = oc.Plan(tasks=[oc.Task(id="a", agent="w", prompt="x")])
    with pytest.raises(oc.PlanError, match="no task 'b'"):
        plan.task("b")
