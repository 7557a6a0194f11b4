"""Batches: `Orchestra.map` runs a plan (or a task) per input, journaled, resumable."""

from __future__ import annotations

import io
import json
import os
import re
import runpy
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import closing
from pathlib import Path

import anyio
import pytest
from rich.console import Console

import orchestra as oc
from orchestra.journal import schema
from orchestra.journal.batches import index_of
from orchestra.observe.progress import MapProgress
from orchestra.testing import (
    FakeFailure,
    FakeModel,
    FakeReply,
    FakeRequest,
    OpenAICompatibleServer,
    RecordedRequest,
    Reply,
)

pytestmark = pytest.mark.anyio

PLAN = oc.Plan(
    tasks=[
        oc.Task(id="facts", agent="researcher", prompt="facts on {topic}"),
        oc.Task(id="memo", agent="writer", prompt="memo from {facts}", after=["facts"]),
    ]
)
ROWS = [{"topic": f"t{i}"} for i in range(6)]
OFFLINE = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_OFFLINE_MODE": "true"}


def _echo(request: FakeRequest) -> str:
    """Answers with the task and the last word of the prompt (the topic, or the facts)."""
    prompt = str(request.messages[-1]["content"])
    return f"{request.task_id}({prompt.split()[-1]})"


@pytest.fixture
def echo(fake: FakeModel) -> FakeModel:
    """The fake answers every call with `_echo`."""
    fake.handler = _echo
    return fake


def test_map_sync_returns_every_run_in_input_order(echo: FakeModel, orch: oc.Orchestra) -> None:
    """map_sync runs the plan once per row and returns the runs in input order, each
    journaled under BATCH:INDEX."""
    results = orch.map_sync(PLAN, inputs=ROWS, concurrency=4, batch_id="memos")
    assert [r.run_id for r in results] == [f"memos:{i}" for i in range(6)]
    assert [r.output for r in results] == [f"memo(facts(t{i}))" for i in range(6)]
    assert (results.succeeded, results.failed, results.errors) == (6, 0, {})
    assert results.cost_usd == pytest.approx(sum(r.cost_usd for r in results)) and results.cost_usd
    assert results.usage.calls == 12
    assert orch.journal is not None
    assert {r.run_id: r.status for r in orch.journal.runs()} == {
        f"memos:{i}": "succeeded" for i in range(6)
    }


async def test_map_yields_runs_as_they_finish_at_most_concurrency_at_once(
    fake: FakeModel, orch: oc.Orchestra
) -> None:
    """At most `concurrency` runs are in flight; a run held back does not hold the others:
    results come as they finish, not in input order."""
    plan = oc.Plan(tasks=[oc.Task(id="only", agent="researcher", prompt="go {topic}")])
    running = 0
    peak = 0
    full = anyio.Event()
    release_t0 = anyio.Event()

    async def answer(request: FakeRequest) -> str:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        if running == 3:
            full.set()
        await full.wait()
        if "t0" in str(request.messages[-1]["content"]):
            await release_t0.wait()
        running -= 1
        return "ok"

    fake.handler = answer
    order: list[str] = []
    async with orch.map(plan, inputs=ROWS, concurrency=3, batch_id="wide") as results:
        async for result in results:
            order.append(result.run_id)
            if len(order) == 5:
                release_t0.set()
    assert peak == 3
    assert order[-1] == "wide:0" and sorted(order) == sorted(f"wide:{i}" for i in range(6))
    assert (results.succeeded, results.failed) == (6, 0)


async def test_a_plain_async_for_runs_the_batch_to_the_end(
    echo: FakeModel, orch: oc.Orchestra
) -> None:
    """`async for r in orch.map(...)` without `async with` works when run to the end."""
    seen = [r.run_id async for r in orch.map(PLAN, inputs=ROWS[:3], batch_id="plain")]
    assert sorted(seen) == ["plain:0", "plain:1", "plain:2"]


def test_failed_runs_are_reported_and_the_batch_goes_on(
    fake: FakeModel, orch: oc.Orchestra
) -> None:
    """A run whose node fails for good comes back failed, with its partial result and its
    error; the other runs succeed."""

    def answer(request: FakeRequest) -> str | FakeFailure:
        if request.task_id == "memo" and "t2" in str(request.messages[-1]["content"]):
            return FakeFailure(400)
        return _echo(request)

    fake.handler = answer
    results = orch.map_sync(PLAN, inputs=ROWS, batch_id="partly")
    assert (results.succeeded, results.failed) == (5, 1)
    failed = results[2]
    assert failed.status == "failed" and failed.nodes["facts"].ok
    assert "memo" in results.errors[2] and set(results.errors) == {2}
    assert all(r.status == "succeeded" for i, r in enumerate(results) if i != 2)


def test_a_boss_planned_task_runs_per_input(fake: FakeModel, orch: oc.Orchestra) -> None:
    """A task in words is planned by the boss for each run; inputs fill its placeholders."""
    plan = {"tasks": [{"id": "memo", "agent": "writer", "prompt": "memo on {topic}"}]}

    def answer(request: FakeRequest) -> str:
        return json.dumps(plan) if request.agent == "plan" else _echo(request)

    fake.handler = answer
    results = orch.map_sync("Write a memo", inputs=ROWS[:2], batch_id="planned")
    assert [r.output for r in results] == ["memo(t0)", "memo(t1)"]
    assert [r.plan for r in results] == [oc.Plan.model_validate(plan)] * 2


def test_bad_batches_are_refused_before_any_run(echo: FakeModel, orch: oc.Orchestra) -> None:
    """Bad inputs, concurrency, a plan that cannot run on a row, and a task without a boss
    raise typed errors naming the fix; nothing is recorded."""
    with pytest.raises(oc.ConfigError, match="list of mappings"):
        orch.map(PLAN, inputs={"topic": "x"})
    with pytest.raises(oc.ConfigError, match=r"inputs\[1\] is a str"):
        orch.map(PLAN, inputs=[{"topic": "x"}, "y"])  # type: ignore[list-item]
    with pytest.raises(oc.ConfigError, match="concurrency must be at least 1"):
        orch.map(PLAN, inputs=ROWS, concurrency=0)
    with pytest.raises(oc.ConfigError, match="batch_id"):
        orch.map(PLAN, inputs=ROWS, batch_id=" ")
    with pytest.raises(oc.PlanError, match=r"inputs\[2\].*topic") as caught:
        orch.map(PLAN, inputs=[{"topic": "a"}, {"topic": "b"}, {"subject": "c"}])
    assert caught.value.task_id == "facts"
    bossless = oc.Orchestra(models=orch.models, agents=list(orch.agents.values()))
    with pytest.raises(oc.ConfigError, match="no boss"):
        bossless.map("a task", inputs=ROWS)
    assert orch.journal is not None and orch.journal.runs() == []


def test_a_batch_id_is_used_once(echo: FakeModel, orch: oc.Orchestra) -> None:
    """Starting a batch under a recorded batch id raises JournalError pointing to resume_map."""
    orch.map_sync(PLAN, inputs=ROWS[:1], batch_id="once")
    with pytest.raises(oc.JournalError, match=r"resume_map\('once'\)"):
        orch.map_sync(PLAN, inputs=ROWS[:1], batch_id="once")


def test_without_a_journal_map_runs_and_resume_map_explains(
    echo: FakeModel, orch: oc.Orchestra
) -> None:
    """With the journal off a batch still runs; resume_map says there is nothing to resume."""
    orch.journal = None
    assert orch.map_sync(PLAN, inputs=ROWS[:2]).succeeded == 2
    with pytest.raises(oc.JournalError, match="journal=None"):
        orch.resume_map("anything")


def test_resume_map_of_an_unknown_batch_raises(orch: oc.Orchestra) -> None:
    """resume_map of a batch the journal does not hold raises JournalError naming it."""
    with pytest.raises(oc.JournalError, match="holds no batch 'nope'"):
        orch.resume_map_sync("nope")


def _topic(request: FakeRequest) -> str:
    """The run's topic (`t3`), read from any of its prompts."""
    match = re.search(r"\bt\d+", request.prompt)
    assert match is not None
    return match.group()


def _recorded(journal: oc.Journal, batch_id: str) -> set[tuple[str, str]]:
    """(topic, task) of every node of the batch with a recorded result."""
    return {
        (f"t{record.run_id.rpartition(':')[2]}", node.task_id)
        for record in journal.runs()
        if record.run_id.startswith(f"{batch_id}:")
        for node in journal.nodes(record.run_id)
        if node.status == "succeeded"
    }


async def test_leaving_early_stops_the_batch_and_resume_map_finishes_it(
    fake: FakeModel, orch: oc.Orchestra
) -> None:
    """Leaving the `async with` block cancels the runs in flight (journaled as stopped);
    resume_map runs only the unfinished runs and never repeats a recorded node."""
    calls: Counter[tuple[str, str | None]] = Counter()

    def answer(request: FakeRequest) -> str:
        calls[(_topic(request), request.task_id)] += 1
        return _echo(request)

    fake.handler = answer
    async with orch.map(PLAN, inputs=ROWS, concurrency=2, batch_id="early") as results:
        async for _ in results:
            if results.succeeded == 2:
                break
    assert orch.journal is not None
    done = {r.run_id for r in orch.journal.runs() if r.status == "succeeded"}
    assert 2 <= len(done) < 6
    recorded = _recorded(orch.journal, "early")
    before = Counter(calls)

    async with orch.resume_map("early") as resumed:
        ran = {r.run_id async for r in resumed}
    assert ran == {f"early:{i}" for i in range(6)} - done
    assert (resumed.finished_before, resumed.succeeded, resumed.failed) == (len(done), len(ran), 0)
    assert all(calls[key] == before[key] for key in recorded)
    assert {r.status for r in orch.journal.runs()} == {"succeeded"}
    again = await _drain(orch.resume_map("early"))
    assert (again.finished_before, again.succeeded) == (6, 0)


async def _drain(stream: oc.MapStream) -> oc.MapStream:
    async with stream:
        async for _ in stream:
            pass
    return stream


def test_resume_map_retries_failed_runs_only_when_asked(
    fake: FakeModel, orch: oc.Orchestra
) -> None:
    """Failed runs count as finished; with retry_failed they resume (finished nodes kept)."""
    broken = {"t1"}

    def answer(request: FakeRequest) -> str | FakeFailure:
        if request.task_id == "memo" and _topic(request) in broken:
            return FakeFailure(400)
        return _echo(request)

    fake.handler = answer
    assert orch.map_sync(PLAN, inputs=ROWS[:3], batch_id="flaky").failed == 1
    assert len(orch.resume_map_sync("flaky")) == 0
    broken.clear()
    retried = orch.resume_map_sync("flaky", retry_failed=True)
    assert [r.run_id for r in retried] == ["flaky:1"] and retried[0].output == "memo(facts(t1))"
    assert retried.finished_before == 2


async def test_one_process_drives_a_batch_at_a_time(echo: FakeModel, orch: oc.Orchestra) -> None:
    """While a batch runs, resume_map of it elsewhere raises JournalError and runs nothing."""
    async with orch.map(PLAN, inputs=ROWS[:2], batch_id="busy") as results:
        with pytest.raises(oc.JournalError, match="being run by process"):
            async with orch.resume_map("busy"):
                pass
        async for _ in results:
            pass
    assert results.succeeded == 2


def test_an_older_journal_gains_batches(
    echo: FakeModel, orch: oc.Orchestra, tmp_path: Path
) -> None:
    """A journal written before batches existed (schema v1) is migrated and takes a batch."""
    path = tmp_path / "old.sqlite"
    with closing(oc.Journal(path).connect()) as conn:
        conn.execute("DROP TABLE batches")
        conn.execute("DROP TABLE batch_inputs")
        conn.execute("PRAGMA user_version = 1")
    orch.journal = oc.Journal(path)
    assert orch.map_sync(PLAN, inputs=ROWS[:1], batch_id="old").succeeded == 1
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
        assert conn.execute("SELECT size FROM batches").fetchall() == [(1,)]


def test_the_progress_bar_shows_runs_failures_throughput_and_cost(
    fake: FakeModel, orch: oc.Orchestra, capsys: pytest.CaptureFixture[str]
) -> None:
    """With progress=True the bar counts runs done and failed, runs/s and the cost so far."""

    def answer(request: FakeRequest) -> FakeReply | FakeFailure:
        if _topic(request) == "t0":
            return FakeFailure(400)
        return FakeReply(_echo(request), input_tokens=1000, output_tokens=1000)

    fake.handler = answer
    orch.map_sync(PLAN, inputs=ROWS[:3], batch_id="drawn", progress=True)
    drawn = capsys.readouterr().err
    assert "drawn" in drawn and "3/3" in drawn and "1 failed" in drawn and "runs/s" in drawn
    assert "$0.0" in drawn


def test_the_progress_bar_is_drawn_on_terminals_only() -> None:
    """The bar is wanted on a terminal and not on a pipe; a resumed batch starts at its
    finished runs."""
    assert MapProgress.wanted(Console(force_terminal=True))
    assert not MapProgress.wanted(Console(file=io.StringIO()))
    out = io.StringIO()
    with MapProgress(total=10, done=7, label="b", console=Console(file=out, force_terminal=True)):
        pass
    assert "7/10" in out.getvalue()


# -- a real crash: a process killed mid-batch, the batch finished by resume_map -----------------

WORKER = Path(__file__).with_name("batch_worker.py")


@pytest.mark.slow
def test_a_batch_killed_mid_way_is_finished_by_resume_map(
    tmp_path: Path, openai_server: OpenAICompatibleServer
) -> None:
    """SIGKILL to the process driving a batch (six runs done, three with their last node in
    flight, seven never started), then resume_map: finished runs do not run again, no
    recorded node is requested again, every node has one result, every run succeeds."""
    journal = tmp_path / "runs.sqlite"
    seen: list[tuple[str, str, str]] = []  # generation, run, node
    hold = threading.Event()

    def answer(request: RecordedRequest) -> Reply:
        run, node, _ = request.headers["idempotency-key"].rsplit(":", 2)
        generation = request.headers.get("x-generation", "?")
        seen.append((generation, run, node))
        if generation == "killed" and node == "memo" and index_of(run) >= 6:
            hold.wait(120)  # the memo of runs 6 and on never answers before the kill
        return Reply(f"out {node}")

    openai_server.handler = answer
    worker = subprocess.Popen(
        [sys.executable, str(WORKER), openai_server.url, str(journal), "crashed", "killed"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **OFFLINE},
    )
    deadline = time.monotonic() + 120
    while len({run for _, run, node in seen if node == "memo"}) < 9:
        assert worker.poll() is None, worker.communicate()
        assert time.monotonic() < deadline, "the worker did not reach the held calls"
        time.sleep(0.01)
    worker.send_signal(signal.SIGKILL)
    worker.communicate()
    hold.set()
    runs = oc.Journal(journal).runs()
    done = {r.run_id for r in runs if r.status == "succeeded"}
    recorded = {
        (r.run_id, node.task_id)
        for r in runs
        for node in oc.Journal(journal).nodes(r.run_id)
        if node.status == "succeeded"
    }
    assert done == {f"crashed:{i}" for i in range(6)}
    assert {"crashed:6", "crashed:7", "crashed:8"} <= {r.run_id for r in runs} - done

    worker_module = runpy.run_path(str(WORKER))
    runs_in_batch: int = worker_module["RUNS"]
    orch = worker_module["orchestra"](openai_server.url, str(journal), "resumed")
    result = orch.resume_map_sync("crashed", progress=False)
    assert (result.finished_before, result.failed) == (6, 0)
    assert {r.run_id for r in result} == {f"crashed:{i}" for i in range(6, runs_in_batch)}
    again = [(run, node) for generation, run, node in seen if generation == "resumed"]
    assert not set(again) & recorded  # no recorded node was asked again
    assert {(f"crashed:{i}", "memo") for i in range(6, 9)} <= set(again)  # those in flight
    nodes = Counter(
        (r.run_id, node.task_id)
        for r in oc.Journal(journal).runs()
        for node in oc.Journal(journal).nodes(r.run_id)
        if node.status == "succeeded"
    )
    assert set(nodes.values()) == {1} and len(nodes) == 3 * runs_in_batch
    assert {r.status for r in oc.Journal(journal).runs()} == {"succeeded"}
