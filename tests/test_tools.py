"""Tools: typed functions → JSON schema, calls with JSON arguments, and the tool loop of a node."""

from __future__ import annotations

import inspect
import json
from typing import Any

import pytest
from pydantic import BaseModel

import orchestra as oc
from orchestra.testing import FakeModel, FakeReply, FakeRequest, FakeToolCall, fake_constellation
from orchestra.tools import tool_from_function

pytestmark = pytest.mark.anyio


class Point(BaseModel):
    """A point on the plane."""

    x: float
    y: float


def lookup(term: str, limit: int = 3) -> str:
    """Look a term up in the glossary.

    Longer explanation that the model does not need.
    """
    return f"{term}: definition ({limit})"


async def fetch(url: str) -> dict[str, Any]:
    """Fetch a page
    over two lines."""
    return {"url": url, "status": 200}


def distance(a: Point, b: Point) -> float:
    """Distance between two points."""
    return ((a.x - b.x) ** 2 + (a.y - b.y) ** 2) ** 0.5


def explode(reason: str) -> str:
    """Always fails."""
    raise RuntimeError(f"boom: {reason}")


def undocumented(n: int) -> int:
    return n


# -- schema ---------------------------------------------------------------------------------


async def test_schema_required_and_default_params() -> None:
    """Parameters without defaults are required; defaults appear in the schema."""
    schema = tool_from_function(lookup).schema()
    assert schema["type"] == "function"
    function = schema["function"]
    assert function["name"] == "lookup"
    params = function["parameters"]
    assert params["required"] == ["term"]
    assert params["properties"]["term"]["type"] == "string"
    assert params["properties"]["limit"] == {"default": 3, "title": "Limit", "type": "integer"}
    assert params["additionalProperties"] is False
    assert "title" not in params


async def test_description_is_first_docstring_paragraph() -> None:
    """The description is the docstring's first paragraph on one line; no docstring: the name."""
    assert tool_from_function(lookup).description == "Look a term up in the glossary."
    assert tool_from_function(fetch).description == "Fetch a page over two lines."
    assert tool_from_function(undocumented).description == "undocumented"


async def test_pydantic_model_params_are_nested_in_schema() -> None:
    """A pydantic-model parameter becomes a nested object schema."""
    params = tool_from_function(distance).schema()["function"]["parameters"]
    assert params["required"] == ["a", "b"]
    assert params["properties"]["a"] == {"$ref": "#/$defs/Point"}
    assert set(params["$defs"]["Point"]["properties"]) == {"x", "y"}


# -- calls ----------------------------------------------------------------------------------


async def test_sync_tool_called_with_json_args() -> None:
    """A sync tool runs on the JSON arguments, defaults filled in."""
    tool = tool_from_function(lookup)
    assert await tool.call('{"term": "TTFT"}') == "TTFT: definition (3)"
    assert await tool.call('{"term": "TTFT", "limit": 1}') == "TTFT: definition (1)"


async def test_async_tool_result_is_json_text() -> None:
    """An async tool is awaited; a non-string result is returned as JSON text."""
    answer = await tool_from_function(fetch).call('{"url": "http://x"}')
    assert json.loads(answer) == {"url": "http://x", "status": 200}


async def test_pydantic_model_args_are_validated_into_models() -> None:
    """Nested JSON arguments arrive as pydantic model instances."""
    answer = await tool_from_function(distance).call(
        '{"a": {"x": 0, "y": 0}, "b": {"x": 3, "y": 4}}'
    )
    assert answer == "5.0"


async def test_empty_arguments_mean_no_arguments() -> None:
    """An empty argument string calls a no-parameter tool."""

    def now() -> str:
        """The time."""
        return "noon"

    assert await tool_from_function(now).call("") == "noon"


async def test_invalid_json_is_error_text() -> None:
    """Arguments that are not JSON give an error text naming the tool, not an exception."""
    answer = await tool_from_function(lookup).call("{term: x")
    assert answer.startswith("error: invalid arguments for lookup:")


@pytest.mark.parametrize(
    "raw",
    ['{"limit": 2}', '{"term": "x", "limit": "many"}', '{"term": "x", "extra": 1}', "[1, 2]"],
)
async def test_invalid_args_are_error_text(raw: str) -> None:
    """Missing, mistyped, unexpected or non-object arguments give an error text."""
    answer = await tool_from_function(lookup).call(raw)
    assert answer.startswith("error: invalid arguments for lookup:")


async def test_raising_tool_is_error_text() -> None:
    """A tool that raises answers with the exception's type and message."""
    answer = await tool_from_function(explode).call('{"reason": "disk full"}')
    assert answer == "error: RuntimeError: boom: disk full"


def with_json(json: str) -> str:
    """Echo."""
    return f"got {json}"


def with_schema(schema: str) -> str:
    """Echo."""
    return f"got {schema}"


def with_underscore(_name: str) -> str:
    """Echo."""
    return f"got {_name}"


def with_model_config(model_config: str) -> str:
    """Echo."""
    return f"got {model_config}"


def positional_only(term: str, /) -> str:
    """Echo."""
    return f"got {term}"


@pytest.mark.parametrize(
    "function", [with_json, with_schema, with_underscore, with_model_config, positional_only]
)
async def test_any_parameter_works_or_is_refused_up_front(function: Any) -> None:
    """Parameters pydantic treats specially, or positional-only ones, work or are refused."""
    try:
        tool = tool_from_function(function)
    except oc.ConfigError:
        return  # refused up front: fine
    (name,) = inspect.signature(function).parameters
    assert list(tool.schema()["function"]["parameters"]["properties"]) == [name]
    assert await tool.call(json.dumps({name: "v"})) == "got v"


# -- configuration errors -------------------------------------------------------------------


async def test_missing_type_hint_is_config_error() -> None:
    """A parameter without a type hint is refused, naming the parameter."""

    def untyped(x, y: int) -> int:  # type: ignore[no-untyped-def]
        return y

    with pytest.raises(oc.ConfigError, match="parameter 'x' has no type hint"):
        tool_from_function(untyped)


async def test_var_args_are_config_error() -> None:
    """*args and **kwargs are refused: the model needs named parameters."""

    def star(*items: int) -> int:
        return sum(items)

    def double_star(**options: str) -> str:
        return ""

    with pytest.raises(oc.ConfigError, match=r"takes \*items"):
        tool_from_function(star)
    with pytest.raises(oc.ConfigError, match="double_star"):
        tool_from_function(double_star)


async def test_non_callable_is_config_error() -> None:
    """Something that is not callable cannot be a tool."""
    with pytest.raises(oc.ConfigError, match="must be a function"):
        tool_from_function("lookup")  # type: ignore[arg-type]


async def test_duplicate_tool_names_in_agent_are_config_error() -> None:
    """An agent with two tools of the same name is refused."""

    def other() -> str:
        return ""

    other.__name__ = "lookup"
    with pytest.raises(oc.ConfigError, match="two tools are named 'lookup'"):
        oc.Agent(name="a", tools=[lookup, other])


async def test_agent_turns_functions_into_tools() -> None:
    """Agent(tools=[...]) accepts functions and Tool objects alike."""
    agent = oc.Agent(name="a", tools=[lookup, tool_from_function(fetch)])
    assert [t.name for t in agent.tools] == ["lookup", "fetch"]
    assert agent.tool("fetch") is agent.tools[1]
    assert agent.tool("missing") is None


# -- the tool loop through Orchestra --------------------------------------------------------


def _orchestra(fake: FakeModel, agent: oc.Agent) -> oc.Orchestra:
    return oc.Orchestra(models=fake_constellation(fake), agents=[agent])


ONE_TASK = oc.Plan(tasks=[oc.Task(id="q", agent="helper", prompt="What is x?")])


async def test_model_calls_tool_then_answers_with_its_result(fake: FakeModel) -> None:
    """The model asks for a tool, sees its answer in the next call, and answers."""

    def answer(request: FakeRequest) -> FakeReply | str:
        if not request.tool_results:
            return FakeReply(tool_calls=[FakeToolCall("lookup", {"term": "x"})])
        return f"answer from {request.tool_results[0]}"

    fake.handler = answer
    agent = oc.Agent(name="helper", tools=[lookup])
    result = await _orchestra(fake, agent).execute(ONE_TASK)
    assert result.output == "answer from x: definition (3)"
    first, second = fake.calls
    assert [t["function"]["name"] for t in first.tools] == ["lookup"]
    assert second.tool_results == ["x: definition (3)"]
    assistant = second.messages[-2]
    assert assistant["role"] == "assistant"
    assert assistant["tool_calls"][0]["function"]["name"] == "lookup"
    assert result.nodes["q"].usage.calls == 2
    assert len(result.nodes["q"].attempts) == 2


async def test_several_tool_calls_in_one_turn_answer_in_order(fake: FakeModel) -> None:
    """Two tool calls in one reply both run; their answers come back in call order."""
    fake.responses = {
        "helper": [
            FakeReply(
                tool_calls=[
                    FakeToolCall("lookup", {"term": "a"}),
                    FakeToolCall("fetch", {"url": "u"}),
                ]
            ),
            "done",
        ]
    }
    agent = oc.Agent(name="helper", tools=[lookup, fetch])
    result = await _orchestra(fake, agent).execute(ONE_TASK)
    assert result.output == "done"
    results = fake.calls[1].tool_results
    assert results[0] == "a: definition (3)"
    assert json.loads(results[1]) == {"url": "u", "status": 200}


async def test_raising_tool_error_reaches_model_and_run_succeeds(fake: FakeModel) -> None:
    """A tool's exception is shown to the model as text; the node still succeeds."""
    fake.responses = {
        "helper": [FakeReply(tool_calls=[FakeToolCall("explode", {"reason": "no"})]), "recovered"]
    }
    agent = oc.Agent(name="helper", tools=[explode])
    result = await _orchestra(fake, agent).execute(ONE_TASK)
    assert result.status == "succeeded"
    assert result.output == "recovered"
    assert fake.calls[1].tool_results == ["error: RuntimeError: boom: no"]


async def test_tool_loop_past_max_steps_fails_node(fake: FakeModel) -> None:
    """A model that keeps calling tools fails the node after max_steps calls."""
    fake.responses = {"helper": FakeReply(tool_calls=[FakeToolCall("lookup", {"term": "x"})])}
    agent = oc.Agent(name="helper", tools=[lookup], max_steps=3)
    with pytest.raises(oc.NodeFailed, match="max_steps=3") as info:
        await _orchestra(fake, agent).execute(ONE_TASK)
    assert info.value.task_id == "q"
    assert len(fake.calls) == 3
    assert info.value.result.nodes["q"].error is not None


async def test_unknown_tool_gets_error_listing_real_tools(fake: FakeModel) -> None:
    """A call to a tool the agent lacks answers with an error naming the agent's tools."""
    fake.responses = {
        "helper": [FakeReply(tool_calls=[FakeToolCall("search", {"q": "x"})]), "fine"]
    }
    agent = oc.Agent(name="helper", tools=[lookup, fetch])
    result = await _orchestra(fake, agent).execute(ONE_TASK)
    assert result.output == "fine"
    assert fake.calls[1].tool_results == ["error: there is no tool 'search' (tools: lookup, fetch)"]


async def test_invalid_tool_args_from_model_reach_model_as_error(fake: FakeModel) -> None:
    """Arguments that do not validate come back to the model as an error text."""
    fake.responses = {
        "helper": [FakeReply(tool_calls=[FakeToolCall("lookup", {"limit": 1})]), "fine"]
    }
    agent = oc.Agent(name="helper", tools=[lookup])
    await _orchestra(fake, agent).execute(ONE_TASK)
    (text,) = fake.calls[1].tool_results
    assert text.startswith("error: invalid arguments for lookup:")
    assert "term" in text


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@pytest.mark.parametrize(
    "raw",
    ['{"a": true, "b": 1}', '{"a": "3", "b": 1}', '{"a": 1.5, "b": 1}', '{"a": [1], "b": 1}'],
)
async def test_arguments_are_validated_strictly(raw: str) -> None:
    """JSON `true`, a numeric string or a float is not an int: the model is told, the tool is
    not run on a coerced value."""
    answer = await tool_from_function(add).call(raw)
    assert answer.startswith("error: invalid arguments for add:")
    assert await tool_from_function(add).call('{"a": 2, "b": 3}') == "5"


async def test_hostile_arguments_are_error_text() -> None:
    """100,000 nested brackets, megabytes of arguments and lone surrogates give an error text
    or a valid call, never an exception out of the tool."""
    tool = tool_from_function(lookup)
    deep = await tool.call('{"term": ' + "[" * 100_000 + "}")
    assert deep.startswith("error: invalid arguments for lookup:")
    huge = await tool.call('{"term": "' + "x" * 5_000_000 + '"}')
    assert "orchestra reads at most" in huge
    assert await tool.call('{"term": "a\ud800"}') == "a\ufffd: definition (3)"


@pytest.mark.slow
async def test_a_blocking_tool_does_not_hold_the_run_past_its_deadline(fake: FakeModel) -> None:
    """A plain function that blocks (a hung socket, a lock) runs in a worker thread: the run's
    max_seconds still stops the run, while the thread is still blocked (it cannot be killed)."""
    import threading

    release = threading.Event()
    entered = threading.Event()
    # Should the deadline ever wait for the thread again, the run ends late and fails below.
    safety = threading.Timer(60, release.set)
    safety.start()

    def wait_forever(query: str) -> str:
        """Block until released."""
        entered.set()
        release.wait()
        return "late"

    fake.responses = {
        "helper": FakeReply(tool_calls=[FakeToolCall("wait_forever", {"query": "q"})])
    }
    agent = oc.Agent(name="helper", tools=[wait_forever])
    try:
        with pytest.raises(oc.BudgetExceeded, match="max_seconds"):
            await _orchestra(fake, agent).execute(ONE_TASK, budget=oc.Budget(max_seconds=2))
        assert entered.is_set() and not release.is_set()  # stopped while the tool still blocks
    finally:
        release.set()
        safety.cancel()


async def test_a_tool_answering_broken_text_does_not_break_the_next_call(fake: FakeModel) -> None:
    """A tool returning a lone surrogate: the model gets valid text, the next request goes out."""

    def broken(query: str) -> str:
        """Answer with a lone surrogate."""
        return f"bad \ud800 {query}"

    def answer(request: FakeRequest) -> FakeReply | str:
        if not request.tool_results:
            return FakeReply(tool_calls=[FakeToolCall("broken", {"query": "q"})])
        return f"saw {request.tool_results[0]}"

    fake.handler = answer
    result = await _orchestra(fake, oc.Agent(name="helper", tools=[broken])).execute(ONE_TASK)
    assert result.output == "saw bad \ufffd q"
