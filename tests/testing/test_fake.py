"""FakeModel and fake_constellation: scripted answers through the real litellm path."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

import orchestra as oc
from orchestra.models.client import ModelClient
from orchestra.testing import FakeModel, FakeReply, FakeRequest, fake_constellation
from orchestra.testing.constellation import DEFAULT_PROFILES

pytestmark = pytest.mark.anyio

CLIENT = ModelClient()


async def ask(
    fake: FakeModel,
    model: str = "fast",
    *,
    agent: str | None = None,
    task_id: str | None = None,
    prompt: str = "hello",
) -> str | None:
    """One call to `fake` as model `model` through ModelClient and litellm."""
    spec = oc.ModelSpec(name=model, model=fake.model(model))
    metadata = {k: v for k, v in {"agent": agent, "task_id": task_id}.items() if v is not None}
    completion = await CLIENT.complete(
        spec, [{"role": "user", "content": prompt}], metadata=metadata
    )
    return completion.content


async def test_default_answer_is_ok(fake: FakeModel) -> None:
    """An unscripted fake answers "ok"; `default` changes that."""
    assert await ask(fake) == "ok"
    fake.default = FakeReply("fallback text")
    assert await ask(fake) == "fallback text"


async def test_responses_by_agent_task_and_model(fake: FakeModel) -> None:
    """Responses are keyed by agent name, task id or model name."""
    fake.responses = {"writer": "by agent", "t9": "by task", "mid": "by model"}
    assert await ask(fake, agent="writer") == "by agent"
    assert await ask(fake, task_id="t9") == "by task"
    assert await ask(fake, "mid") == "by model"
    assert await ask(fake, "fast", agent="other", task_id="t1") == "ok"


async def test_lookup_order_is_task_then_agent_then_model(fake: FakeModel) -> None:
    """When several keys match, the task id wins over the agent, which wins over the model."""
    fake.responses = {"writer": "by agent", "t9": "by task", "mid": "by model"}
    assert await ask(fake, "mid", agent="writer", task_id="t9") == "by task"
    assert await ask(fake, "mid", agent="writer", task_id="t0") == "by agent"
    assert await ask(fake, "mid", agent="other", task_id="t0") == "by model"


async def test_list_responses_in_order_last_repeats(fake: FakeModel) -> None:
    """A list is answered in order, its last item repeating; each key keeps its own place."""
    fake.responses = {"a": ["one", "two", FakeReply("three")], "b": ["x", "y"]}
    assert [await ask(fake, agent="a") for _ in range(2)] == ["one", "two"]
    assert await ask(fake, agent="b") == "x"
    assert [await ask(fake, agent="a") for _ in range(3)] == ["three"] * 3
    assert await ask(fake, agent="b") == "y"


async def test_handler_covers_what_responses_do_not(fake: FakeModel) -> None:
    """The handler answers requests no response key covers, and sees the request."""
    fake.responses = {"writer": "scripted"}
    fake.handler = lambda r: f"{r.model}|{r.agent}|{r.task_id}|{r.prompt}|{r.index}"
    assert await ask(fake, agent="writer") == "scripted"
    assert await ask(fake, "mid", agent="critic", task_id="t", prompt="why") == "mid|critic|t|why|1"


async def test_async_handler_is_awaited(fake: FakeModel) -> None:
    """An async handler is awaited."""

    async def answer(request: FakeRequest) -> FakeReply:
        await anyio.lowlevel.checkpoint()
        return FakeReply(f"async {request.prompt}")

    fake.handler = answer
    assert await ask(fake, prompt="hi") == "async hi"


async def test_reply_latency_overrides_model_latency(fake: FakeModel) -> None:
    """FakeReply.latency delays that answer; a zero reply latency beats the fake's latency."""
    fake.latency = 5.0
    fake.responses = {"slow": FakeReply("s", latency=0.03), "quick": FakeReply("q", latency=0.0)}
    with anyio.fail_after(1):
        start = anyio.current_time()
        assert await ask(fake, agent="slow") == "s"
        assert anyio.current_time() - start >= 0.03
        assert await ask(fake, agent="quick") == "q"


async def test_latency_function_gets_request_and_reply(fake: FakeModel) -> None:
    """A latency function is given the request and the reply it delays."""
    seen: list[tuple[str | None, str | None]] = []

    def latency(request: FakeRequest, reply: FakeReply) -> float:
        seen.append((request.agent, reply.content))
        return 0.0

    fake.latency = latency
    fake.responses = {"a": "answer"}
    await ask(fake, agent="a")
    assert seen == [("a", "answer")]


async def test_token_counts_reach_usage(fake: FakeModel) -> None:
    """Scripted token counts are reported as usage; by default about four characters a token."""
    spec = oc.ModelSpec(name="fast", model=fake.model("fast"))
    fake.responses = {"s": FakeReply("hi", input_tokens=123, output_tokens=45)}
    scripted = await CLIENT.complete(
        spec, [{"role": "user", "content": "x"}], metadata={"agent": "s"}
    )
    assert (scripted.input_tokens, scripted.output_tokens) == (123, 45)
    fake.responses = {"d": "abcdefgh"}  # 8 characters: 2 tokens
    default = await CLIENT.complete(
        spec, [{"role": "user", "content": "x" * 40}], metadata={"agent": "d"}
    )
    assert (default.input_tokens, default.output_tokens) == (10, 2)


async def test_calls_are_recorded_and_filtered(fake: FakeModel) -> None:
    """Every call is recorded in order; calls_for matches agent, task id or model."""
    await ask(fake, "fast", agent="writer", task_id="t1", prompt="p1")
    await ask(fake, "mid", agent="critic", task_id="t2", prompt="p2")
    await ask(fake, "fast", agent="critic", task_id="t3", prompt="p3")
    assert [c.index for c in fake.calls] == [0, 1, 2]
    assert [c.prompt for c in fake.calls_for("critic")] == ["p2", "p3"]
    assert [c.prompt for c in fake.calls_for("fast")] == ["p1", "p3"]
    assert [c.prompt for c in fake.calls_for("t2")] == ["p2"]
    assert fake.calls_for("nobody") == []


async def test_request_prompt_and_tool_results() -> None:
    """FakeRequest.prompt is the last user message; tool_results the tool messages' contents."""
    request = FakeRequest(
        model="m",
        agent=None,
        task_id=None,
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first"},
            {"role": "tool", "content": "42"},
            {"role": "user", "content": "second"},
        ],
        tools=[],
        index=0,
    )
    assert request.prompt == "second"
    assert request.tool_results == ["42"]
    assert FakeRequest("m", None, None, [], [], 0).prompt == ""


async def test_fail_first_fails_then_answers(fake: FakeModel) -> None:
    """The first fail_first calls fail with fail_status; later ones answer."""
    fake.fail_first, fake.fail_status = 2, 429
    for _ in range(2):
        with pytest.raises(oc.ModelError) as info:
            await ask(fake)
        assert info.value.status_code == 429
    assert await ask(fake) == "ok"
    assert len(fake.calls) == 3


async def test_closed_fake_fails_with_clear_error() -> None:
    """After close() calls to its models fail, saying the fake was closed."""
    fake = FakeModel()
    assert await ask(fake) == "ok"
    fake.close()
    with pytest.raises(oc.ModelError, match=rf"no live FakeModel '{fake.id}' \(it was closed\)"):
        await ask(fake)
    assert len(fake.calls) == 1


async def test_fakes_are_independent() -> None:
    """Two fakes answer their own models and record their own calls."""
    one, two = FakeModel(default="one"), FakeModel(default="two")
    try:
        assert one.model("fast") != two.model("fast")
        assert await ask(one) == "one"
        assert await ask(two) == "two"
        assert (len(one.calls), len(two.calls)) == (1, 1)
    finally:
        one.close()
        two.close()


async def test_fake_constellation_default_names(fake: FakeModel) -> None:
    """By default the fake constellation is boss, fast and mid with the default profiles."""
    models = fake_constellation(fake)
    assert models.names == ["boss", "fast", "mid"]
    assert all(spec.model == fake.model(spec.name) for spec in models)
    assert models["boss"].quality == DEFAULT_PROFILES["boss"]["quality"]
    assert "planning" in models["boss"].tags
    assert models["fast"].input_cost == DEFAULT_PROFILES["fast"]["input_cost"]


async def test_fake_constellation_custom_specs(fake: FakeModel) -> None:
    """Custom spec fields by name replace the defaults; `model` is filled in."""
    models = fake_constellation(
        fake,
        {"small": {"quality": 0.3, "rpm": 10}, "big": {"quality": 0.95, "fallbacks": ["small"]}},
    )
    assert models.names == ["small", "big"]
    assert models["small"].rpm == 10
    assert models["big"].fallbacks == ("small",)
    assert models["big"].model == fake.model("big")


async def test_fake_constellation_answers_through_orchestra(fake: FakeModel) -> None:
    """A fake constellation runs a plan end to end, each call recorded with its agent and task."""
    fake.responses = {"fast": "from fast"}
    orch = oc.Orchestra(models=fake_constellation(fake), agents=[oc.Agent(name="a", model="fast")])
    result = await orch.execute(oc.Plan(tasks=[oc.Task(id="t", agent="a", prompt="go")]))
    assert result.output == "from fast"
    (call,) = fake.calls
    assert (call.model, call.agent, call.task_id, call.prompt) == ("fast", "a", "t", "go")


@pytest.mark.slow  # a second process pays litellm's import
def test_a_pickled_fake_answers_in_another_process(tmp_path: Path) -> None:
    """A FakeModel sent to another process (as to a Ray actor) answers its model strings there."""
    fake = FakeModel(responses={"fast": "from afar"})
    shipped = tmp_path / "fake.pickle"
    shipped.write_bytes(pickle.dumps((fake, fake.model("fast"))))
    code = "\n".join(
        [
            "import pickle, sys, anyio",
            "from orchestra.models.client import load_litellm",
            "fake, model = pickle.loads(open(sys.argv[1], 'rb').read())",
            "hi = [{'role': 'user', 'content': 'hi'}]",
            "ask = load_litellm().acompletion(model=model, messages=hi)",
            "reply = anyio.run(lambda: ask, backend='asyncio')",
            "print(reply.choices[0].message.content, len(fake.calls))",
        ]
    )
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(shipped)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert out.stdout.split() == ["from", "afar", "1"]
    assert fake.calls == []
    fake.close()
