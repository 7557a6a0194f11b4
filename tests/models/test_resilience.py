"""Resilience under injected faults, over real HTTP through OpenAICompatibleServer."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

import orchestra as oc
from orchestra.events import (
    BreakerChanged,
    HedgeStarted,
    HedgeWon,
    ModelCalled,
    RateLimited,
    RetryScheduled,
    RunFinished,
)
from orchestra.models.tokens import prompt_tokens
from orchestra.testing import (
    EmptyChoices,
    Error,
    FakeFailure,
    FakeModel,
    FakeReply,
    FakeRequest,
    Malformed,
    OpenAICompatibleServer,
    RecordedRequest,
    Reply,
    StreamCut,
    StreamStall,
    StreamUnfinished,
)

pytestmark = pytest.mark.anyio

KEY = "sk-resilience-test-key"
QUICK = oc.RetryPolicy(max_retries=2, backoff=0.01, jitter=0.0)
ONE = oc.Plan(tasks=[oc.Task(id="job", agent="w", prompt="do the job")])


@pytest.fixture
def server() -> Iterator[OpenAICompatibleServer]:
    with OpenAICompatibleServer(api_key=KEY) as running:
        yield running


def spec(server: OpenAICompatibleServer, name: str, **fields: object) -> oc.ModelSpec:
    base: dict[str, object] = {"retry": QUICK}
    return oc.ModelSpec.parse(
        {
            **base,
            **fields,
            "name": name,
            "model": f"openai/{name}",
            "api_base": server.url,
            "api_key": KEY,
        }
    )


def orchestra(*specs: oc.ModelSpec, events: list[oc.Event] | None = None) -> oc.Orchestra:
    sink = events.append if events is not None else None
    return oc.Orchestra(models=list(specs), agents=[oc.Agent(name="w")], on_event=sink)


def kinds(events: list[oc.Event]) -> list[str]:
    return [e.kind for e in events]


@pytest.mark.slow
async def test_429_honours_retry_after(server: OpenAICompatibleServer) -> None:
    """A 429 with Retry-After pauses the model for the asked wait, then the request goes
    again: two requests, spaced by it, and no retry spent."""
    server.script("m", [Error(429, retry_after=0.3), Reply("fine")])
    events: list[oc.Event] = []
    no_retries = oc.RetryPolicy(max_retries=0)
    result = await orchestra(spec(server, "m", retry=no_retries), events=events).execute(ONE)
    first, second = server.requests
    assert result.output == "fine"
    assert second.arrived - first.finished >= 0.3
    paused = [e for e in events if isinstance(e, RateLimited)]
    assert [e.pause for e in paused] == [pytest.approx(0.3)]
    assert not [e for e in events if isinstance(e, RetryScheduled)]
    assert [a.status_code for a in result.nodes["job"].attempts] == [429, None]


async def test_retry_after_is_capped(server: OpenAICompatibleServer) -> None:
    """A provider asking for a long wait is waited for at most `max_retry_after` seconds."""
    server.script("m", [Error(429, retry_after=120), Reply("fine")])
    capped = oc.RetryPolicy(max_retries=1, max_retry_after=0.05)
    result = await orchestra(spec(server, "m", retry=capped)).execute(ONE)
    assert result.output == "fine"
    assert len(server.requests) == 2


async def test_5xx_then_success(server: OpenAICompatibleServer) -> None:
    """Two server errors, then an answer: exactly three requests, every attempt recorded."""
    server.script("m", [Error(500), Error(502), Reply("third time")])
    result = await orchestra(spec(server, "m")).execute(ONE)
    assert result.output == "third time"
    assert len(server.requests) == 3
    assert [a.status_code for a in result.nodes["job"].attempts] == [500, 502, None]


async def test_503_storm_falls_back(server: OpenAICompatibleServer) -> None:
    """N retries means N+1 requests; then the fallback answers and the result says so."""
    server.script("flaky", [Error(503)] * 10)
    server.script("backup", [Reply("from backup")])
    events: list[oc.Event] = []
    orch = orchestra(
        spec(server, "flaky", fallbacks=["backup"]), spec(server, "backup"), events=events
    )
    result = await orch.execute(ONE)
    assert len(server.requests_for("flaky")) == 3
    assert result.nodes["job"].model == "backup"
    assert result.output == "from backup"
    assert kinds(events).count("retry_scheduled") == 2
    assert kinds(events).count("fallback_used") == 1
    assert [a.model for a in result.nodes["job"].attempts] == ["flaky"] * 3 + ["backup"]


async def test_all_models_failing_lists_every_attempt(server: OpenAICompatibleServer) -> None:
    """When the whole chain fails, ModelError.attempts holds every attempt on every model."""
    server.script("a", [Error(503)] * 5)
    server.script("b", [Error(500)] * 5)
    no_retry = oc.RetryPolicy(max_retries=1, backoff=0.01)
    orch = orchestra(
        spec(server, "a", fallbacks=["b"], retry=no_retry), spec(server, "b", retry=no_retry)
    )
    with pytest.raises(oc.NodeFailed, match="every model failed: a, b") as info:
        await orch.execute(ONE)
    cause = info.value.__cause__
    assert isinstance(cause, oc.ModelError)
    assert [a.model for a in cause.attempts] == ["a", "a", "b", "b"]
    assert len(server.requests) == 4


@pytest.mark.slow
async def test_hang_past_the_timeout(server: OpenAICompatibleServer) -> None:
    """A call hanging past the spec's timeout is abandoned, retried, then reported as a timeout."""
    server.script("slow", [Reply("late", delay=5)] * 2)
    events: list[oc.Event] = []
    one_retry = oc.RetryPolicy(max_retries=1, backoff=0.01)
    orch = orchestra(spec(server, "slow", timeout=0.2, retry=one_retry), events=events)
    with pytest.raises(oc.NodeFailed, match="timed out") as info:
        await orch.execute(ONE)
    server.stop()  # a hung request is recorded when it ends: end it
    assert len(server.requests_for("slow")) == 2
    assert kinds(events).count("call_timed_out") == 2
    assert all(a.status_code == 408 for a in info.value.result.nodes["job"].attempts)


async def test_connection_refused_falls_back(server: OpenAICompatibleServer) -> None:
    """Nothing listening on the port is transient: retried, then the fallback answers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    dead = oc.ModelSpec(
        name="dead",
        model="openai/dead",
        api_base=f"http://127.0.0.1:{closed_port}/v1",
        api_key=KEY,
        retry=oc.RetryPolicy(max_retries=1, backoff=0.01),
        fallbacks=["live"],
    )
    server.script("live", [Reply("alive")])
    result = await orchestra(dead, spec(server, "live")).execute(ONE)
    assert result.output == "alive"
    assert [a.model for a in result.nodes["job"].attempts] == ["dead", "dead", "live"]


@pytest.mark.parametrize("fault", [Malformed(), EmptyChoices()], ids=["malformed", "empty"])
async def test_broken_answers_are_retried(server: OpenAICompatibleServer, fault: object) -> None:
    """A malformed body or an answer with no choices is retried, never passed downstream."""
    server.script("m", [fault, Reply("whole answer")])  # type: ignore[list-item]
    result = await orchestra(spec(server, "m")).execute(ONE)
    assert result.output == "whole answer"
    assert len(server.requests) == 2


async def test_mid_stream_cut_never_returns_half_an_answer(server: OpenAICompatibleServer) -> None:
    """A stream cut mid-way is discarded and retried; the output is the whole second answer."""
    server.script(
        "m", [StreamCut("half of an answer that", after_chunks=2), Reply("complete answer")]
    )
    result = await orchestra(spec(server, "m", stream=True)).execute(ONE)
    assert result.output == "complete answer"
    assert all(r.stream for r in server.requests)
    assert len(server.requests) == 2


async def test_stream_ended_without_a_finish_reason_is_retried(
    server: OpenAICompatibleServer,
) -> None:
    """A stream that ends cleanly but never says why (llama.cpp's cut) is retried, not kept."""
    server.script("m", [StreamUnfinished("the first half of", after_chunks=3), Reply("whole")])
    events: list[oc.Event] = []
    result = await orchestra(spec(server, "m", stream=True), events=events).execute(ONE)
    assert result.output == "whole"
    assert len(server.requests) == 2
    retry = next(e for e in events if isinstance(e, RetryScheduled))
    assert "without a finish reason" in retry.error


async def test_only_cut_streams_fail_the_node(server: OpenAICompatibleServer) -> None:
    """When every stream is cut, the node fails: a partial answer is never its output."""
    server.script("m", [StreamUnfinished("part of it", after_chunks=1)] * 3)
    with pytest.raises(oc.NodeFailed) as caught:
        await orchestra(spec(server, "m", stream=True)).execute(ONE)
    assert caught.value.result.nodes["job"].output is None
    assert len(server.requests) == 3


async def test_stalled_stream_is_retried(server: OpenAICompatibleServer) -> None:
    """A stream with no chunk for stream_timeout seconds is abandoned and retried."""
    server.script("m", [StreamStall("stalled", after_chunks=1, stall=5.0), Reply("fresh answer")])
    events: list[oc.Event] = []
    orch = orchestra(spec(server, "m", stream=True, stream_timeout=0.15), events=events)
    result = await orch.execute(ONE)
    assert result.output == "fresh answer"
    assert "call_timed_out" in kinds(events)


async def test_context_overflow_goes_to_a_larger_model(server: OpenAICompatibleServer) -> None:
    """A context overflow is not retried; smaller fallbacks are skipped for a larger one."""
    server.script("small", [Error.context_overflow()])
    server.script("large", [Reply("fits")])
    orch = orchestra(
        spec(server, "small", max_context=8192, fallbacks=["tiny", "large"]),
        spec(server, "tiny", max_context=4096),
        spec(server, "large", max_context=128_000),
    )
    result = await orch.execute(ONE)
    assert result.output == "fits"
    assert [r.model for r in server.requests] == ["small", "large"]


@pytest.mark.parametrize(("status", "words"), [(401, "authentication"), (400, "bad request")])
async def test_errors_a_retry_cannot_fix_send_one_request(
    server: OpenAICompatibleServer, status: int, words: str
) -> None:
    """401 and 400 are not retried: one request, a clear error naming the task; no key."""
    server.script("m", [Error(status)] * 3)
    with pytest.raises(oc.NodeFailed, match=f"task 'job' failed: .*{words}") as info:
        await orchestra(spec(server, "m")).execute(ONE)
    assert len(server.requests) == 1
    assert KEY not in str(info.value)


@pytest.mark.slow
async def test_breaker_opens_then_recovers(server: OpenAICompatibleServer) -> None:
    """Repeated failures open the circuit (calls skip the model); after the cool-down one probe
    goes through and its success closes it again."""
    server.script("primary", [Error(503), Error(503)])
    server.handler = lambda request: Reply(f"{request.model} ok")
    breaker = oc.BreakerPolicy(failures=2, window=60, cooldown=0.3)
    no_retry = oc.RetryPolicy(max_retries=0)
    events: list[oc.Event] = []
    orch = orchestra(
        spec(server, "primary", breaker=breaker, retry=no_retry, fallbacks=["backup"]),
        spec(server, "backup"),
        events=events,
    )
    for _ in range(3):
        result = await orch.execute(ONE)
        assert result.nodes["job"].model == "backup"
    assert len(server.requests_for("primary")) == 2  # the third run skipped it: circuit open
    assert orch.breakers.state("primary") == "open"
    import anyio

    await anyio.sleep(0.35)
    result = await orch.execute(ONE)
    assert result.nodes["job"].model == "primary"
    states = [e.state for e in events if isinstance(e, BreakerChanged)]
    assert states == ["open", "half_open", "closed"]


async def test_hedge_wins_and_loser_is_cancelled(server: OpenAICompatibleServer) -> None:
    """A slow first call is hedged on another model; the hedge wins, the loser's cost counts."""
    server.script("slow", [Reply("slow answer", delay=3)])
    server.script("quick", [Reply("quick answer")])
    events: list[oc.Event] = []
    hedge = oc.HedgePolicy(after=0.1, model="quick")
    orch = oc.Orchestra(
        models=[spec(server, "slow", hedge=hedge, input_cost=1.0), spec(server, "quick")],
        agents=[oc.Agent(name="w", model="slow")],
        on_event=events.append,
    )
    result = await orch.execute(ONE)
    assert result.output == "quick answer"
    assert result.nodes["job"].model == "quick"
    won = next(e for e in events if isinstance(e, HedgeWon))
    assert won.winner == "hedge" and won.loser_cost_usd > 0
    assert result.usage.by_model["slow"].cost_usd == pytest.approx(won.loser_cost_usd)
    assert kinds(events).index("hedge_started") < kinds(events).index("hedge_won")


async def test_a_hedged_primary_that_failed_costs_nothing() -> None:
    """A primary that fails (500) after its hedge started is not charged: the node's usage is
    the hedge's answer alone (a failed request costs nothing, as for every other call)."""
    hedged, failed = anyio.Event(), anyio.Event()

    async def answer(request: FakeRequest) -> FakeReply | FakeFailure:
        if request.model == "slow":
            await hedged.wait()
            return FakeFailure(500)
        await failed.wait()  # the hedge answers once the primary's failure is seen
        return FakeReply("quick answer", input_tokens=10, output_tokens=5)

    def watch(event: oc.Event) -> None:
        if isinstance(event, HedgeStarted):
            hedged.set()
        elif isinstance(event, ModelCalled) and event.error is not None:
            failed.set()

    fake = FakeModel(handler=answer)
    hedge = oc.HedgePolicy(after=0.01, model="quick")
    models = [
        oc.ModelSpec(
            name=name,
            model=fake.model(name),
            input_cost=1.0,
            output_cost=1.0,
            retry=oc.RetryPolicy(max_retries=0),
            hedge=hedge if name == "slow" else None,
        )
        for name in ("slow", "quick")
    ]
    orch = oc.Orchestra(
        models=models, agents=[oc.Agent(name="w", model="slow")], journal=None, on_event=watch
    )
    try:
        result = await orch.execute(ONE)
    finally:
        fake.close()
    assert result.output == "quick answer"
    assert "slow" not in result.usage.by_model
    assert result.usage.total_tokens == 15
    assert result.cost_usd == pytest.approx(15 / 1e6)


async def test_a_hedge_that_never_left_the_queue_costs_nothing() -> None:
    """A hedge waiting for its model's only slot when its primary answers was never sent: it
    is not charged (a hedge cancelled in flight is charged its prompt)."""
    hedged, done = anyio.Event(), anyio.Event()

    async def answer(request: FakeRequest) -> FakeReply:
        if request.task_id == "job":
            await hedged.wait()  # the hedge is queued behind the blocker by now or soon
            return FakeReply("slow answer", input_tokens=10, output_tokens=5)
        await done.wait()  # the blocker holds quick's only slot until the race is over
        return FakeReply("blocked answer", input_tokens=10, output_tokens=5)

    events: list[oc.Event] = []

    def watch(event: oc.Event) -> None:
        events.append(event)
        if isinstance(event, HedgeStarted):
            hedged.set()
        elif isinstance(event, HedgeWon):
            done.set()

    fake = FakeModel(handler=answer)
    models = [
        oc.ModelSpec(
            name=name,
            model=fake.model(name),
            input_cost=1.0,
            output_cost=1.0,
            max_concurrency=1 if name == "quick" else None,
            hedge=oc.HedgePolicy(after=0.01, model="quick") if name == "slow" else None,
        )
        for name in ("slow", "quick")
    ]
    agents = [oc.Agent(name="w", model="slow"), oc.Agent(name="q", model="quick")]
    plan = oc.Plan(
        tasks=[
            oc.Task(id="blocker", agent="q", prompt="hold the slot"),
            oc.Task(id="job", agent="w", prompt="do the job"),
        ]
    )
    orch = oc.Orchestra(models=models, agents=agents, journal=None, on_event=watch)
    try:
        result = await orch.execute(plan)
    finally:
        fake.close()
    won = next(e for e in events if isinstance(e, HedgeWon))
    assert (won.winner, won.loser, won.loser_cost_usd) == ("primary", "unsent", 0.0)
    assert [(c.task_id, c.model) for c in fake.calls if c.task_id == "job"] == [("job", "slow")]
    assert list(result.nodes["job"].usage.by_model) == ["slow"]
    assert result.usage.total_tokens == 30


async def test_a_hedged_call_the_budget_refuses_stops_the_run() -> None:
    """A hedged model's call that the run's budget cannot fit stops the run with
    BudgetExceeded, as an unhedged one does (not a node failed with an ExceptionGroup)."""
    fake = FakeModel(default="never sent")
    hedge = oc.HedgePolicy(after=0.01)
    model = oc.ModelSpec(
        name="hedged",
        model=fake.model("hedged"),
        input_cost=1000.0,
        output_cost=1000.0,
        hedge=hedge,
        litellm_params={"max_tokens": 40},
    )
    orch = oc.Orchestra(models=[model], agents=[oc.Agent(name="w", model="hedged")], journal=None)
    try:
        with pytest.raises(oc.BudgetExceeded) as stopped:
            await orch.execute(ONE, budget=oc.Budget(max_usd=0.001))
    finally:
        fake.close()
    assert stopped.value.result.status == "budget_exceeded"
    assert fake.calls == []


async def test_a_hedge_the_budget_refuses_leaves_its_primary_running() -> None:
    """A hedge whose reservation the budget cannot fit next to its primary's (held, or
    settled) is not sent; the primary goes on and its answer is the node's."""
    hedged = anyio.Event()

    async def answer(request: FakeRequest) -> FakeReply:
        await hedged.wait()
        return FakeReply("primary answer", input_tokens=10, output_tokens=40)

    events: list[oc.Event] = []

    def watch(event: oc.Event) -> None:
        events.append(event)
        if isinstance(event, HedgeStarted):
            hedged.set()

    fake = FakeModel(handler=answer)
    model = oc.ModelSpec(
        name="slow",
        model=fake.model("slow"),
        input_cost=1000.0,
        output_cost=1000.0,
        hedge=oc.HedgePolicy(after=0.01),
        litellm_params={"max_tokens": 40},
    )
    orch = oc.Orchestra(
        models=[model], agents=[oc.Agent(name="w", model="slow")], journal=None, on_event=watch
    )
    try:  # a call is estimated at $0.043 and costs $0.05: one fits, never two
        result = await orch.execute(ONE, budget=oc.Budget(max_usd=0.07))
    finally:
        fake.close()
    assert result.output == "primary answer"
    assert len(fake.calls) == 1
    won = next(e for e in events if isinstance(e, HedgeWon))
    assert (won.winner, won.loser, won.loser_cost_usd) == ("primary", "failed", 0.0)
    assert result.cost_usd == pytest.approx(50 * 1000 / 1e6)


async def test_deadline_mid_retry_keeps_finished_nodes(server: OpenAICompatibleServer) -> None:
    """The run's deadline cancels a node stuck retrying; finished nodes are kept."""
    server.script("bad", [Error(503)] * 50)
    server.script("good", [Reply("done")])
    patient = oc.RetryPolicy(max_retries=40, backoff=0.05, multiplier=1.0)
    orch = oc.Orchestra(
        models=[spec(server, "bad", retry=patient), spec(server, "good")],
        agents=[oc.Agent(name="b", model="bad"), oc.Agent(name="g", model="good")],
    )
    plan = oc.Plan(
        tasks=[
            oc.Task(id="stuck", agent="b", prompt="x"),
            oc.Task(id="fine", agent="g", prompt="y"),
        ]
    )
    with pytest.raises(oc.BudgetExceeded, match="max_seconds") as info:
        await orch.execute(plan, budget=oc.Budget(max_seconds=0.4))
    assert list(info.value.result.nodes) == ["fine"]
    assert 1 < len(server.requests_for("bad")) < 41


async def test_a_request_the_deadline_cuts_off_is_in_the_usage() -> None:
    """A request in flight when the call's deadline passes is charged its prompt, estimated,
    in the failed node's usage as in the budget (the usage had nothing)."""

    async def hang(request: FakeRequest) -> str:
        await anyio.sleep_forever()
        return "never"

    fake = FakeModel(handler=hang)
    model = oc.ModelSpec(
        name="stuck",
        model=fake.model("stuck"),
        input_cost=1000.0,
        output_cost=1000.0,
        retry=oc.RetryPolicy(deadline=0.05, max_retries=0),
        litellm_params={"max_tokens": 40},
    )
    orch = oc.Orchestra(models=[model], agents=[oc.Agent(name="w", model="stuck")], journal=None)
    try:
        with pytest.raises(oc.NodeFailed) as failed:
            await orch.execute(ONE, budget=oc.Budget(max_usd=1.0))
    finally:
        fake.close()
    prompt = prompt_tokens([{"role": "user", "content": "do the job"}], [])
    usage = failed.value.result.usage
    assert (usage.input_tokens, usage.output_tokens, usage.estimated) == (prompt, 0, True)
    assert usage.cost_usd == pytest.approx(prompt * 1000 / 1e6)


async def test_a_request_the_runs_deadline_cancels_is_in_the_run_usage(tmp_path: Path) -> None:
    """The run's max_seconds cancels a call in flight: its prompt, charged to the budget, is in
    the run's usage, its events and its journal record too, beside the node that finished."""

    async def answer(request: FakeRequest) -> FakeReply:
        if request.task_id == "stuck":
            await anyio.sleep_forever()
        return FakeReply("done", input_tokens=100, output_tokens=10)

    fake = FakeModel(handler=answer)
    model = oc.ModelSpec(name="m", model=fake.model("m"), input_cost=1000.0, output_cost=1000.0)
    events: list[oc.Event] = []
    orch = oc.Orchestra(
        models=[model],
        agents=[oc.Agent(name="w", model="m")],
        journal=tmp_path / "runs.sqlite",
        on_event=events.append,
    )
    plan = oc.Plan(
        tasks=[
            oc.Task(id="quick", agent="w", prompt="fast"),
            oc.Task(id="stuck", agent="w", prompt="do the job"),
        ]
    )
    try:
        with pytest.raises(oc.BudgetExceeded, match="max_seconds") as stopped:
            await orch.execute(plan, run_id="cut", budget=oc.Budget(max_seconds=0.3))
    finally:
        fake.close()
    prompt = prompt_tokens([{"role": "user", "content": "do the job"}], [])
    usage = stopped.value.result.usage
    assert list(stopped.value.result.nodes) == ["quick"]
    assert (usage.input_tokens, usage.output_tokens, usage.calls) == (100 + prompt, 10, 2)
    assert usage.estimated
    cost = (110 + prompt) * 1000 / 1e6
    assert usage.cost_usd == pytest.approx(cost)
    finished = [e for e in events if isinstance(e, RunFinished)]
    assert [e.cost_usd for e in finished] == [pytest.approx(cost)]
    assert orch.runs()[0].cost_usd == pytest.approx(cost)


async def test_node_deadline_bounds_all_retries(server: OpenAICompatibleServer) -> None:
    """RetryPolicy.deadline stops one node's retries and fallbacks with a clear error."""
    server.script("bad", [Error(503)] * 50)
    policy = oc.RetryPolicy(max_retries=40, backoff=0.05, multiplier=1.0, deadline=0.3)
    with pytest.raises(oc.NodeFailed, match=r"within the deadline of 0\.3 s"):
        await orchestra(spec(server, "bad", retry=policy)).execute(ONE)


@pytest.mark.slow
async def test_rate_limit_storm_loses_no_node(server: OpenAICompatibleServer) -> None:
    """Every third request answered 429 (Retry-After: 0), 60 tasks under a cap of 4 and no
    retries at all: every node finishes (429s are waited out, they spend no retry), in-flight
    never exceeds the cap, and the model's concurrency was lowered and paused meanwhile."""
    count = 0

    def every_third(request: RecordedRequest) -> Error | Reply:
        nonlocal count
        count += 1
        return Error(429, retry_after=0) if count % 3 == 0 else Reply("ok")

    server.handler = every_third
    events: list[oc.Event] = []
    orch = oc.Orchestra(
        models=[spec(server, "m", max_concurrency=4, retry=oc.RetryPolicy(max_retries=0))],
        agents=[oc.Agent(name="w")],
        on_event=events.append,
    )
    plan = oc.Plan(tasks=[oc.Task(id=f"t{i}", agent="w", prompt=f"p{i}") for i in range(60)])
    result = await orch.execute(plan)
    assert len(result.nodes) == 60 and all(n.ok for n in result.nodes.values())
    assert server.peak_in_flight("m") <= 4
    assert sum(r.status == 429 for r in server.requests) >= 20
    limited = [e for e in events if isinstance(e, RateLimited)]
    assert limited and min(e.concurrency or 4 for e in limited) < 4
