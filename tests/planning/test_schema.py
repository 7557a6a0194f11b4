"""Constrained planning: the plan schema specialised to an Orchestra, sent where the boss can
decode under it."""

from __future__ import annotations

import json
import re
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

import orchestra as oc
from orchestra.plan import TASK_ID_PATTERN
from orchestra.planning.schema import plan_schema, task_ids
from orchestra.testing import OpenAICompatibleServer, RecordedRequest, Reply

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
    """A boss declaring llama.cpp's dialect decodes under this Orchestra's plan schema, and is
    shown that schema in its prompt."""
    orch = _orchestra(openai_server, structured_output="json_object")
    result = await orch.run("write a memo")
    assert result.status == "succeeded"
    request = _boss_request(openai_server)
    sent = cast(dict[str, Any], request.body["response_format"])
    assert sent["type"] == "json_object"
    assert sent["schema"] == plan_schema(["w"], ["boss", "worker"])
    system = str(request.messages[0]["content"])
    assert json.dumps(sent["schema"], separators=(",", ":")) in system


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
    assert sent["json_schema"]["schema"]["properties"]["tasks"]["maxItems"] == 8
