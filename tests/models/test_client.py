"""The model client through FakeModel and litellm: typed errors, no hidden retries or leaks."""

from __future__ import annotations

import contextlib
from typing import Any

import anyio
import pytest

import orchestra as oc
from orchestra.events import ModelCalled
from orchestra.models.client import ModelClient, scrub
from orchestra.models.loader import load_litellm, prices_per_request
from orchestra.testing import (
    FakeModel,
    FakeReply,
    FakeRequest,
    OpenAICompatibleServer,
    Reply,
    fake_constellation,
)
from orchestra.testing.constellation import DEFAULT_PROFILES

pytestmark = pytest.mark.anyio

KEY = "sk-live-0123456789abcdef"
ONE_TASK = oc.Plan(tasks=[oc.Task(id="q", agent="researcher", prompt="hello")])
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
def orch(fake: FakeModel, team: list[oc.Agent]) -> oc.Orchestra:
    """An Orchestra whose models do not retry: one failure, one request."""
    profiles = {
        name: {**fields, "retry": {"max_retries": 0}} for name, fields in DEFAULT_PROFILES.items()
    }
    return oc.Orchestra(models=fake_constellation(fake, profiles), agents=team, boss="boss")


async def _fail(fake: FakeModel, orch: oc.Orchestra) -> oc.ModelError:
    with pytest.raises(oc.NodeFailed) as info:
        await orch.execute(ONE_TASK)
    cause = info.value.__cause__
    assert isinstance(cause, oc.ModelError)
    return cause


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (401, "authentication failed"),
        (500, "server error"),
        (503, "server error"),
        (404, "not found"),
        (400, "bad request"),
    ],
)
async def test_http_failures_become_model_errors_with_status(
    fake: FakeModel, orch: oc.Orchestra, status: int, words: str
) -> None:
    """A provider failure fails the node with a ModelError carrying the status and a plain cause."""
    fake.fail_first, fake.fail_status = 1, status
    error = await _fail(fake, orch)
    assert error.status_code == status
    assert words in str(error)
    assert error.model == "fast"
    assert "'fast'" in str(error)


async def test_401_says_authentication(fake: FakeModel, orch: oc.Orchestra) -> None:
    """A 401 tells the user to check the spec's api_key; the attempt records the status."""
    fake.fail_first, fake.fail_status = 1, 401
    error = await _fail(fake, orch)
    assert "authentication" in str(error)
    assert "api_key" in str(error)
    assert [a.status_code for a in error.attempts] == [401]


async def test_one_failure_is_one_call_no_hidden_retries(
    fake: FakeModel, orch: oc.Orchestra
) -> None:
    """litellm does not retry behind orchestra's back: with max_retries=0, one failure is one
    call."""
    fake.fail_first, fake.fail_status = 1, 500
    await _fail(fake, orch)
    assert len(fake.calls) == 1


@pytest.mark.parametrize("status", [429, 503])
async def test_retryable_statuses_are_not_retried_by_litellm(fake: FakeModel, status: int) -> None:
    """Even rate-limit and unavailable errors reach the client after a single request."""
    fake.fail_first, fake.fail_status = 1, status
    spec = oc.ModelSpec(name="m", model=fake.model("m"))
    with pytest.raises(oc.ModelError):
        await ModelClient().complete(spec, HELLO)
    assert len(fake.calls) == 1


async def test_litellm_params_cannot_add_hidden_fallbacks(fake: FakeModel) -> None:
    """litellm's own `fallbacks` never sends hidden calls: refused, or at most one call is made."""
    fake.fail_first, fake.fail_status = 1, 500
    try:
        spec = oc.ModelSpec(
            name="m", model=fake.model("m"), litellm_params={"fallbacks": [fake.model("other")]}
        )
    except oc.ConfigError:
        return  # refused up front: fine
    with contextlib.suppress(oc.ModelError):
        await ModelClient().complete(spec, HELLO)
    assert [c.model for c in fake.calls] == ["m"], "litellm made a hidden fallback call"


async def test_empty_content_is_model_error(fake: FakeModel, orch: oc.Orchestra) -> None:
    """An answer with neither content nor tool calls is an error, not an empty output."""
    fake.responses = {"researcher": ""}
    error = await _fail(fake, orch)
    assert "empty content" in str(error)
    assert error.status_code is None


async def test_completion_carries_tokens_and_spec_priced_cost(fake: FakeModel) -> None:
    """A completion reports the provider's tokens and the spec's prices for them."""
    fake.responses = {"m": FakeReply("hi", input_tokens=2_000_000, output_tokens=1_000_000)}
    spec = oc.ModelSpec(name="m", model=fake.model("m"), input_cost=1.0, output_cost=3.0)
    completion = await ModelClient().complete(spec, HELLO)
    assert completion.model == "m"
    assert completion.content == "hi"
    assert (completion.input_tokens, completion.output_tokens) == (2_000_000, 1_000_000)
    assert completion.cost_usd == pytest.approx(5.0)
    assert completion.tool_calls == ()
    assert completion.raw_message == {"role": "assistant", "content": "hi"}


async def test_metadata_reaches_the_provider(fake: FakeModel) -> None:
    """The client's metadata (agent, task id) reaches a custom provider such as FakeModel."""
    spec = oc.ModelSpec(name="m", model=fake.model("m"))
    await ModelClient().complete(spec, HELLO, metadata={"agent": "a1", "task_id": "t1"})
    (call,) = fake.calls
    assert (call.agent, call.task_id, call.model, call.prompt) == ("a1", "t1", "m", "hello")


# -- secrets --------------------------------------------------------------------------------


def test_scrub_removes_the_key() -> None:
    """scrub replaces every occurrence of the spec's key."""
    spec = oc.ModelSpec(name="m", model="x/y", api_key=KEY)
    text = f"Incorrect API key provided: {KEY}. Key {KEY} is revoked."
    assert scrub(text, spec) == "Incorrect API key provided: ***. Key *** is revoked."


def test_scrub_without_key_changes_nothing() -> None:
    """With no key (or a trivially short one) the text is left as it is."""
    assert scrub("abc none", oc.ModelSpec(name="m", model="x/y")) == "abc none"
    assert scrub("abc none", oc.ModelSpec(name="m", model="x/y", api_key="no")) == "abc none"


async def test_key_in_provider_error_never_reaches_model_error(fake: FakeModel) -> None:
    """A provider error quoting the API key is scrubbed before it becomes a ModelError."""

    def leak(request: FakeRequest) -> str:
        raise RuntimeError(f"Incorrect API key provided: {KEY}")

    fake.handler = leak
    spec = oc.ModelSpec(name="m", model=fake.model("m"), api_key=KEY)
    with pytest.raises(oc.ModelError) as info:
        await ModelClient().complete(spec, HELLO)
    assert KEY not in str(info.value)
    assert "Incorrect API key provided" in str(info.value)


async def test_key_never_reaches_node_failed_events_or_result(fake: FakeModel) -> None:
    """Through a whole run, the key is absent from the error, the node result and the events."""

    def leak(request: FakeRequest) -> str:
        raise RuntimeError(f"bad key {KEY}")

    fake.handler = leak
    base = fake_constellation(fake)
    models = oc.Constellation(
        [
            s.model_copy(update={"api_key": oc.ModelSpec(name="k", model="k", api_key=KEY).api_key})
            for s in base
        ]
    )
    events: list[oc.Event] = []
    orch = oc.Orchestra(models=models, agents=[oc.Agent(name="researcher")], on_event=events.append)
    with pytest.raises(oc.NodeFailed) as info:
        await orch.execute(ONE_TASK)
    assert KEY not in str(info.value)
    assert KEY not in str(info.value.__cause__)
    assert KEY not in info.value.result.model_dump_json()
    assert events
    assert all(KEY not in e.model_dump_json() for e in events)


def test_load_litellm_switches_debug_info_off() -> None:
    """Loading litellm silences its debug banner and returns the same module each time."""
    litellm = load_litellm()
    assert litellm.suppress_debug_info is True
    assert load_litellm() is litellm


def _lookup(term: str) -> str:
    """Look a term up."""
    return f"{term} means time to first token"


async def test_tool_turn_goes_back_with_empty_content(
    openai_server: OpenAICompatibleServer,
) -> None:
    """The assistant's tool-call turn is sent back with `content: ""`, never without content."""
    openai_server.script(
        "m",
        [
            Reply(None, tool_calls=[{"name": "_lookup", "arguments": {"term": "TTFT"}}]),
            Reply("done"),
        ],
    )
    spec = oc.ModelSpec(name="m", model="openai/m", api_base=openai_server.url, api_key="k")
    agent = oc.Agent(name="w", tools=[_lookup])
    orch = oc.Orchestra(models=[spec], agents=[agent])
    result = await orch.execute(oc.Plan(tasks=[oc.Task(id="t", agent="w", prompt="what is TTFT?")]))
    assert result.output == "done"
    second = openai_server.requests[1].messages
    turn = next(m for m in second if m["role"] == "assistant")
    assert turn["content"] == ""
    call_id = turn["tool_calls"][0]["id"]  # type: ignore[index]
    assert second[-1] == {
        "role": "tool",
        "tool_call_id": call_id,
        "content": "TTFT means time to first token",
    }


def _streaming_spec(server: OpenAICompatibleServer) -> oc.ModelSpec:
    return oc.ModelSpec(
        name="m", model="openai/m", api_base=server.url, api_key="k", stream=True, input_cost=1.0
    )


@pytest.mark.parametrize("reported", [True, False], ids=["reported", "unreported"])
async def test_stream_without_usage_is_marked_estimated(
    openai_server: OpenAICompatibleServer, reported: bool
) -> None:
    """A stream whose server sent no usage (llama.cpp's) has estimated tokens, and says so;
    one that sent usage carries the server's counts, unmarked."""
    openai_server.script(
        "m", [Reply("a whole answer", input_tokens=7, output_tokens=3, no_usage=not reported)]
    )
    events: list[oc.Event] = []
    orch = oc.Orchestra(models=[_streaming_spec(openai_server)], on_event=events.append)
    result = await orch.execute(oc.Plan(tasks=[oc.Task(id="t", agent="assistant", prompt="go")]))
    usage = result.nodes["t"].usage
    assert usage.estimated is not reported
    assert result.usage.estimated is not reported
    assert result.usage.by_model["m"].estimated is not reported
    called = next(e for e in events if isinstance(e, ModelCalled))
    assert called.estimated is not reported
    if reported:
        assert (usage.input_tokens, usage.output_tokens) == (7, 3)
    else:
        assert usage.input_tokens > 0 and usage.output_tokens > 0


class _Listener:
    """A litellm callback as a user registers one (litellm.callbacks = [...])."""

    def __init__(self) -> None:
        from litellm.integrations.custom_logger import CustomLogger

        self.seen: list[str] = []
        self.costs: list[object] = []
        """What litellm priced each call at, as its callbacks hear it."""
        self.heard = anyio.Event()
        listener = self

        class Logger(CustomLogger):
            async def async_log_success_event(
                self, kwargs: Any, response_obj: object, start_time: object, end_time: object
            ) -> None:
                listener.seen.append("success")
                listener.costs.append(kwargs.get("response_cost"))
                listener.heard.set()

        self.logger = Logger()


async def test_a_users_litellm_callback_still_fires(fake: FakeModel) -> None:
    """orchestra skips litellm's own per-call logging only while nothing listens to it: a
    callback the user registered with litellm still hears every call, priced as orchestra
    charged it (from litellm 1.110 orchestra gives litellm the spec's prices with each call,
    so litellm does not search its price list for a model it does not know)."""
    litellm = load_litellm()
    listener = _Listener()
    before = list(litellm.callbacks)
    litellm.callbacks = [*before, listener.logger]
    try:
        spec = oc.ModelSpec(name="m", model=fake.model("m"), input_cost=2.0, output_cost=8.0)
        completion = await ModelClient().complete(spec, HELLO)
        with anyio.fail_after(10):
            await listener.heard.wait()  # litellm logs success on its own worker, soon after
    finally:
        litellm.callbacks = before
    assert listener.seen == ["success"]
    assert completion.cost_usd > 0
    if prices_per_request():
        assert listener.costs == [pytest.approx(completion.cost_usd)]


async def test_without_listeners_calls_skip_litellms_logging(fake: FakeModel) -> None:
    """With nothing registered, a call leaves no litellm logging work behind (the switch is
    set for the call only, so later callers see litellm's default)."""
    from litellm._internal_context import is_internal_call

    spec = oc.ModelSpec(name="m", model=fake.model("m"))
    await ModelClient().complete(spec, HELLO)
    assert is_internal_call.get() is False


async def test_prices_go_with_the_request_only(openai_server: OpenAICompatibleServer) -> None:
    """The spec's prices never reach the provider, and litellm's price list stays as it was
    (no model registered behind the user's back); an unpriced spec sends none."""
    litellm = load_litellm()
    known = set(litellm.model_cost)
    for prices in ({"input_cost": 1.0, "output_cost": 2.0}, {}):
        spec = oc.ModelSpec(
            name="m", model="openai/own-model", api_base=openai_server.url, api_key="k", **prices
        )
        await ModelClient().complete(spec, HELLO)
        assert not [key for key in openai_server.requests[-1].body if "cost" in key]
    assert set(litellm.model_cost) == known
