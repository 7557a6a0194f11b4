"""Structured output: response formats per server dialect, validation and re-asks over HTTP."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

import orchestra as oc
from orchestra.models.structured import REASKS, json_object, response_format
from orchestra.testing import OpenAICompatibleServer, Reply

pytestmark = pytest.mark.anyio


class Verdict(BaseModel):
    """A judgement with its confidence."""

    label: str
    confidence: float


SCHEMA = Verdict.model_json_schema()
ONE = oc.Plan(tasks=[oc.Task(id="judge", agent="judge", prompt="Is the sky blue?")])
GOOD = '{"label": "yes", "confidence": 0.9}'


def spec(server: OpenAICompatibleServer, **fields: object) -> oc.ModelSpec:
    return oc.ModelSpec.parse(
        {"name": "m", "model": "openai/m", "api_base": server.url, "api_key": "k", **fields}
    )


def orchestra(model: oc.ModelSpec) -> oc.Orchestra:
    agent = oc.Agent(name="judge", output_type=Verdict)
    return oc.Orchestra(models=[model], agents=[agent])


def test_each_dialect_gets_its_response_format() -> None:
    """json_schema is OpenAI's form, json_object llama.cpp's, none sends nothing."""
    openai = oc.ModelSpec(name="a", model="openai/x", structured_output="json_schema")
    assert response_format(openai, SCHEMA, name="Verdict") == {
        "type": "json_schema",
        "json_schema": {"name": "Verdict", "schema": SCHEMA, "strict": False},
    }
    llama = oc.ModelSpec(name="b", model="openai/x", structured_output="json_object")
    assert response_format(llama, SCHEMA) == {"type": "json_object", "schema": SCHEMA}
    plain = oc.ModelSpec(name="c", model="openai/gpt-4o-2024-08-06", structured_output="none")
    assert response_format(plain, SCHEMA) is None


def test_undeclared_dialect_follows_litellm() -> None:
    """Unset, a model litellm knows to support schemas gets json_schema; an unknown one none."""
    known = response_format(oc.ModelSpec(name="a", model="openai/gpt-4o-2024-08-06"), SCHEMA)
    assert known is not None and known["type"] == "json_schema"
    assert response_format(oc.ModelSpec(name="b", model="openai/my-local-model"), SCHEMA) is None


def test_schema_names_are_made_acceptable() -> None:
    """OpenAI's schema names allow letters, digits, _ and - only."""
    openai = oc.ModelSpec(name="a", model="openai/x", structured_output="json_schema")
    made = response_format(openai, SCHEMA, name="my output.v2")
    assert made is not None and made["json_schema"]["name"] == "my_output_v2"


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ('{"a": 1}', {"a": 1}),
        ('Here:\n```json\n{"a": 1}\n```\nDone.', {"a": 1}),
        ('The answer is {"a": {"b": 2}} as asked.', {"a": {"b": 2}}),
        ("[1, 2]", None),
        ("no json here", None),
        ('{"a": 1', None),
    ],
)
def test_json_object_is_found_in_prose_and_fences(text: str, found: object) -> None:
    """The answer's JSON object is found bare, fenced or among prose; anything else is None."""
    assert json_object(text) == found


async def test_output_is_the_validated_instance(openai_server: OpenAICompatibleServer) -> None:
    """A node of an agent with an output type outputs an instance of it."""
    openai_server.script("m", [Reply(f"Sure:\n```json\n{GOOD}\n```")])
    result = await orchestra(spec(openai_server, structured_output="json_object")).execute(ONE)
    assert result.output == Verdict(label="yes", confidence=0.9)
    body = openai_server.requests[0].body
    assert body["response_format"] == {"type": "json_object", "schema": SCHEMA}
    prompt = openai_server.requests[0].last_user_message
    assert prompt.startswith("Is the sky blue?")
    assert json.dumps(SCHEMA, separators=(",", ":")) in prompt


async def test_server_without_structured_output_is_still_held_to_the_type(
    openai_server: OpenAICompatibleServer,
) -> None:
    """With no dialect declared, nothing is asked of the server; the answer is validated."""
    openai_server.script("m", [Reply(GOOD)])
    result = await orchestra(spec(openai_server)).execute(ONE)
    assert isinstance(result.output, Verdict)
    assert "response_format" not in openai_server.requests[0].body


async def test_invalid_answer_is_sent_back_with_its_problems(
    openai_server: OpenAICompatibleServer,
) -> None:
    """An answer failing the type is re-asked with the validation problems; the next one wins."""
    openai_server.script("m", [Reply('{"label": "yes"}'), Reply(GOOD)])
    result = await orchestra(spec(openai_server)).execute(ONE)
    assert result.output == Verdict(label="yes", confidence=0.9)
    node = result.nodes["judge"]
    assert node.usage.calls == 2
    retry = openai_server.requests[1].messages
    assert retry[-2] == {"role": "assistant", "content": '{"label": "yes"}'}
    assert "confidence" in str(retry[-1]["content"])
    assert "Field required" in str(retry[-1]["content"])


async def test_truncated_answer_is_re_asked_saying_so(
    openai_server: OpenAICompatibleServer,
) -> None:
    """A JSON answer cut at the token limit is re-asked, and the model is told it was cut."""
    openai_server.script("m", [Reply('{"label": "ye', finish_reason="length"), Reply(GOOD)])
    result = await orchestra(spec(openai_server)).execute(ONE)
    assert isinstance(result.output, Verdict)
    assert "truncated" in str(openai_server.requests[1].messages[-1]["content"])


async def test_answers_that_never_validate_fail_the_node(
    openai_server: OpenAICompatibleServer,
) -> None:
    """After the re-asks are spent the node fails with a ModelError naming the type and fixes."""
    openai_server.script("m", [Reply("I think yes.")] * (REASKS + 1))
    with pytest.raises(oc.NodeFailed) as caught:
        await orchestra(spec(openai_server)).execute(ONE)
    cause = caught.value.__cause__
    assert isinstance(cause, oc.ModelError)
    assert "no answer valid against Verdict in 3 tries" in str(cause)
    assert "structured_output" in str(cause)
    assert len(openai_server.requests) == REASKS + 1


def test_response_format_in_litellm_params_points_at_the_output_type() -> None:
    """The reserved-parameter error names the field to use instead of each parameter."""
    with pytest.raises(oc.ConfigError, match=r"for response_format use Agent\.output_type"):
        oc.ModelSpec(name="m", model="openai/x", litellm_params={"response_format": {}})
    with pytest.raises(oc.ConfigError, match=r"for tool_choice use Agent\.tool_choice"):
        oc.ModelSpec(name="m", model="openai/x", litellm_params={"tool_choice": "auto"})
