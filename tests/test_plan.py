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


def test_untrusted_plans_raise_plan_error_from_every_door() -> None:
    """model_validate and model_validate_json raise PlanError (a ValueError), never pydantic's
    ValidationError, for bad shapes, bad JSON and 100,000 nested brackets alike."""
    bad_inputs = [
        lambda: oc.Plan.model_validate({"tasks": 3}),
        lambda: oc.Plan.model_validate({"tasks": [{"id": "a b", "agent": "w", "prompt": "x"}]}),
        lambda: oc.Plan.model_validate_json("[" * 100_000),
        lambda: oc.Plan.model_validate_json('{"tasks": [], "extra": 1}'),
        lambda: oc.Task.model_validate_json('{"id": "a"}'),
    ]
    for bad in bad_inputs:
        with pytest.raises(oc.PlanError) as info:
            bad()
        assert isinstance(info.value, ValueError)
        assert info.value.__cause__ is None and info.value.__context__ is None
    with pytest.raises(oc.PlanError, match=r"task 'a b' is invalid") as info:
        oc.Plan.model_validate({"tasks": [{"id": "a b", "agent": "w", "prompt": "x"}]})


def test_dependencies_first_orders_a_long_reversed_chain() -> None:
    """A chain of 3,000 tasks listed last-first comes out first-to-last (each edge seen once)."""
    from orchestra.plan import dependencies_first

    chain = [
        oc.Task(id=f"t{i}", agent="w", prompt="x", after=[f"t{i - 1}"] if i else [])
        for i in range(3000)
    ]
    ordered = dependencies_first(reversed(chain))
    assert [t.id for t in ordered] == [t.id for t in chain]
    cyclic = [oc.Task(id="a", agent="w", prompt="x", after=["b"]), *chain[:2]]
    cyclic.append(oc.Task(id="b", agent="w", prompt="x", after=["a"]))
    assert [t.id for t in dependencies_first(cyclic)] == ["t0", "t1", "a", "b"]
