"""Constrained planning: the plan schema specialised to an Orchestra, sent where the boss can
decode under it."""

from __future__ import annotations

import json
import re
from typing import Any, cast

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import orchestra as oc
from orchestra.plan import TASK_ID_PATTERN
from orchestra.planning.schema import (
    PROMPT_CHARS,
    decoding_schema,
    plan_schema,
    task_ids,
    tied,
)
from orchestra.testing import OpenAICompatibleServer, RecordedRequest, Reply
from orchestra.validation import plan_problems

pytestmark = pytest.mark.anyio

PLAN = {
    "tasks": [
        {"id": "t1", "agent": "w", "prompt": "facts", "after": []},
        {"id": "t2", "agent": "w", "prompt": "memo from {t1}", "after": ["t1"]},
    ]
}


@given(st.integers(0, 40), st.sets(st.from_regex(r"t[0-9]{1,2}", fullmatch=True), max_size=20))
def test_task_ids_are_fresh_valid_and_distinct(count: int, taken: set[str]) -> None:
    """task_ids gives `count` distinct valid ids, none of them taken."""
    ids = task_ids(count, taken=taken)
    assert len(ids) == len(set(ids)) == count
    assert not set(ids) & taken
    assert all(re.fullmatch(TASK_ID_PATTERN, i) for i in ids)


def test_schema_names_only_what_exists() -> None:
    """Agents, models and ids are enums; a replan's ids avoid taken ones and may name finished
    tasks as dependencies; the task count is bounded."""
    schema = plan_schema(["w", "r"], ["fast"], taken={"t1", "t2"}, finished={"t1"}, max_tasks=3)
    tasks = schema["properties"]["tasks"]
    fields = tasks["items"]["properties"]
    assert tasks["maxItems"] == 3 and tasks["minItems"] == 1
    assert fields["id"]["enum"] == ["t3", "t4", "t5"]
    assert fields["agent"]["enum"] == ["w", "r"]
    assert fields["model"]["enum"] == ["fast"]
    assert fields["after"]["items"]["enum"] == ["t3", "t4", "t5", "t1"]
    assert tasks["items"]["additionalProperties"] is False
    assert "Unique name of the task" in fields["id"]["description"]


def test_a_plan_of_the_schema_is_a_valid_plan() -> None:
    """Anything the specialised schema allows parses as a Plan (it only narrows the plan's)."""
    schema = plan_schema(["w"], ["fast"])
    fields = schema["properties"]["tasks"]["items"]["properties"]
    assert set(fields) <= set(oc.Task.model_fields)
    assert set(schema["properties"]) <= set(oc.Plan.model_fields)
    assert oc.Plan.model_validate(PLAN).tasks[1].after == ("t1",)


AGENTS, MODELS = ["w", "r"], ["fast", "slow"]
_PROMPT_TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters='"\\'),
    max_size=12,
)


@st.composite
def decoded_plans(
    draw: st.DrawFn, finished: tuple[str, ...] = (), taken: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Any answer a server could decode under `decoding_schema(AGENTS, MODELS)`: prompts with
    placeholders of every kind (earlier, later and own ids, inputs, unknown names)."""
    ids = task_ids(draw(st.integers(1, 8)), taken=taken)
    names = [*ids, *finished, "topic", "item", "nope"]
    tasks: list[dict[str, Any]] = []
    for i, task_id in enumerate(ids):
        deps = [*ids[:i], *finished]
        pieces = draw(st.lists(_PROMPT_TEXT | st.sampled_from(names).map("{{{}}}".format)))
        task: dict[str, Any] = {
            "id": task_id,
            "agent": draw(st.sampled_from(AGENTS)),
            "prompt": ("x" + "".join(pieces))[:PROMPT_CHARS],
            "after": draw(st.lists(st.sampled_from(deps), max_size=len(deps))) if deps else [],
        }
        if draw(st.booleans()):
            task["model"] = draw(st.sampled_from(MODELS))
        tasks.append(task)
    return {"tasks": tasks}


@settings(deadline=None)  # validating against the big schema is slow under load
@given(decoded_plans())
def test_every_answer_decoded_under_the_schema_is_a_valid_plan(answer: dict[str, Any]) -> None:
    """Whatever a server decoding under the positional schema writes, once tied, is a plan
    with no problem at all: ids, dependencies, cycles and placeholders are all sound."""
    schema = decoding_schema(AGENTS, MODELS)
    jsonschema.Draft202012Validator(schema).validate(answer)
    plan = tied(oc.Plan.model_validate(answer), inputs=["topic"])
    assert plan_problems(plan, agents=AGENTS, models=MODELS, inputs=["topic"]) == []


@settings(deadline=None)  # validating against the big schema is slow under load
@given(decoded_plans(finished=("done",), taken=("t1",)))
def test_a_replans_answer_may_wait_for_finished_tasks(answer: dict[str, Any]) -> None:
    """In a replan, tasks may wait for (and use) finished tasks; tying keeps those."""
    schema = decoding_schema(AGENTS, MODELS, taken={"t1"}, finished={"done"})
    jsonschema.Draft202012Validator(schema).validate(answer)
    plan = tied(oc.Plan.model_validate(answer), finished=["done"])
    tasks = [*plan.tasks, oc.Task(id="done", agent="w", prompt="x")]
    whole = oc.Plan(tasks=tasks)
    assert plan_problems(whole, agents=AGENTS, models=MODELS, inputs=["topic"]) == []


def test_the_schema_rules_out_what_would_not_run() -> None:
    """Forward or own dependencies, repeated ids, quotes and newlines in prompts, and more
    than `max_tasks` tasks are outside the positional schema."""
    check = jsonschema.Draft202012Validator(decoding_schema(AGENTS, MODELS, max_tasks=2))
    one = {"id": "t1", "agent": "w", "prompt": "go", "after": []}
    two = {"id": "t2", "agent": "w", "prompt": "go", "after": ["t1"]}
    assert check.is_valid({"tasks": [one, two]})
    for tasks in (
        [{**one, "after": ["t2"]}, two],
        [one, {**two, "after": ["t2"]}],
        [one, {**two, "id": "t1"}],
        [one, two, {**two, "id": "t3"}],
        [{**one, "prompt": "a\nb"}],
        [{**one, "prompt": 'say "hi"'}],
        [{**one, "prompt": "x" * (PROMPT_CHARS + 1)}],
    ):
        assert not check.is_valid({"tasks": tasks}), tasks


def test_tying_never_closes_a_cycle() -> None:
    """A placeholder naming a task that already waits for this one stays text; one naming a
    later independent task becomes a dependency."""
    plan = oc.Plan.model_validate(
        {
            "tasks": [
                {"id": "a", "agent": "w", "prompt": "use {b} and {c}"},
                {"id": "b", "agent": "w", "prompt": "x", "after": ["a"]},
                {"id": "c", "agent": "w", "prompt": "y"},
            ]
        }
    )
    first = tied(plan).tasks[0]
    assert (first.prompt, first.after) == ("use {{b}} and {c}", ("c",))


def _spec(server: OpenAICompatibleServer, name: str, **fields: object) -> oc.ModelSpec:
    return oc.ModelSpec.parse(
        {"name": name, "model": f"openai/{name}", "api_base": server.url, "api_key": "k", **fields}
    )


def _orchestra(server: OpenAICompatibleServer, **boss: object) -> oc.Orchestra:
    server.script("boss", [Reply(json.dumps(PLAN))])
    server.handler = lambda request: Reply(f"done: {request.last_user_message[:20]}")
    return oc.Orchestra(
        models=[_spec(server, "boss", **boss), _spec(server, "worker")],
        agents=[oc.Agent(name="w", model="worker", description="writes")],
        boss="boss",
    )


def _boss_request(server: OpenAICompatibleServer) -> RecordedRequest:
    return server.requests_for("boss")[0]


async def test_constrained_boss_gets_the_specialised_schema(
    openai_server: OpenAICompatibleServer,
) -> None:
    """A boss declaring llama.cpp's dialect decodes under this Orchestra's plan schema written
    by position, and is shown the plain form of it in its prompt."""
    orch = _orchestra(openai_server, structured_output="json_object")
    result = await orch.run("write a memo")
    assert result.status == "succeeded"
    request = _boss_request(openai_server)
    sent = cast(dict[str, Any], request.body["response_format"])
    assert sent["type"] == "json_object"
    assert sent["schema"] == decoding_schema(["w"], ["boss", "worker"])
    system = str(request.messages[0]["content"])
    assert json.dumps(plan_schema(["w"], ["boss", "worker"]), separators=(",", ":")) in system


async def test_unconstrained_boss_sees_the_general_schema(
    openai_server: OpenAICompatibleServer,
) -> None:
    """A boss whose server cannot be constrained gets no response_format and the plan schema."""
    await _orchestra(openai_server, structured_output="none").run("write a memo")
    request = _boss_request(openai_server)
    assert "response_format" not in request.body
    general = json.dumps(oc.Plan.model_json_schema(), separators=(",", ":"))
    assert general in str(request.messages[0]["content"])


async def test_openai_dialect_names_the_schema_plan(openai_server: OpenAICompatibleServer) -> None:
    """A json_schema boss is sent OpenAI's form, with the specialised schema named `plan`."""
    await _orchestra(openai_server, structured_output="json_schema").run("write a memo")
    sent = cast(dict[str, Any], _boss_request(openai_server).body["response_format"])
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "plan"
    assert len(sent["json_schema"]["schema"]["properties"]["tasks"]["anyOf"]) == 8
