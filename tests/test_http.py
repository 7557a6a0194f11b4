"""Integration over real HTTP: orchestra → litellm → OpenAICompatibleServer on 127.0.0.1."""

from __future__ import annotations

import json

import pytest

import orchestra as oc
from orchestra.testing.server import (
    EmptyChoices,
    Error,
    OpenAICompatibleServer,
    RecordedRequest,
    Reply,
)

pytestmark = pytest.mark.anyio

KEY = "sk-test-secret-123"


def spec(server: OpenAICompatibleServer, name: str, **fields: object) -> oc.ModelSpec:
    return oc.ModelSpec(
        name=name, model=f"openai/{name}", api_base=server.url, api_key=KEY, **fields
    )  # type: ignore[arg-type]


@pytest.fixture
def server() -> OpenAICompatibleServer:
    with OpenAICompatibleServer(api_key=KEY) as running:
        yield running  # type: ignore[misc]


def answer_by_prompt(request: RecordedRequest) -> Reply:
    return Reply(f"answer to: {request.last_user_message}")


async def test_hand_written_plan_over_http(server: OpenAICompatibleServer) -> None:
    """A plan runs on an OpenAI-compatible server; outputs flow into dependents' prompts."""
    server.handler = answer_by_prompt
    orch = oc.Orchestra(models=[spec(server, "local")], agents=[oc.Agent(name="w")])
    plan = oc.Plan(
        tasks=[
            oc.Task(id="facts", agent="w", prompt="facts on {topic}"),
            oc.Task(id="memo", agent="w", prompt="memo from {facts}", after=["facts"]),
        ]
    )
    result = await orch.execute(plan, inputs={"topic": "GPUs"})
    assert result.output == "answer to: memo from answer to: facts on GPUs"
    assert [r.model for r in server.requests] == ["local", "local"]
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"


async def test_peak_in_flight_equals_max_concurrency(server: OpenAICompatibleServer) -> None:
    """Under load, the server never sees more concurrent requests than the spec allows."""
    server.handler = lambda r: Reply("x", delay=0.05)
    orch = oc.Orchestra(models=[spec(server, "m", max_concurrency=3)], agents=[oc.Agent(name="w")])
    plan = oc.Plan(tasks=[oc.Task(id=f"t{i}", agent="w", prompt=f"p{i}") for i in range(12)])
    await orch.execute(plan)
    assert server.peak_in_flight("m") == 3
    assert len(server.requests) == 12


async def test_cost_equals_tokens_times_prices(server: OpenAICompatibleServer) -> None:
    """The run's cost is the server's reported tokens times the spec's prices, to the cent."""
    server.script("big", [Reply("a", input_tokens=120_000, output_tokens=30_000)] * 3)
    orch = oc.Orchestra(
        models=[spec(server, "big", input_cost=2.5, output_cost=10.0)], agents=[oc.Agent(name="w")]
    )
    plan = oc.Plan(tasks=[oc.Task(id=f"t{i}", agent="w", prompt="x") for i in range(3)])
    result = await orch.execute(plan)
    expected = 3 * (120_000 * 2.5 + 30_000 * 10.0) / 1_000_000
    assert round(result.usage.cost_usd, 2) == round(expected, 2) == 1.8
    assert result.usage.input_tokens == 360_000
    assert result.usage.by_model["big"].output_tokens == 90_000


async def test_fast_chain_beats_slow_sibling_by_server_clock(
    server: OpenAICompatibleServer,
) -> None:
    """Each node starts when its own dependencies finish: a chain runs during a slow sibling."""
    server.script("slow", [Reply("s", delay=0.6)])
    server.handler = lambda r: Reply(r.last_user_message)
    orch = oc.Orchestra(
        models=[spec(server, "slow"), spec(server, "quick")],
        agents=[oc.Agent(name="s", model="slow"), oc.Agent(name="q", model="quick")],
    )
    plan = oc.Plan(
        tasks=[
            oc.Task(id="slow", agent="s", prompt="slow"),
            oc.Task(id="c1", agent="q", prompt="c1"),
            oc.Task(id="c2", agent="q", prompt="c2 {c1}", after=["c1"]),
            oc.Task(id="c3", agent="q", prompt="c3 {c2}", after=["c2"]),
        ]
    )
    await orch.execute(plan)
    slow = server.requests_for("slow")[0]
    chain = server.requests_for("quick")
    assert len(chain) == 3
    assert all(r.finished < slow.finished for r in chain)


async def test_budget_stop_over_http_keeps_finished(server: OpenAICompatibleServer) -> None:
    """A spent budget stops dispatch; finished nodes are in the error's result."""
    server.handler = lambda r: Reply("x", input_tokens=1_000_000, output_tokens=0)
    orch = oc.Orchestra(
        models=[spec(server, "m", input_cost=1.0, output_cost=0.0)], agents=[oc.Agent(name="w")]
    )
    plan = oc.Plan(
        tasks=[
            oc.Task(id="a", agent="w", prompt="a"),
            oc.Task(id="b", agent="w", prompt="{a}", after=["a"]),
        ]
    )
    with pytest.raises(oc.BudgetExceeded) as info:
        await orch.execute(plan, budget=oc.Budget(max_usd=0.5))
    assert list(info.value.result.nodes) == ["a"]
    assert len(server.requests) == 1


async def test_hot_swap_mid_run_over_http(server: OpenAICompatibleServer) -> None:
    """After a swap, the next node's request goes to the new model on the server."""
    models = oc.Constellation([spec(server, "worker")])

    def swap_then_answer(request: RecordedRequest) -> Reply:
        if request.model == "worker":
            models.swap(
                "worker",
                oc.ModelSpec(
                    name="worker", model="openai/worker-v2", api_base=server.url, api_key=KEY
                ),
            )
        return Reply(f"from {request.model}")

    server.handler = swap_then_answer
    orch = oc.Orchestra(models=models, agents=[oc.Agent(name="w")])
    plan = oc.Plan(
        tasks=[
            oc.Task(id="a", agent="w", prompt="a"),
            oc.Task(id="b", agent="w", prompt="{a}", after=["a"]),
        ]
    )
    result = await orch.execute(plan)
    assert [r.model for r in server.requests] == ["worker", "worker-v2"]
    assert result.nodes["a"].output == "from worker"
    assert result.nodes["b"].output == "from worker-v2"


@pytest.mark.parametrize(
    "tasks",
    [
        [
            {"id": "a", "agent": "w", "prompt": "x", "after": ["b"]},
            {"id": "b", "agent": "w", "prompt": "y", "after": ["a"]},
        ],
        [{"id": "a", "agent": "w", "prompt": "x", "after": ["nope"]}],
        [{"id": "a", "agent": "ghost", "prompt": "x"}],
        [{"id": "a", "agent": "w", "prompt": "x"}, {"id": "a", "agent": "w", "prompt": "y"}],
        [{"id": "a", "agent": "w", "prompt": "{missing}"}],
        [{"id": "a", "agent": "w", "prompt": "x", "model": "ghost-model"}],
    ],
    ids=["cycle", "unknown-dep", "unknown-agent", "duplicate", "placeholder", "unknown-model"],
)
async def test_invalid_plans_fail_before_any_request(
    server: OpenAICompatibleServer, tasks: list[dict[str, object]]
) -> None:
    """Every kind of invalid plan raises PlanError naming a task; the server sees nothing."""
    orch = oc.Orchestra(models=[spec(server, "m")], agents=[oc.Agent(name="w")])
    with pytest.raises(oc.PlanError) as info:
        await orch.execute(oc.Plan.model_validate({"tasks": tasks}))
    assert info.value.task_id == "a"
    assert server.requests == []


async def test_boss_plan_over_http(server: OpenAICompatibleServer) -> None:
    """The boss answers a JSON plan over HTTP; it is validated and run on the workers."""
    plan = {
        "tasks": [
            {"id": "x", "agent": "w", "prompt": "do x"},
            {"id": "y", "agent": "w", "prompt": "use {x}", "after": ["x"]},
        ]
    }
    server.script("boss", [Reply(json.dumps(plan))])
    server.handler = answer_by_prompt
    orch = oc.Orchestra(
        models=[spec(server, "boss"), spec(server, "cheap", input_cost=0.01)],
        agents=[oc.Agent(name="w", model="cheap")],
        boss="boss",
    )
    result = await orch.run("the task")
    assert result.output == "answer to: use answer to: do x"
    assert [r.model for r in server.requests] == ["boss", "cheap", "cheap"]


async def test_authentication_error_is_clear_and_keyless(server: OpenAICompatibleServer) -> None:
    """A 401 fails the node after one request, naming the task and 'authentication', no key."""
    server.script("m", [Error(401)])
    orch = oc.Orchestra(models=[spec(server, "m")], agents=[oc.Agent(name="w")])
    plan = oc.Plan(tasks=[oc.Task(id="only", agent="w", prompt="x")])
    with pytest.raises(oc.NodeFailed, match=r"task 'only' failed: .*authentication") as info:
        await orch.execute(plan)
    assert len(server.requests) == 1
    cause = info.value.__cause__
    assert isinstance(cause, oc.ModelError) and cause.status_code == 401
    assert len(cause.attempts) == 1 and cause.attempts[0].status_code == 401
    assert KEY not in str(info.value) and KEY not in str(cause)


async def test_empty_choices_is_an_error_not_an_answer(server: OpenAICompatibleServer) -> None:
    """A 200 with no choices fails the node instead of passing emptiness downstream."""
    server.script("m", [EmptyChoices(), EmptyChoices()])
    quick_retry = oc.RetryPolicy(max_retries=1, backoff=0.01)
    orch = oc.Orchestra(models=[spec(server, "m", retry=quick_retry)], agents=[oc.Agent(name="w")])
    plan = oc.Plan(
        tasks=[
            oc.Task(id="a", agent="w", prompt="x"),
            oc.Task(id="b", agent="w", prompt="{a}", after=["a"]),
        ]
    )
    with pytest.raises(oc.NodeFailed, match="no choices"):
        await orch.execute(plan)
    assert len(server.requests) == 2  # retried once (transient), then the node failed


async def test_tool_loop_over_http(server: OpenAICompatibleServer) -> None:
    """The model's tool call runs the Python function; its result goes back in the next request."""

    async def square(n: int) -> int:
        """Square a number."""
        return n * n

    server.script(
        "m",
        [Reply(None, tool_calls=[{"name": "square", "arguments": {"n": 7}}]), Reply("49 it is")],
    )
    orch = oc.Orchestra(models=[spec(server, "m")], agents=[oc.Agent(name="w", tools=[square])])
    result = await orch.execute(oc.Plan(tasks=[oc.Task(id="a", agent="w", prompt="7 squared?")]))
    assert result.output == "49 it is"
    first, second = server.requests
    assert first.body["tools"][0]["function"]["name"] == "square"  # type: ignore[index]
    assert (
        second.messages[-1] == {"role": "tool", "tool_call_id": "call_1", "content": "49"}
        or second.messages[-1]["content"] == "49"
    )
    assert len(result.nodes["a"].attempts) == 2
