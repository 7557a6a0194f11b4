"""Features together, not alone: budgets under per-model and global caps, map nodes, task
budgets, provider faults and concurrent runs; hedges, fallbacks, cascades and the response
cache; driven by hypothesis through the real call path."""

from __future__ import annotations

import hashlib
import json
import random
import tempfile
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import orchestra as oc
from orchestra.events import (
    PLAN_TASK,
    CallTimedOut,
    Escalated,
    FallbackUsed,
    HedgeStarted,
    HedgeWon,
    ModelCalled,
    NodeFinished,
    Replanned,
)
from orchestra.models.tokens import prompt_tokens
from orchestra.results import Usage
from orchestra.testing import FakeFailure, FakeModel, FakeReply, FakeRequest

MAX_TOKENS = 40


@st.composite
def plans(draw: st.DrawFn, agents: Sequence[str] = ("a", "b")) -> oc.Plan:
    """A random DAG of 1-10 tasks on `agents`; some tasks have budgets, one may be a map."""
    count = draw(st.integers(1, 10))
    tasks: list[oc.Task] = []
    for i in range(count):
        after = sorted(
            draw(st.sets(st.sampled_from([t.id for t in tasks]), max_size=2)) if tasks else set()
        )
        budget = draw(st.none() | st.builds(oc.Budget, max_usd=st.floats(0.001, 0.05)))
        prompt = " ".join(["x"] + [f"{{{d}}}" for d in after])
        tasks.append(
            oc.Task(
                id=f"t{i}",
                agent=draw(st.sampled_from(agents)),
                prompt=prompt,
                after=after,
                budget=budget,
            )
        )
    if draw(st.booleans()):
        tasks.append(oc.Task(id="items", agent="a", prompt="list"))
        tasks.append(
            oc.Task(
                id="each",
                agent="b",
                prompt="do {item}",
                after=["items"],
                map="items",
                budget=draw(st.none() | st.builds(oc.Budget, max_usd=st.floats(0.001, 0.05))),
            )
        )
    return oc.Plan(tasks=tasks)


@dataclass
class Provider:
    """A provider whose answers cost what orchestra expects once it has seen one: prompt
    tokens counted the same way, a fixed answer length per model within max_tokens (so the
    first estimate, max_tokens, is high and later ones exact); some 429s and 500s. It keeps
    the bill: every answer it gave, by task id, and the tokens and dollars it charged.

    `plans` are the boss's answers, in order (the last repeats); `doomed` tasks fail for good
    (a 400); `hold` (when set) makes every call from then on wait forever, unanswered, its
    prompt billed (`held_tokens`, `held_usd`: a request sent is paid for)."""

    seed: int
    fault_rate: float
    outputs: Mapping[str, int]
    specs: Mapping[str, oc.ModelSpec] = field(default_factory=dict[str, oc.ModelSpec])
    plans: Sequence[str] = ()
    doomed: Collection[str] = ()
    hold: anyio.Event | None = None
    answered: Counter[str] = field(default_factory=Counter[str])
    tokens: int = 0
    usd: float = 0.0
    held_tokens: int = 0
    held_usd: float = 0.0
    on_hold: Callable[[], None] = lambda: None

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._plans_given = 0

    async def __call__(self, request: FakeRequest) -> FakeReply | FakeFailure:
        """Answer one request (the FakeModel's handler)."""
        if self.hold is not None and self.hold.is_set():
            self.on_hold()
            used, usd = self._price(request, 0)
            self.held_tokens += used
            self.held_usd += usd
            await anyio.sleep_forever()
        roll = self._rng.random()
        if roll < self.fault_rate / 2:
            return FakeFailure(429, retry_after=0)
        if roll < self.fault_rate:
            return FakeFailure(500)
        task_id = request.task_id or ""
        if task_id in self.doomed:
            return FakeFailure(400)
        if request.agent == "plan":
            content = self.plans[min(self._plans_given, len(self.plans) - 1)]
            self._plans_given += 1
        else:
            content = '["p", "q", "r", "s"]' if task_id == "items" else "done"
        written = self.outputs[request.model]
        used, usd = self._price(request, written)
        self.answered[task_id] += 1
        self.tokens += used + written
        self.usd += usd
        return FakeReply(content, input_tokens=used, output_tokens=written)

    def _price(self, request: FakeRequest, written: int) -> tuple[int, float]:
        """The request's prompt tokens, and what they and `written` answer tokens cost."""
        used = prompt_tokens(request.messages, request.tools)
        spec = self.specs.get(request.model)
        usd = 0.0 if spec is None else spec.cost(input_tokens=used, output_tokens=written)
        return used, usd


@pytest.mark.slow
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    plan=plans(),
    prices=st.tuples(st.floats(0.0, 500.0), st.floats(0.0, 500.0)),
    caps=st.tuples(st.none() | st.integers(1, 3), st.none() | st.integers(1, 3)),
    global_cap=st.none() | st.integers(1, 4),
    max_usd=st.floats(0.0005, 0.2),
    fault_rate=st.sampled_from([0.0, 0.2]),
    runs=st.integers(1, 2),
    seed=st.integers(0, 1000),
    outputs=st.tuples(st.integers(1, MAX_TOKENS), st.integers(1, MAX_TOKENS)),
)
def test_a_usd_budget_holds_whatever_else_happens(
    plan: oc.Plan,
    prices: tuple[float, float],
    caps: tuple[int | None, int | None],
    global_cap: int | None,
    max_usd: float,
    fault_rate: float,
    runs: int,
    seed: int,
    outputs: tuple[int, int],
) -> None:
    """When no call costs more than it was estimated, no run, task or map budget is ever
    exceeded — under per-model and global caps, map nodes, task budgets, 429s and 500s, and
    runs sharing one Orchestra at once — and a run that stops keeps every node that finished."""
    fake = FakeModel(handler=Provider(seed, fault_rate, {"m1": outputs[0], "m2": outputs[1]}))
    specs = [
        oc.ModelSpec(
            name=name,
            model=fake.model(name),
            input_cost=prices[i],
            output_cost=prices[1 - i],
            max_concurrency=caps[i],
            litellm_params={"max_tokens": MAX_TOKENS},
            retry=oc.RetryPolicy(max_retries=1, backoff=0),
        )
        for i, name in enumerate(["m1", "m2"])
    ]
    agents = [oc.Agent(name="a", model="m1"), oc.Agent(name="b", model="m2")]
    orch = oc.Orchestra(models=specs, agents=agents, max_concurrent_calls=global_cap, journal=None)
    budget = oc.Budget(max_usd=max_usd)
    outcomes: list[oc.RunResult] = []

    async def one(run_id: str) -> None:
        try:
            outcomes.append(await orch.execute(plan, budget=budget, run_id=run_id))
        except (oc.BudgetExceeded, oc.NodeFailed) as stopped:
            outcomes.append(stopped.result)

    async def main() -> None:
        async with anyio.create_task_group() as group:
            for index in range(runs):
                group.start_soon(one, f"r{index}")

    try:
        anyio.run(main, backend="asyncio")
    finally:
        fake.close()
    tasks = {t.id: t for t in plan.tasks}
    for result in outcomes:
        assert result.cost_usd <= max_usd + 1e-12
        for task_id, node in result.nodes.items():
            task = tasks.get(task_id)
            if task is not None and task.budget is not None and task.budget.max_usd is not None:
                assert node.cost_usd <= task.budget.max_usd + 1e-12
        each = tasks.get("each")
        if each is not None and each.budget is not None and each.budget.max_usd is not None:
            items = [n for tid, n in result.nodes.items() if tid.startswith("each__")]
            assert sum(n.cost_usd for n in items) <= each.budget.max_usd + 1e-12
        for node in result.nodes.values():
            assert node.ok == (node.error is None)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    plan=plans(),
    caps=st.tuples(st.none() | st.integers(1, 3), st.none() | st.integers(1, 3)),
    global_cap=st.none() | st.integers(1, 4),
    max_usd=st.floats(0.0005, 0.2),
    fault_rate=st.sampled_from([0.0, 0.2]),
    answers=st.integers(0, 6),
    seed=st.integers(0, 1000),
)
def test_a_deadline_that_cuts_calls_off_keeps_the_books(
    plan: oc.Plan,
    caps: tuple[int | None, int | None],
    global_cap: int | None,
    max_usd: float,
    fault_rate: float,
    answers: int,
    seed: int,
) -> None:
    """The run's max_seconds cancels every call in flight (the provider stops answering after
    a few): under caps, map nodes, task budgets, 429s and 500s, the run's usage is what the
    provider billed, the prompts it never answered included, and the budget still holds."""
    fake = FakeModel()
    specs = constellation(fake, (100.0, 100.0, 200.0), (None, *caps))
    bill = Provider(seed, fault_rate, {"boss": 10, "m1": 10, "m2": 20}, specs)
    orch = oc.Orchestra(
        models=list(specs.values()), agents=AGENTS, max_concurrent_calls=global_cap, journal=None
    )

    async def main() -> oc.RunResult | None:
        hold = bill.hold = anyio.Event()

        async def answer(request: FakeRequest) -> FakeReply | FakeFailure:
            if sum(bill.answered.values()) >= answers:
                hold.set()
            return await bill(request)

        fake.handler = answer
        try:
            await orch.execute(plan, budget=oc.Budget(max_usd=max_usd, max_seconds=0.3))
        except (oc.BudgetExceeded, oc.NodeFailed) as stopped:
            return stopped.result
        return None  # every call answered before the provider stopped

    try:
        result = anyio.run(main, backend="asyncio")
    finally:
        fake.close()
    if result is None:
        return
    assert result.cost_usd <= max_usd + 1e-12
    assert result.usage.total_tokens == bill.tokens + bill.held_tokens
    assert result.cost_usd == pytest.approx(bill.usd + bill.held_usd, rel=1e-9, abs=1e-15)
    event("calls cut off" if bill.held_tokens else "no call in flight at the deadline")


def constellation(
    fake: FakeModel,
    prices: Sequence[float],
    caps: Sequence[int | None],
    *,
    stream: bool = False,
) -> dict[str, oc.ModelSpec]:
    """The boss and two workers (m1 for agent `a`, m2 for `b`), priced and capped as drawn."""
    return {
        name: oc.ModelSpec(
            name=name,
            model=fake.model(name),
            input_cost=prices[i],
            output_cost=prices[(i + 1) % 3],
            max_concurrency=caps[i],
            litellm_params={"max_tokens": MAX_TOKENS},
            retry=oc.RetryPolicy(max_retries=1, backoff=0),
            stream=stream and name == "boss",
        )
        for i, name in enumerate(["boss", "m1", "m2"])
    }


AGENTS = [oc.Agent(name="a", model="m1"), oc.Agent(name="b", model="m2")]
TYPED = (oc.BudgetExceeded, oc.NodeFailed, oc.PlanError, oc.ModelError)
"""How a planned run may end other than with a result (a boss that fails for good: ModelError)."""


@st.composite
def replans(draw: st.DrawFn, count: int) -> list[oc.Plan]:
    """`count` replans: each a chain of 1-3 new tasks, with new ids and new work."""
    answers: list[oc.Plan] = []
    for k in range(count):
        tasks: list[oc.Task] = []
        for i in range(draw(st.integers(1, 3))):
            after = [tasks[-1].id] if tasks else []
            prompt = " ".join([f"redo {k} {i}"] + [f"{{{d}}}" for d in after])
            agent = draw(st.sampled_from(["a", "b"]))
            tasks.append(oc.Task(id=f"r{k}_{i}", agent=agent, prompt=prompt, after=after))
        answers.append(oc.Plan(tasks=tasks, output=tasks[-1].id))
    return answers


def usage_matches_the_bill(result: oc.RunResult, *bills: Provider) -> None:
    """The run's usage is what the provider billed: every token, every dollar."""
    assert result.usage.total_tokens == sum(bill.tokens for bill in bills)
    assert result.cost_usd == pytest.approx(sum(bill.usd for bill in bills), rel=1e-9, abs=1e-15)


@pytest.mark.slow
@settings(max_examples=20, suppress_health_check=[HealthCheck.data_too_large])
@given(
    plan=plans(),
    data=st.data(),
    prices=st.tuples(*[st.floats(0.0, 50.0)] * 3),  # a boss call: up to ~$0.1
    caps=st.tuples(*[st.none() | st.integers(1, 3)] * 3),
    global_cap=st.none() | st.integers(1, 4),
    max_usd=st.floats(0.0005, 0.2),
    max_replans=st.integers(1, 3),
    fault_rate=st.sampled_from([0.0, 0.2]),
    stream=st.booleans(),
    seed=st.integers(0, 1000),
    outputs=st.tuples(*[st.integers(1, MAX_TOKENS)] * 3),
)
def test_replans_keep_finished_work_and_the_budget(
    plan: oc.Plan,
    data: st.DataObject,
    prices: tuple[float, float, float],
    caps: tuple[int | None, int | None, int | None],
    global_cap: int | None,
    max_usd: float,
    max_replans: int,
    fault_rate: float,
    stream: bool,
    seed: int,
    outputs: tuple[int, int, int],
) -> None:
    """A boss-planned run whose nodes fail for good and are replanned, under a USD budget,
    per-model and global caps, task budgets and 429s/500s: the spending stays within the
    budget (a provider never costs more than estimated), the boss's calls are in the run's
    usage (it equals the provider's bill), a node that finished is kept and never run again,
    and the run ends with a result or a typed error, never a hang."""
    new_work = data.draw(replans(max_replans))
    ids = [t.id for t in plan.tasks if t.map is None] + [t.id for p in new_work for t in p.tasks]
    doomed = data.draw(st.sets(st.sampled_from(ids), min_size=1, max_size=3))
    answers = [p.model_dump_json(exclude_defaults=True) for p in [plan, *new_work]]
    fake = FakeModel()
    specs = constellation(fake, prices, caps, stream=stream)
    bill = Provider(
        seed,
        fault_rate,
        dict(zip(["boss", "m1", "m2"], outputs, strict=True)),
        specs,
        plans=answers,
        doomed=doomed,
    )
    fake.handler = bill
    orch = oc.Orchestra(
        models=list(specs.values()),
        agents=AGENTS,
        boss="boss",
        max_replans=max_replans,
        max_concurrent_calls=global_cap,
        journal=None,
        on_event=lambda e: replanned.append(e) if isinstance(e, Replanned) else None,
    )
    replanned: list[Replanned] = []
    outcome: list[oc.RunResult | Exception] = []

    async def main() -> None:
        with anyio.fail_after(60):  # a hang detector, not a speed check
            try:
                outcome.append(await orch.run("work", budget=oc.Budget(max_usd=max_usd)))
            except TYPED as stopped:
                outcome.append(stopped)

    try:
        anyio.run(main, backend="asyncio")
    finally:
        fake.close()
    [ended] = outcome
    event(f"ended: {type(ended).__name__} after {len(replanned)} replan(s)")
    result = ended if isinstance(ended, oc.RunResult) else getattr(ended, "result", None)
    ran = [task_id for task_id in bill.answered if task_id != PLAN_TASK]
    assert all(bill.answered[task_id] == 1 for task_id in ran)  # never run again
    if result is None:
        return  # the boss failed for good, or gave no valid plan: nothing ran to report
    assert result.cost_usd <= max_usd + 1e-12
    usage_matches_the_bill(result, bill)
    for task_id in ran:
        assert result.nodes[task_id].ok  # finished before a replan: kept
    for node in result.nodes.values():
        assert node.ok == (node.error is None)


@dataclass
class Stopper:
    """Stops a run by cancellation once `after` nodes finished, driven by events: from then on
    every call waits unanswered, and once one does and every answer the provider gave is
    recorded (each answered node finished, each boss answer settled), `quiet` is set."""

    bill: Provider
    after: int
    quiet: anyio.Event
    finished: set[str] = field(default_factory=set[str])
    boss_answers: int = 0
    held: bool = False

    def __call__(self, event: oc.Event) -> None:
        """Take one event of the run."""
        if isinstance(event, NodeFinished) and event.error is None:
            self.finished.add(event.task_id)
            if len(self.finished) >= self.after and self.bill.hold is not None:
                self.bill.hold.set()
        elif isinstance(event, ModelCalled) and event.task_id == PLAN_TASK and event.error is None:
            self.boss_answers += 1
        self.check()

    def on_hold(self) -> None:
        """A call arrived after the stop: it waits, unanswered."""
        self.held = True
        self.check()

    def check(self) -> None:
        """Set `quiet` once nothing answered is left unrecorded."""
        answered = {t for t in self.bill.answered if t != PLAN_TASK}
        if (
            self.held
            and answered <= self.finished
            and self.boss_answers == self.bill.answered[PLAN_TASK]
        ):
            self.quiet.set()


@pytest.mark.slow
@settings(max_examples=20, suppress_health_check=[HealthCheck.data_too_large])
@given(
    plan=plans(),
    data=st.data(),
    planned=st.booleans(),
    prices=st.tuples(*[st.floats(0.0, 50.0)] * 3),  # a boss call: up to ~$0.1
    caps=st.tuples(*[st.none() | st.integers(1, 3)] * 3),
    global_cap=st.none() | st.integers(1, 4),
    first_usd=st.floats(0.0005, 0.2),
    resume_usd=st.floats(0.0005, 0.4),
    stop_after=st.none() | st.integers(0, 6),
    fault_rate=st.sampled_from([0.0, 0.2]),
    seed=st.integers(0, 1000),
    outputs=st.tuples(*[st.integers(1, MAX_TOKENS)] * 3),
)
def test_a_resumed_run_runs_nothing_twice_and_keeps_its_budget(
    plan: oc.Plan,
    data: st.DataObject,
    planned: bool,
    prices: tuple[float, float, float],
    caps: tuple[int | None, int | None, int | None],
    global_cap: int | None,
    first_usd: float,
    resume_usd: float,
    stop_after: int | None,
    fault_rate: float,
    seed: int,
    outputs: tuple[int, int, int],
) -> None:
    """A journaled run (planned by the boss or not) stopped part-way — by its budget, a node
    failing for good, or cancellation after some nodes finished — then resumed by a new
    Orchestra on the same journal with another budget: no node that succeeded is called again,
    each node has at most one recorded success, both sessions together spend within the
    resume's budget (USD counts the whole run; a first session that spent more than it leaves
    the resume nothing) and the run's usage is what the provider billed over both sessions.
    Not held: a call cancelled after the provider answered but before orchestra settled it is
    billed yet not in the usage (the budget is charged its prompt's estimate), so the stop
    comes once every answer given is recorded."""
    ids = [t.id for t in plan.tasks if t.map is None]
    doomed = data.draw(st.sets(st.sampled_from(ids), max_size=2))
    answers = [plan.model_dump_json(exclude_defaults=True)]
    volumes = dict(zip(["boss", "m1", "m2"], outputs, strict=True))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "runs.sqlite"
        first, second = FakeModel(), FakeModel()
        try:
            specs = constellation(first, prices, caps)
            bill = Provider(seed, fault_rate, volumes, specs, plans=answers, doomed=doomed)
            first.handler = bill
            again = constellation(second, prices, caps)
            rebill = Provider(seed + 1, fault_rate, volumes, again, plans=answers)
            second.handler = rebill

            async def session() -> oc.RunResult | Exception | None:
                stopper = Stopper(bill, stop_after or 0, anyio.Event())
                bill.hold, bill.on_hold = anyio.Event(), stopper.on_hold
                if stop_after == 0:
                    bill.hold.set()
                orch = oc.Orchestra(
                    models=list(specs.values()),
                    agents=AGENTS,
                    boss="boss",
                    max_replans=0,
                    max_concurrent_calls=global_cap,
                    journal=path,
                    on_event=stopper if stop_after is not None else None,
                )
                budget = oc.Budget(max_usd=first_usd)
                ended: list[oc.RunResult | Exception] = []
                async with anyio.create_task_group() as group:

                    async def drive() -> None:
                        try:
                            if planned:
                                ended.append(await orch.run("work", run_id="r", budget=budget))
                            else:
                                ended.append(await orch.execute(plan, run_id="r", budget=budget))
                        except TYPED as stopped:
                            ended.append(stopped)
                        group.cancel_scope.cancel()

                    async def stop() -> None:
                        await stopper.quiet.wait()
                        group.cancel_scope.cancel()

                    group.start_soon(drive)
                    group.start_soon(stop)
                return ended[0] if ended else None

            async def main() -> tuple[oc.RunResult | Exception | None, oc.RunResult | Exception]:
                with anyio.fail_after(60):  # a hang detector, not a speed check
                    stopped = await session()
                    orch = oc.Orchestra(
                        models=list(again.values()),
                        agents=AGENTS,
                        boss="boss",
                        max_replans=0,
                        max_concurrent_calls=global_cap,
                        journal=path,
                    )
                    try:
                        return stopped, await orch.resume("r", budget=oc.Budget(max_usd=resume_usd))
                    except TYPED as ended:
                        return stopped, ended

            stopped, ended = anyio.run(main, backend="asyncio")
            journal = oc.Journal(path)
            records = journal.nodes("r")
        finally:
            first.close()
            second.close()
    event(f"first session: {type(stopped).__name__}; resume: {type(ended).__name__}")
    first_result = (
        stopped if isinstance(stopped, oc.RunResult) else getattr(stopped, "result", None)
    )
    if first_result is not None:
        assert first_result.cost_usd <= first_usd + 1e-12
        usage_matches_the_bill(first_result, bill)
    kept = {r.task_id for r in records if r.status == "succeeded" and r.session == 1}
    assert not kept & {call.task_id for call in second.calls}  # nothing succeeded runs again
    successes = Counter(r.task_id for r in records if r.status == "succeeded")
    assert all(count == 1 for count in successes.values())
    result = ended if isinstance(ended, oc.RunResult) else getattr(ended, "result", None)
    if result is None:
        return  # the boss failed for good or planned nothing valid: no result to hold to
    assert result.cost_usd <= max(resume_usd, bill.usd) + 1e-12
    if bill.usd >= resume_usd:
        assert rebill.usd == 0
    usage_matches_the_bill(result, bill, rebill)


SLOW = 0.05
"""Seconds a slow answer takes: well past a hedge's delay, so hedges start and race."""
HEDGE_AFTER = 0.01
TIMEOUT = 0.1
"""A spec's timeout when hanging requests are drawn (orchestra's own limit: 1.5x + 0.1 s)."""
WORKERS = ("m1", "m2", "m3")


@dataclass(frozen=True)
class Request:
    """One request as the provider saw it, and how it ended there."""

    task_id: str
    model: str
    messages: str
    """The messages, as canonical JSON: what makes two requests identical."""
    used: int
    written: int
    ended: str
    """`answered`, `failed` (a 429 or 500), `hung` (never answered: a timeout, or a hedge's
    loser) or `cancelled` (the caller hung up while a slow answer was being written)."""
    content: str = ""


@dataclass
class Racer:
    """A provider for hedges, fallbacks, cascades and the cache: some 429s and 500s, some
    requests that hang (`hang_rate`, for timeouts), some slow answers (`slow_rate`, for
    hedges), prompt tokens counted as orchestra counts them and a fixed answer length per
    model within max_tokens (so no answer costs more than estimated). It records every request
    and how it ended, and the peak of requests in flight per model.

    With `agree`, every model gives a request the same answer; without, each its own (so an
    upstream node answered by another model changes its dependents' prompts)."""

    seed: int
    fault_rate: float
    slow_rate: float
    hang_rate: float
    agree: bool
    outputs: Mapping[str, int]
    requests: list[Request] = field(default_factory=list[Request])
    inflight: Counter[str] = field(default_factory=Counter[str])
    peak: Counter[str] = field(default_factory=Counter[str])
    """The most requests in flight at once, per model and (key "") over all models."""

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    async def __call__(self, request: FakeRequest) -> FakeReply | FakeFailure:
        """Answer one request (the FakeModel's handler)."""
        for key in (request.model, ""):
            self.inflight[key] += 1
            self.peak[key] = max(self.peak[key], self.inflight[key])
        try:
            return await self._answer(request)
        finally:
            for key in (request.model, ""):
                self.inflight[key] -= 1

    async def _answer(self, request: FakeRequest) -> FakeReply | FakeFailure:
        task_id, model = request.task_id or "", request.model
        used = prompt_tokens(request.messages, request.tools)
        written = self.outputs[model]
        messages = json.dumps(request.messages, sort_keys=True)

        def seen(ended: str, content: str = "") -> None:
            self.requests.append(Request(task_id, model, messages, used, written, ended, content))

        roll, slow = self._rng.random(), self._rng.random() < self.slow_rate
        if roll < self.fault_rate / 2:
            seen("failed")
            return FakeFailure(429, retry_after=0)
        if roll < self.fault_rate:
            seen("failed")
            return FakeFailure(500)
        if roll < self.fault_rate + self.hang_rate:
            seen("hung")
            await anyio.sleep_forever()
        # The answer depends on the request alone, as a model's does: two tasks asking the
        # same of the same model get the same answer (the cache serves one from the other).
        digest = hashlib.sha256(messages.encode()).hexdigest()[:8]
        if task_id == "items":
            content = '["p", "q", "r", "s"]'
        else:
            content = f"answer {digest}" if self.agree else f"answer {digest} from {model}"
        if slow:
            try:
                await anyio.sleep(SLOW)
            except anyio.get_cancelled_exc_class():
                seen("cancelled")
                raise
        seen("answered", content)
        return FakeReply(content, input_tokens=used, output_tokens=written)

    def answered(self) -> Counter[tuple[str, str, int, int]]:
        """The answers given: task, model, prompt and output tokens."""
        return Counter(
            (r.task_id, r.model, r.used, r.written) for r in self.requests if r.ended == "answered"
        )


@st.composite
def racing_specs(
    draw: st.DrawFn, fake: FakeModel, *, hedging: bool, hangs: bool
) -> dict[str, oc.ModelSpec]:
    """Three workers, each priced, capped and streaming or not as drawn, with drawn
    fallbacks, hedges (on itself or another worker) when `hedging`, and a timeout when
    requests may hang."""
    specs: dict[str, oc.ModelSpec] = {}
    for name in WORKERS:
        others = [m for m in WORKERS if m != name]
        hedges = st.builds(
            oc.HedgePolicy, after=st.just(HEDGE_AFTER), model=st.none() | st.sampled_from(others)
        )
        hedge = draw(st.none() | hedges) if hedging else None
        specs[name] = oc.ModelSpec(
            name=name,
            model=fake.model(name),
            input_cost=draw(st.floats(0.0, 500.0)),
            output_cost=draw(st.floats(0.0, 500.0)),
            max_concurrency=draw(st.none() | st.integers(1, 3)),
            litellm_params={"max_tokens": MAX_TOKENS},
            retry=oc.RetryPolicy(max_retries=1, backoff=0),
            fallbacks=draw(st.lists(st.sampled_from(others), unique=True, max_size=2)),
            hedge=hedge,
            timeout=TIMEOUT if hangs else None,
            stream=draw(st.booleans()),
        )
    return specs


@st.composite
def cascades(draw: st.DrawFn) -> oc.routing.Cascade:
    """One or two workers that must agree, then (maybe) another that votes."""
    first = draw(st.lists(st.sampled_from(WORKERS), unique=True, min_size=1, max_size=2))
    stages = [oc.routing.Stage(first, oc.checks.Agree(2))]
    rest = [m for m in WORKERS if m not in first]
    if draw(st.booleans()):
        stages.append(oc.routing.Stage([draw(st.sampled_from(rest))], oc.checks.Vote()))
    return oc.routing.Cascade(stages)


def agent_of(plan: oc.Plan, task_id: str) -> str:
    """The agent of a task of `plan` or of one of its map items."""
    tasks = {t.id: t for t in plan.tasks}
    return tasks[task_id.split("__")[0]].agent


@dataclass
class Session:
    """One run of the racing property: its outcome, its provider's view and its events."""

    racer: Racer
    events: list[oc.Event]
    result: oc.RunResult | None


def racing_run(
    plan: oc.Plan,
    specs: Mapping[str, oc.ModelSpec],
    racer: Racer,
    fake: FakeModel,
    cascade: oc.routing.Cascade,
    cache: oc.Cache | None,
    max_usd: float,
    global_cap: int | None,
) -> Session:
    """Execute `plan` once on a fresh Orchestra (agent `c` routed by the cascade)."""
    fake.handler = racer
    events: list[oc.Event] = []
    agents = [oc.Agent(name="a", model="m1"), oc.Agent(name="b", model="m2"), oc.Agent(name="c")]
    orch = oc.Orchestra(
        models=list(specs.values()),
        agents=agents,
        router=oc.routing.PerAgent({"c": cascade}),
        cache=cache,
        max_concurrent_calls=global_cap,
        journal=None,
        on_event=events.append,
    )
    ended: list[oc.RunResult | None] = []

    async def main() -> None:
        with anyio.fail_after(60):  # a hang detector, not a speed check
            try:
                ended.append(await orch.execute(plan, budget=oc.Budget(max_usd=max_usd)))
            except (oc.BudgetExceeded, oc.NodeFailed) as stopped:
                ended.append(stopped.result)

    anyio.run(main, backend="asyncio")
    return Session(racer, events, ended[0])


def loser_of(won: HedgeWon, race: HedgeStarted) -> str | None:
    """The model that lost `race` if `won` ended it (None: `won` is another race's end)."""
    if won.task_id != race.task_id:
        return None
    if won.winner == "primary":
        return race.hedge_model if won.model == race.model else None
    return race.model if won.model == race.hedge_model else None


def lost_hedges(events: Sequence[oc.Event], specs: Mapping[str, oc.ModelSpec]) -> Usage:
    """What the hedging rule charges beyond the answers orchestra took: a loser cancelled in
    flight is charged its prompt (the winner's prompt tokens: both sent the same messages) at
    its model's input price. A loser that answered is charged its answer, one that failed or
    was never sent (it waited for a slot) nothing; an answer is in its `model_called` event.

    A cascade stage may race twice at once in one node (m3 hedged by m1 while m2 is), so a
    `hedge_won` is matched to an open race of its node that it can end and whose loser's
    price gives the cost it reports."""
    lost = Usage()
    races: list[HedgeStarted] = []
    for index, won in enumerate(events):
        if isinstance(won, HedgeStarted):
            races.append(won)
        if not isinstance(won, HedgeWon):
            continue
        prompt = next(
            c.input_tokens
            for c in reversed(events[:index])
            if isinstance(c, ModelCalled)
            and c.task_id == won.task_id
            and c.model == won.model
            and c.error is None
        )
        charges = {
            i: specs[loser].cost(input_tokens=prompt, output_tokens=0)
            for i, race in enumerate(races)
            if (loser := loser_of(won, race)) is not None
        }
        if won.loser == "cancelled":
            charges = {
                i: usd
                for i, usd in charges.items()
                if won.loser_cost_usd == pytest.approx(usd, rel=1e-9, abs=1e-15)
            }
        else:
            assert won.loser in ("answered", "failed", "unsent")
        assert charges, won  # some open race ends with this event
        last = max(charges)
        loser = loser_of(won, races.pop(last))
        if won.loser == "cancelled" and loser is not None:
            lost = lost + Usage.of(
                loser, input_tokens=prompt, output_tokens=0, cost_usd=charges[last]
            )
    return lost


def racing_holds(
    session: Session,
    plan: oc.Plan,
    specs: Mapping[str, oc.ModelSpec],
    caps: Mapping[str, int | None],
    max_usd: float,
    *earlier: Session,
) -> None:
    """The invariants of one run (`earlier` runs filled the cache it may answer from)."""
    racer, result, events = session.racer, session.result, session.events
    for e in events:
        if isinstance(e, HedgeWon):
            event(f"a hedge's loser {e.loser}")
        elif isinstance(e, (FallbackUsed, Escalated, CallTimedOut)):
            event(e.kind)
    event(f"ended: {'no result' if result is None else result.status}")
    if result is not None:
        for node in result.nodes.values():
            if node.error is not None:
                why = "its task's budget" if "cannot fit" in node.error else "something else"
                event(f"a node failed: {why}")
    for key, cap in caps.items():  # each model's, and ("") the Orchestra's
        if cap is not None:
            assert racer.peak[key] <= cap
    # Every answer orchestra took is one the provider gave, counted once; an answer it did
    # not take was a hedge's that lost (cancelled after the provider answered: the hedging
    # rule charges its prompt) or came as the call timed out (charged nothing).
    interrupted = {e.task_id for e in events if isinstance(e, (HedgeStarted, CallTimedOut))}
    taken = Counter(
        (e.task_id, e.model, e.input_tokens, e.output_tokens)
        for e in events
        if isinstance(e, ModelCalled) and e.error is None and not e.cached
    )
    given = racer.answered()
    assert not taken - given
    assert {task_id for task_id, *_ in given - taken} <= interrupted
    assert {r.task_id for r in racer.requests if r.ended == "cancelled"} <= interrupted
    if result is None:
        return
    assert result.cost_usd <= max_usd + 1e-12
    spent = Counter[str]()  # by task, a map's items together
    for task_id, node in result.nodes.items():
        spent[task_id.split("__")[0]] += node.cost_usd
    for task in plan.tasks:
        if task.budget is not None and task.budget.max_usd is not None:
            assert spent[task.id] <= task.budget.max_usd + 1e-12
    lost = lost_hedges(events, specs)
    assert result.usage.input_tokens == sum(k[2] * n for k, n in taken.items()) + lost.input_tokens
    assert result.usage.output_tokens == sum(k[3] * n for k, n in taken.items())
    usd = sum(
        specs[m].cost(input_tokens=i, output_tokens=o) * n for (_, m, i, o), n in taken.items()
    )
    assert result.cost_usd == pytest.approx(usd + lost.cost_usd, rel=1e-9, abs=1e-15)
    answers = {
        (r.model, r.content)
        for s in (session, *earlier)
        for r in s.racer.requests
        if r.ended == "answered"
    }
    for node in result.nodes.values():
        assert node.ok == (node.error is None)
        if node.ok and node.model is not None:  # (a map's join has no model)
            assert (node.model, node.output) in answers


def cached_requests_stay_home(
    first: Session,
    second: Session,
    plan: oc.Plan,
    cached: Collection[str],
    specs: Mapping[str, oc.ModelSpec],
    cascade: oc.routing.Cascade,
) -> None:
    """In the second run, no cached agent's node asks the provider anything that the first
    run stored for a model it asks first: identical means the same model and messages, read
    from what the provider received. The first run stored an answer its model gave to a
    cached agent's call, unless that answer lost a hedge race (the winner's is stored) or
    came as the call timed out. A
    pinned agent asks its model first; the cascade's agent asks its stages' models first, so
    a request to one of them that no other model falls back or hedges to came first (a
    fallback or hedge is looked up as the model it stands in for)."""
    stand_ins = {
        name
        for spec in specs.values()
        for name in (
            *spec.fallbacks,
            *([spec.hedge.model] if spec.hedge and spec.hedge.model else []),
        )
    }
    staged = {m for stage in cascade.stages for m in stage.models} - stand_ins
    raced = {e.task_id for e in first.events if isinstance(e, (HedgeStarted, CallTimedOut))}
    won = {(e.task_id, e.model) for e in first.events if isinstance(e, HedgeWon)}
    stored = {
        (r.model, r.messages)
        for r in first.racer.requests
        if r.ended == "answered"
        and agent_of(plan, r.task_id) in cached
        and (r.task_id not in raced or (r.task_id, r.model) in won)
    }
    for r in second.racer.requests:
        agent = agent_of(plan, r.task_id)
        if agent not in cached:
            continue
        if agent == "c":
            assert r.model not in staged or (r.model, r.messages) not in stored, r
        else:
            assert ({"a": "m1", "b": "m2"}[agent], r.messages) not in stored, r


@pytest.mark.slow
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.data_too_large])
@given(
    plan=plans(("a", "b", "c")),
    data=st.data(),
    cascade=cascades(),
    cached=st.none() | st.sets(st.sampled_from(["a", "b", "c"]), min_size=1),
    max_usd=st.floats(0.0005, 0.2),
    fault_rate=st.sampled_from([0.0, 0.2, 0.5]),
    slow_rate=st.sampled_from([0.0, 0.3]),
    hedging=st.booleans(),
    hangs=st.booleans(),
    agree=st.booleans(),
    global_cap=st.none() | st.integers(1, 4),
    seed=st.integers(0, 1000),
    outputs=st.tuples(*[st.integers(1, MAX_TOKENS)] * 3),
)
def test_hedges_fallbacks_cascades_and_the_cache_keep_the_books(
    plan: oc.Plan,
    data: st.DataObject,
    cascade: oc.routing.Cascade,
    cached: set[str] | None,
    max_usd: float,
    fault_rate: float,
    slow_rate: float,
    hedging: bool,
    hangs: bool,
    agree: bool,
    global_cap: int | None,
    seed: int,
    outputs: tuple[int, int, int],
) -> None:
    """Hedged, falling-back, cascaded and cached calls (some streamed) under a USD budget,
    task budgets, per-model and global caps, 429s, 500s and timeouts, run twice on one
    response cache. In each run: no model (nor all together) ever has more requests in flight
    than its cap; the spending stays within the budget, and each task's within its own (no
    answer costs more than estimated); every answer orchestra took is one the provider gave,
    counted once (one it did not take was a hedge's that lost), and the run's usage is exactly
    those answers plus, for each hedge cancelled in flight, its prompt at its model's input
    price (tokens exact, USD to 1e-9); every node reported ok holds an answer its model gave
    (in this run or, through the cache, the first). In the second run, a cached agent never
    asks the provider what the first run stored for a model it asks first."""
    fake = FakeModel()
    specs = data.draw(racing_specs(fake, hedging=hedging, hangs=hangs))
    hang_rate = 0.1 if hangs else 0.0
    volumes = dict(zip(WORKERS, outputs, strict=True))
    caps = {"": global_cap} | {name: spec.max_concurrency for name, spec in specs.items()}
    with tempfile.TemporaryDirectory() as folder:
        cache = (
            None
            if cached is None
            else oc.Cache(path=f"{folder}/cache.sqlite", agents=sorted(cached))
        )

        def once(run_seed: int) -> Session:
            racer = Racer(run_seed, fault_rate, slow_rate, hang_rate, agree, volumes)
            return racing_run(plan, specs, racer, fake, cascade, cache, max_usd, global_cap)

        try:
            first = once(seed)
            racing_holds(first, plan, specs, caps, max_usd)
            if cache is None:
                return
            second = once(seed + 1)
            racing_holds(second, plan, specs, caps, max_usd, first)
            hits = sum(isinstance(e, ModelCalled) and e.cached for e in second.events)
            event(f"second run: {'some' if hits else 'no'} cache hits")
            cached_requests_stay_home(first, second, plan, cache.agents or (), specs, cascade)
        finally:
            fake.close()
