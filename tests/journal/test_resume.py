"""Resume in one process: what runs again, what does not, and a journal that stops a run."""

from __future__ import annotations

import functools
import json
import os
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

import orchestra as oc
from orchestra.cli.signals import RunInterrupted, stop_on_signal
from orchestra.events import NodeFinished
from orchestra.journal import recorder
from orchestra.testing import FakeFailure, FakeModel, FakeReply, FakeRequest, fake_constellation

pytestmark = pytest.mark.anyio

DIAMOND = oc.Plan(
    tasks=[
        oc.Task(id="a", agent="researcher", prompt="start"),
        oc.Task(id="b", agent="researcher", prompt="left of {a}", after=["a"]),
        oc.Task(id="c", agent="researcher", prompt="right of {a}", after=["a"]),
        oc.Task(id="d", agent="writer", prompt="join {b} and {c}", after=["b", "c"]),
    ]
)


def _orch(fake: FakeModel, team: list[oc.Agent], **options: object) -> oc.Orchestra:
    return oc.Orchestra(models=fake_constellation(fake), agents=team, **options)  # type: ignore[arg-type]


async def _stop_at(orch: oc.Orchestra, fake: FakeModel, node: str, run: object) -> None:
    """Run until `node`'s call is in flight, then cancel the run (a graceful stop)."""
    reached = anyio.Event()
    answer = fake.handler

    async def hold(request: FakeRequest) -> FakeReply | str:
        if request.task_id == node:
            reached.set()
            await anyio.sleep_forever()
        return answer(request) if answer is not None else f"out {request.task_id}"  # type: ignore[return-value]

    fake.handler = hold
    async with anyio.create_task_group() as group:
        group.start_soon(run)  # type: ignore[arg-type]
        await reached.wait()
        group.cancel_scope.cancel()
    fake.handler = answer


def _task(task_id: str, agent: str, prompt: str, *after: str) -> dict[str, object]:
    """A task as the boss writes it."""
    return {"id": task_id, "agent": agent, "prompt": prompt, "after": list(after)}


def _statuses(orch: oc.Orchestra, run_id: str) -> list[tuple[str, int, str]]:
    assert orch.journal is not None
    return [(n.task_id, n.attempt, n.status) for n in orch.journal.nodes(run_id)]


@pytest.fixture
def other() -> Iterator[FakeModel]:
    """A second FakeModel: the process that resumes."""
    model = FakeModel(handler=lambda request: f"again {request.task_id}")
    yield model
    model.close()


async def test_resume_runs_only_what_was_in_flight_or_not_started(
    fake: FakeModel, other: FakeModel, team: list[oc.Agent]
) -> None:
    """Stopped with b in flight: a (recorded) is kept, b runs again, c and d run once."""
    fake.handler = lambda request: f"out {request.task_id}"
    orch = _orch(fake, team, max_parallel=1)
    await _stop_at(orch, fake, "b", lambda: orch.execute(DIAMOND, run_id="r"))
    assert _statuses(orch, "r") == [("a", 1, "succeeded"), ("b", 1, "cancelled")]
    assert orch.runs()[0].status == "stopped"

    resumed = _orch(other, team)
    result = await resumed.resume("r")
    assert sorted(c.task_id or "" for c in other.calls) == ["b", "c", "d"]
    assert result.nodes["a"].output == "out a"  # the recorded output fed its dependents
    assert other.calls_for("b")[0].prompt == "left of out a"
    assert ("b", 2, "succeeded") in _statuses(resumed, "r")
    assert resumed.journal is not None
    keys = {n.task_id: n.idempotency_key for n in resumed.journal.nodes("r")}
    assert keys["b"] == "r:b:2" and keys["d"] == "r:d:1"
    record = resumed.runs()[0]
    assert (record.status, record.nodes_done, record.nodes_total, record.sessions) == (
        "succeeded",
        4,
        4,
        2,
    )


async def test_resume_of_a_finished_run_calls_nothing(
    fake: FakeModel, other: FakeModel, team: list[oc.Agent]
) -> None:
    """Resuming a run that succeeded returns its recorded answer without a model call."""
    fake.handler = lambda request: f"out {request.task_id}"
    first = await _orch(fake, team).execute(DIAMOND, run_id="done")
    again = await _orch(other, team).resume("done")
    assert other.calls == []
    assert again.output == first.output
    assert again.cost_usd == pytest.approx(first.cost_usd)


async def test_unknown_and_duplicate_run_ids_are_refused(
    fake: FakeModel, team: list[oc.Agent]
) -> None:
    """Resuming an unknown run, or executing under a recorded id, raises JournalError."""
    orch = _orch(fake, team)
    with pytest.raises(oc.JournalError, match="holds no run 'nope'"):
        await orch.resume("nope")
    await orch.execute(DIAMOND, run_id="taken")
    calls = len(fake.calls)
    with pytest.raises(oc.JournalError, match=r"orch\.resume\('taken'\)"):
        await orch.execute(DIAMOND, run_id="taken")
    assert len(fake.calls) == calls


async def test_stored_plan_wins_over_a_nondeterministic_boss(
    fake: FakeModel, other: FakeModel, team: list[oc.Agent]
) -> None:
    """A resumed run keeps the plan it recorded; the boss (which would now plan differently)
    is not asked again."""
    first = {"tasks": [_task("x", "researcher", "x"), _task("y", "writer", "y {x}", "x")]}
    fake.responses = {"plan": json.dumps(first)}
    orch = _orch(fake, team, boss="boss")
    await _stop_at(orch, fake, "y", lambda: orch.run("a task", run_id="boss-run"))
    other.responses = {
        "plan": json.dumps({"tasks": [{"id": "z", "agent": "writer", "prompt": "z"}]})
    }
    result = await _orch(other, team, boss="boss").resume("boss-run")
    assert result.plan is not None and [t.id for t in result.plan.tasks] == ["x", "y"]
    assert [c.task_id for c in other.calls] == ["y"]
    assert other.calls_for("plan") == []


async def test_a_failed_node_runs_again_and_a_replanned_one_does_not(
    fake: FakeModel, other: FakeModel, team: list[oc.Agent]
) -> None:
    """A node that failed is retried on resume; one the boss replanned around is not."""
    fake.responses = {"b": FakeFailure(400)}
    fake.handler = lambda request: f"out {request.task_id}"
    orch = _orch(fake, team)
    with pytest.raises(oc.NodeFailed):
        await orch.execute(DIAMOND, run_id="failed")
    assert orch.runs()[0].status == "failed"
    result = await _orch(other, team).resume("failed")
    assert result.status == "succeeded"
    assert "b" in {c.task_id for c in other.calls} and "a" not in {c.task_id for c in other.calls}

    plan = {"tasks": [_task("p", "researcher", "p"), _task("q", "researcher", "q {p}", "p")]}
    replan = {
        "tasks": [_task("q2", "writer", "q2 {p}", "p"), _task("r2", "writer", "r2 {q2}", "q2")],
        "output": "r2",
    }
    boss = FakeModel(
        responses={"plan": [json.dumps(plan), json.dumps(replan)], "q": FakeFailure(400)}
    )
    try:
        planned = _orch(boss, team, boss="boss")
        await _stop_at(planned, boss, "r2", lambda: planned.run("t", run_id="replanned"))
    finally:
        boss.close()
    other.calls.clear()
    done = await _orch(other, team, boss="boss").resume("replanned")
    assert [c.task_id for c in other.calls] == ["r2"]
    assert done.nodes["q"].error is not None and done.output == "again r2"


async def test_recorded_map_items_are_not_run_again(
    fake: FakeModel, other: FakeModel, team: list[oc.Agent]
) -> None:
    """A map stopped mid-way: on resume only the items without a recorded result run."""
    plan = oc.Plan(
        tasks=[
            oc.Task(id="list", agent="researcher", prompt="list"),
            oc.Task(id="each", agent="researcher", prompt="do {item}", after=["list"], map="list"),
            oc.Task(id="sum", agent="writer", prompt="sum {each}", after=["each"]),
        ]
    )
    fake.handler = lambda r: "one\ntwo\nthree" if r.task_id == "list" else f"out {r.task_id}"
    orch = _orch(fake, team, max_parallel=1)
    await _stop_at(orch, fake, "each__1", lambda: orch.execute(plan, run_id="map"))
    result = await _orch(other, team).resume("map")
    called = [c.task_id for c in other.calls]
    # The two items run at once: which reaches the provider first is litellm's threads' race.
    assert sorted(called[:2]) == ["each__1", "each__2"] and called[2:] == ["sum"]
    assert result.nodes["each"].output == ["out each__0", "again each__1", "again each__2"]


async def test_two_resumers_in_one_process_one_is_refused(
    fake: FakeModel, team: list[oc.Agent]
) -> None:
    """While a resume drives a run, a second resume of it gets a JournalError at once."""
    fake.handler = lambda request: f"out {request.task_id}"
    orch = _orch(fake, team, max_parallel=1)
    await _stop_at(orch, fake, "b", lambda: orch.execute(DIAMOND, run_id="busy"))
    reached = anyio.Event()

    async def hold(request: FakeRequest) -> str:
        reached.set()
        await anyio.sleep_forever()
        return "never"

    fake.handler = hold
    async with anyio.create_task_group() as group:
        group.start_soon(orch.resume, "busy")
        await reached.wait()  # the first resume holds the run, with b in flight
        with pytest.raises(oc.JournalError, match=f"being run by process {os.getpid()}"):
            await orch.resume("busy")
        group.cancel_scope.cancel()
    assert _statuses(orch, "busy")[-1] == ("b", 2, "cancelled")


def _lock(path: Path) -> sqlite3.Connection:
    """Another connection holding the journal's write lock: it cannot be written now."""
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    return blocker


async def test_a_result_that_cannot_be_recorded_stops_the_run(
    fake: FakeModel, other: FakeModel, team: list[oc.Agent], tmp_path: Path
) -> None:
    """The journal stops accepting writes during a's call: its result is not recorded, b is
    never called, JournalError is raised; once writable, a resume runs a and the rest."""
    path = tmp_path / "runs.sqlite"
    blocker: list[sqlite3.Connection] = []

    def answer(request: FakeRequest) -> str:
        if request.task_id == "a":
            blocker.append(_lock(path))
        return f"out {request.task_id}"

    fake.handler = answer
    orch = _orch(fake, team, journal=oc.Journal(path, timeout=0.05))
    with pytest.raises(oc.JournalError, match="could not be written") as caught:
        await orch.execute(DIAMOND, run_id="locked")
    assert [c.task_id for c in fake.calls] == ["a"]
    assert caught.value.result is not None and caught.value.run_id == "locked"
    blocker[0].close()
    assert _statuses(orch, "locked") == [("a", 1, "started")]
    assert orch.runs()[0].status == "interrupted"
    await _orch(other, team, journal=path).resume("locked")
    assert sorted(c.task_id or "" for c in other.calls) == ["a", "b", "c", "d"]


async def test_no_call_is_made_whose_start_cannot_be_recorded(
    fake: FakeModel, team: list[oc.Agent], tmp_path: Path
) -> None:
    """The journal locks after a's result: b's start cannot be recorded, so b is not called.
    a's result rides in the commit of the dispatch it frees, so it is not recorded either (a
    resume runs a again): no dependent ever runs on a result the journal does not hold."""
    path = tmp_path / "runs.sqlite"
    blocker: list[sqlite3.Connection] = []

    def lock_after_a(event: oc.Event) -> None:
        if isinstance(event, NodeFinished) and event.task_id == "a":
            blocker.append(_lock(path))

    orch = _orch(fake, team, journal=oc.Journal(path, timeout=0.05), on_event=lock_after_a)
    try:
        with pytest.raises(oc.JournalError):
            await orch.execute(DIAMOND, run_id="locked")
    finally:
        blocker[0].close()
    assert [c.task_id for c in fake.calls] == ["a"]
    assert _statuses(orch, "locked") == [("a", 1, "started")]


def _recorded(path: Path) -> dict[str, str]:
    """Each node's latest recorded status, read-only (as another process would see it)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as reader:
        rows = reader.execute("SELECT task_id, status FROM nodes ORDER BY attempt").fetchall()
    return dict(rows)


async def test_a_dependent_is_called_only_once_its_input_is_durable(
    fake: FakeModel, team: list[oc.Agent], tmp_path: Path
) -> None:
    """Results ride in the commit of the dispatch they free: when b and c are called (and d,
    after them), the journal already holds what they read."""
    path = tmp_path / "runs.sqlite"
    seen: dict[str, dict[str, str]] = {}

    def answer(request: FakeRequest) -> str:
        seen[request.task_id or ""] = _recorded(path)
        return f"out {request.task_id}"

    fake.handler = answer
    await _orch(fake, team, journal=path).execute(DIAMOND, run_id="r")
    assert seen["b"]["a"] == seen["c"]["a"] == "succeeded"
    assert seen["d"]["b"] == seen["d"]["c"] == "succeeded"


async def test_a_result_no_dispatch_carries_is_committed_while_the_run_goes_on(
    fake: FakeModel, team: list[oc.Agent], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """a finishes while its sibling b is still in flight and nothing else can start: its
    result is committed on its own, without waiting for b, the lease's next renewal (put off
    here) or the end of the run."""
    monkeypatch.setattr(recorder, "HEARTBEAT_SECONDS", 3600.0)
    path = tmp_path / "runs.sqlite"
    release = anyio.Event()

    async def answer(request: FakeRequest) -> str:
        if request.task_id == "b":
            await release.wait()
        return f"out {request.task_id}"

    fake.handler = answer
    plan = oc.Plan(
        tasks=[
            oc.Task(id="a", agent="researcher", prompt="quick"),
            oc.Task(id="b", agent="researcher", prompt="slow"),
            oc.Task(id="c", agent="writer", prompt="{a} {b}", after=["a", "b"]),
        ]
    )
    orch = _orch(fake, team, journal=path)
    async with anyio.create_task_group() as group:
        group.start_soon(functools.partial(orch.execute, plan, run_id="r"))
        with anyio.fail_after(30):  # a hang detector, not a speed check
            # Polls the file as another process would: nothing in it can be awaited.
            while not path.exists() or _recorded(path).get("a") != "succeeded":  # noqa: ASYNC110
                await anyio.sleep(0.01)
        assert _recorded(path)["b"] == "started"
        release.set()
    assert _recorded(path) == {"a": "succeeded", "b": "succeeded", "c": "succeeded"}


async def test_a_journal_that_cannot_be_opened_stops_before_any_call(
    fake: FakeModel, team: list[oc.Agent], tmp_path: Path
) -> None:
    """A journal path that cannot be created fails the run before the first model call."""
    (tmp_path / "file").write_text("not a directory")
    orch = _orch(fake, team, journal=tmp_path / "file" / "runs.sqlite")
    with pytest.raises(oc.JournalError, match="cannot be opened"):
        await orch.execute(DIAMOND)
    assert fake.calls == []


async def test_spending_carries_over_a_resume(
    fake: FakeModel, other: FakeModel, team: list[oc.Agent]
) -> None:
    """A resumed run's usage counts what its first session recorded; so does `runs()`."""
    fake.handler = lambda request: FakeReply("x", input_tokens=1000, output_tokens=1000)
    orch = _orch(fake, team, max_parallel=1)
    await _stop_at(orch, fake, "b", lambda: orch.execute(DIAMOND, run_id="paid"))
    first = orch.runs()[0].cost_usd
    assert first > 0
    result = await _orch(other, team).resume("paid")
    assert result.cost_usd > first
    assert result.nodes["a"].cost_usd == pytest.approx(first)
    assert orch.runs()[0].cost_usd == pytest.approx(result.cost_usd)


def test_sigterm_stops_dispatching_and_journals_calls_in_flight(
    fake: FakeModel, team: list[oc.Agent]
) -> None:
    """SIGTERM during a run: the call in flight is cancelled and journaled, nothing else
    starts, and RunInterrupted says how to resume (exit status 143)."""

    async def answer(request: FakeRequest) -> str:
        if request.task_id == "b":
            os.kill(os.getpid(), signal.SIGTERM)  # a real signal, to this very process
            await anyio.sleep_forever()
        return f"out {request.task_id}"

    fake.handler = answer
    orch = _orch(fake, team, max_parallel=1)
    with pytest.raises(RunInterrupted) as caught:
        stop_on_signal(orch, lambda: orch.execute(DIAMOND, run_id="term"), run_id="term")
    assert caught.value.exit_status == 143
    assert "orchestra resume term" in str(caught.value)
    assert "1 call(s) in flight were cancelled" in str(caught.value)
    assert _statuses(orch, "term") == [("a", 1, "succeeded"), ("b", 1, "cancelled")]


async def test_a_run_stopped_while_the_boss_planned_is_planned_on_resume(
    fake: FakeModel, other: FakeModel, team: list[oc.Agent]
) -> None:
    """With no plan recorded there is no plan to keep: resuming asks the boss, then runs."""
    reached = anyio.Event()

    async def hold(request: FakeRequest) -> str:
        reached.set()
        await anyio.sleep_forever()
        return "never"

    fake.handler = hold
    orch = _orch(fake, team, boss="boss")
    async with anyio.create_task_group() as group:
        group.start_soon(functools.partial(orch.run, "a task", run_id="early"))
        await reached.wait()
        group.cancel_scope.cancel()
    assert orch.runs()[0].status == "stopped"
    other.responses = {"plan": json.dumps({"tasks": [_task("z", "writer", "z")]})}
    result = await _orch(other, team, boss="boss").resume("early")
    assert result.output == "again z"
    assert len(other.calls_for("plan")) == 1


async def test_replayed_map_items_are_not_paid_twice(
    fake: FakeModel, other: FakeModel, team: list[oc.Agent]
) -> None:
    """A resumed map's items replayed from the journal count once in the run's usage: it is
    what the provider billed over both sessions."""
    plan = oc.Plan(
        tasks=[
            oc.Task(id="list", agent="researcher", prompt="list"),
            oc.Task(id="each", agent="researcher", prompt="do {item}", after=["list"], map="list"),
        ]
    )
    fake.handler = lambda r: FakeReply(
        "one\ntwo\nthree" if r.task_id == "list" else "out", input_tokens=10, output_tokens=1
    )
    orch = _orch(fake, team, max_parallel=1)
    await _stop_at(orch, fake, "each__1", lambda: orch.execute(plan, run_id="map"))
    other.handler = lambda r: FakeReply("again", input_tokens=10, output_tokens=1)
    result = await _orch(other, team).resume("map")
    assert [c.task_id for c in other.calls] == ["each__1", "each__2"]
    assert result.usage.total_tokens == 11 * (2 + 2)  # list and each__0, then each__1, each__2
