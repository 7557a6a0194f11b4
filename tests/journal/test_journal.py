"""The journal's file and what it records: location, schema, secrets, events, keys, the CLI."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

import anyio
import pytest

import orchestra as oc
from orchestra.cli import main
from orchestra.events import EVENTS
from orchestra.journal import recorder, rows, schema
from orchestra.journal.lease import HOST, Lease
from orchestra.journal.store import JOURNAL_ENV, Journal, default_journal_path
from orchestra.models.client import idempotency_headers
from orchestra.models.constellation import Constellation
from orchestra.testing import (
    FakeFailure,
    FakeModel,
    FakeRequest,
    OpenAICompatibleServer,
    Reply,
    fake_constellation,
)

PLAN = oc.Plan(
    tasks=[
        oc.Task(id="facts", agent="researcher", prompt="Facts on {topic}"),
        oc.Task(id="memo", agent="writer", prompt="Memo from {facts}", after=["facts"]),
    ]
)


def test_the_default_journal_follows_the_environment(
    fake: FakeModel, team: list[oc.Agent], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """By default runs go to $ORCHESTRA_JOURNAL (the plugin's per-test file; written only when
    a run starts), `off` or journal=None switch it off, and a path is used as given."""
    default = default_journal_path()
    assert default is not None and Path.cwd() not in default.parents
    orch = oc.Orchestra(models=fake_constellation(fake), agents=team)
    assert orch.journal is not None and orch.journal.path == default
    assert not default.exists() and orch.runs() == []
    orch.execute_sync(PLAN, inputs={"topic": "GPUs"})
    assert default.exists()
    monkeypatch.setenv(JOURNAL_ENV, "off")
    assert oc.Orchestra(models=fake_constellation(fake)).journal is None
    with pytest.raises(oc.JournalError, match="journal=None"):
        oc.Orchestra(models=fake_constellation(fake), journal=None).runs()
    monkeypatch.delenv(JOURNAL_ENV)
    assert default_journal_path() == Path.cwd() / ".orchestra" / "runs.sqlite"
    given = oc.Orchestra(models=fake_constellation(fake), journal=tmp_path / "mine.sqlite")
    assert given.journal is not None and given.journal.path == tmp_path / "mine.sqlite"


def test_runs_lists_recorded_runs_newest_first(fake: FakeModel, orch: oc.Orchestra) -> None:
    """`runs()` gives id, status, nodes done/total, cost and start of each run, newest first."""
    first = orch.execute_sync(PLAN, inputs={"topic": "a"}, run_id="first")
    fake.responses = {"memo": FakeFailure(400)}
    with pytest.raises(oc.NodeFailed):
        orch.execute_sync(PLAN, inputs={"topic": "b"}, run_id="second")
    runs = orch.runs()
    assert [r.run_id for r in runs] == ["second", "first"]
    assert [(r.status, r.nodes_done, r.nodes_total) for r in runs] == [
        ("failed", 1, 2),
        ("succeeded", 2, 2),
    ]
    assert runs[1].cost_usd == pytest.approx(first.cost_usd)
    assert runs[1].started == first.started and runs[1].resumable is False
    assert runs[0].resumable is True
    assert orch.runs(limit=1)[0].run_id == "second"


def test_every_event_and_dispatch_is_recorded(fake: FakeModel, team: list[oc.Agent]) -> None:
    """The journal holds the run's events as emitted, and each dispatch's key and result."""
    events: list[oc.Event] = []
    orch = oc.Orchestra(models=fake_constellation(fake), agents=team, on_event=events.append)
    orch.execute_sync(PLAN, inputs={"topic": "GPUs"}, run_id="seen")
    assert orch.journal is not None
    assert orch.journal.events("seen") == events
    nodes = orch.journal.nodes("seen")
    assert [(n.task_id, n.status, n.idempotency_key) for n in nodes] == [
        ("facts", "succeeded", "seen:facts:1"),
        ("memo", "succeeded", "seen:memo:1"),
    ]
    assert nodes[1].model == "mid" and orch.journal.check() == []
    # The rows are serialised at commit, each event by its own class: the text is the one
    # the events adapter writes, and each dispatch holds its task as planned.
    with closing(sqlite3.connect(orch.journal.path)) as conn:
        texts = [t for (t,) in conn.execute("SELECT event FROM events ORDER BY id")]
        tasks = dict(conn.execute("SELECT task_id, task FROM nodes ORDER BY task_id").fetchall())
    assert texts == [EVENTS.dump_json(event).decode() for event in events]
    assert tasks == {t.id: t.model_dump_json() for t in PLAN.tasks}


def test_secrets_are_never_written(fake: FakeModel, tmp_path: Path) -> None:
    """API keys, credentials in URLs and secret-looking provider options stay out of the file."""
    spec = oc.ModelSpec(
        name="fast",
        model=fake.model("fast"),
        api_key="sk-live-SECRET-1",
        api_base="https://user:SECRET-2@example.invalid/v1",
        litellm_params={"extra_headers": {"Authorization": "SECRET-3"}, "temperature": 0},
    )
    path = tmp_path / "runs.sqlite"
    orch = oc.Orchestra(models=[spec], journal=path)
    orch.execute_sync(oc.Plan(tasks=[oc.Task(id="t", agent="assistant", prompt="hi")]))
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for secret in (b"SECRET-1", b"SECRET-2", b"SECRET-3"):
        assert secret not in stored
    with closing(sqlite3.connect(path)) as conn:
        constellation = conn.execute("SELECT constellation FROM runs").fetchone()[0]
    assert json.loads(constellation)[0]["litellm_params"]["temperature"] == 0


def test_a_newer_or_foreign_file_is_refused_and_older_ones_migrate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A journal from a newer orchestra, or another SQLite file, raises JournalError; an older
    journal is migrated in place."""
    newer = tmp_path / "newer.sqlite"
    with closing(oc.Journal(newer).connect()) as conn:
        conn.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
    with pytest.raises(oc.JournalError, match="newer orchestra"):
        oc.Journal(newer).runs()
    foreign = tmp_path / "foreign.sqlite"
    with closing(sqlite3.connect(foreign)) as conn:
        conn.execute("CREATE TABLE notes (x)")
    with pytest.raises(oc.JournalError, match="not an orchestra journal"):
        oc.Journal(foreign).runs()
    (tmp_path / "garbage.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(oc.JournalError):
        oc.Journal(tmp_path / "garbage.sqlite").runs()

    older = tmp_path / "older.sqlite"
    oc.Journal(older).connect().close()
    monkeypatch.setattr(schema, "SCHEMA_VERSION", schema.SCHEMA_VERSION + 1)
    monkeypatch.setitem(
        schema.MIGRATIONS,
        schema.SCHEMA_VERSION - 1,
        lambda conn: conn.execute("ALTER TABLE runs ADD COLUMN note TEXT"),
    )
    with closing(oc.Journal(older).connect()) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
        assert "note" in {row[1] for row in conn.execute("PRAGMA table_info(runs)")}


def test_a_node_cannot_have_two_recorded_results(fake: FakeModel, orch: oc.Orchestra) -> None:
    """The schema itself refuses a second recorded result for a node."""
    orch.execute_sync(PLAN, inputs={"topic": "x"}, run_id="once")
    assert orch.journal is not None
    with closing(orch.journal.connect()) as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO nodes (run_id, task_id, attempt, status, started, session) "
            "VALUES ('once', 'memo', 2, 'succeeded', '2026-01-01T00:00:00+00:00', 2)"
        )


@pytest.mark.slow  # the first call through litellm's OpenAI client imports it
def test_idempotency_keys_reach_an_openai_compatible_server(
    openai_server: OpenAICompatibleServer,
) -> None:
    """Each request carries `Idempotency-Key: run:node:attempt`; a node's later requests (here
    its tool loop's second call) add `/2`, `/3`, so no two different requests share a key."""

    def lookup(term: str) -> str:
        """Look a term up."""
        return term.upper()

    openai_server.script(
        "m", [Reply(tool_calls=[{"name": "lookup", "arguments": {"term": "x"}}]), Reply("done")]
    )
    spec = oc.ModelSpec(name="local", model="openai/m", api_base=openai_server.url, api_key="k")
    orch = oc.Orchestra(models=[spec], agents=[oc.Agent(name="assistant", tools=[lookup])])
    orch.execute_sync(oc.Plan(tasks=[oc.Task(id="t", agent="assistant", prompt="go")]), run_id="r")
    assert [r.headers["idempotency-key"] for r in openai_server.requests] == ["r:t:1", "r:t:1/2"]
    assert (
        idempotency_headers(
            oc.ModelSpec(name="f", model="orchestra-fake/x"), {"idempotency_key": "k"}
        )
        is None
    )


def test_cli_lists_shows_and_resumes_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`orchestra runs`, `runs show RUN_ID` and `resume RUN_ID` work on the simulated system."""
    monkeypatch.chdir(tmp_path)
    assert main(["run", "Compare small and large models", "--time-scale", "0", "--json"]) == 0
    capsys.readouterr()
    assert main(["runs"]) == 0
    listing = capsys.readouterr().out
    assert "succeeded" in listing and "6/6" in listing
    assert main(["runs", "--json"]) == 0
    run_id = json.loads(capsys.readouterr().out.splitlines()[0])["run_id"]
    assert main(["runs", "show", run_id]) == 0
    shown = capsys.readouterr().out
    assert f"{run_id}:compare:1" in shown and "resume with" not in shown
    assert main(["resume", run_id, "--time-scale", "0"]) == 0
    assert "6 of 6 nodes recorded" in capsys.readouterr().out
    assert main(["resume", "nope"]) == 2
    assert "holds no run 'nope'" in capsys.readouterr().err


def test_cli_says_when_there_is_nothing_to_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty journal lists nothing; a switched-off journal is an error naming the fix."""
    assert main(["runs", "--journal", str(tmp_path / "none.sqlite")]) == 0
    assert "no runs recorded" in capsys.readouterr().out
    monkeypatch.setenv(JOURNAL_ENV, "off")
    assert main(["runs"]) == 2
    assert "--journal PATH" in capsys.readouterr().err


def test_a_lease_is_live_while_its_holder_is() -> None:
    """Same host: live while the pid lives (and, for this process, while its session holds
    it); another host: until it expires."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    now = time.time()
    assert not Lease("o", dead.pid, HOST, now + 60).live()
    assert not Lease("not-held", os.getpid(), HOST, now + 60).live()
    assert Lease("o", 1, "elsewhere", now + 60).live(now)
    assert not Lease("o", 1, "elsewhere", now - 1).live(now)


def test_a_running_session_renews_its_lease(
    fake: FakeModel, team: list[oc.Agent], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """While a run goes on, its lease's expiry is pushed on by the heartbeat."""
    monkeypatch.setattr(recorder, "HEARTBEAT_SECONDS", 0.01)
    path = tmp_path / "runs.sqlite"
    seen: list[float] = []

    async def answer(request: FakeRequest) -> str:
        for _ in range(2):
            with closing(sqlite3.connect(path)) as conn:
                seen.append(conn.execute("SELECT expires FROM leases").fetchone()[0])
            await anyio.sleep(0.05)
        return "ok"

    fake.handler = answer
    orch = oc.Orchestra(models=fake_constellation(fake), agents=team, journal=path)
    orch.execute_sync(oc.Plan(tasks=[oc.Task(id="t", agent="researcher", prompt="x")]))
    assert seen[1] > seen[0]
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT count(*) FROM leases").fetchone()[0] == 0


@pytest.mark.parametrize("use", ["journal", "cache"])
def test_a_foreign_sqlite_file_is_never_modified(fake: FakeModel, tmp_path: Path, use: str) -> None:
    """An application's own database given as the journal or the cache is refused before
    anything is written to it: same bytes, same journal mode, no WAL file."""
    app = tmp_path / "app.sqlite"
    with closing(sqlite3.connect(app)) as conn:
        conn.execute("CREATE TABLE customers (name TEXT)")
        conn.execute("INSERT INTO customers VALUES ('ada')")
        conn.commit()
    before = app.read_bytes()
    other = tmp_path / "runs.sqlite"
    journal, cache = (app, None) if use == "journal" else (other, oc.Cache(path=str(app)))
    orch = oc.Orchestra(models=fake_constellation(fake), journal=journal, cache=cache)
    with pytest.raises(oc.JournalError, match="is a SQLite database but not an orchestra"):
        orch.execute_sync(oc.Plan(tasks=[oc.Task(id="t", agent="assistant", prompt="hi")]))
    assert app.read_bytes() == before
    assert not (tmp_path / "app.sqlite-wal").exists()
    with closing(sqlite3.connect(app)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert fake.calls == []


def test_a_lone_surrogate_in_an_answer_loses_nothing(fake: FakeModel, tmp_path: Path) -> None:
    """An answer holding a lone surrogate (JSON allows one) succeeds with the journal on, as
    with it off: the broken code point reads as U+FFFD, and the journal holds the answer."""
    fake.responses = {"assistant": "paid \ud800 answer"}
    plan = oc.Plan(tasks=[oc.Task(id="t", agent="assistant", prompt="hi")])
    outputs = []
    for journal in (tmp_path / "runs.sqlite", None):
        orch = oc.Orchestra(models=fake_constellation(fake), journal=journal)
        outputs.append(orch.execute_sync(plan, run_id="r").output)
    assert outputs == ["paid \ufffd answer"] * 2
    resumed = oc.Orchestra(models=fake_constellation(fake), journal=tmp_path / "runs.sqlite")
    assert resumed.resume_sync("r").output == "paid \ufffd answer"


def test_resuming_an_unknown_run_leaves_no_file(fake: FakeModel, tmp_path: Path) -> None:
    """resume() of a run no journal holds says so and creates neither the file nor its folder
    (nor a response cache)."""
    path = tmp_path / "fresh" / "runs.sqlite"
    cache = oc.Cache(path=str(tmp_path / "cache" / "cache.sqlite"))
    orch = oc.Orchestra(models=fake_constellation(fake), journal=path, cache=cache)
    with pytest.raises(oc.JournalError, match="holds no run 'nope'"):
        orch.resume_sync("nope")
    assert list(tmp_path.iterdir()) == []


def _recorder(fake: FakeModel, path: Path) -> recorder.RunRecorder:
    """A recorder of a new run "r" in the journal at `path`, driven by hand."""
    return recorder.RunRecorder.begin(
        journal=Journal(path),
        cache=None,
        run_id="r",
        task=None,
        inputs={},
        models=Constellation(fake_constellation(fake)),
        agents=[],
        budget=oc.Budget(),
        started=datetime.now(timezone.utc),
    )


@pytest.mark.anyio
@pytest.mark.parametrize("failure", ["sqlite", "bug"])
async def test_a_commit_that_fails_fails_every_dispatch_in_it_and_strands_no_one(
    fake: FakeModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    """Dispatches queued together share a commit: when it fails (SQLite refuses a row, or
    something unexpected raises below), every dispatch in it gets a JournalError (none waits
    forever) and the journal is broken."""
    rec = _recorder(fake, tmp_path / "runs.sqlite")
    write = rows.insert

    def insert(conn: sqlite3.Connection, sql: rows.Insert, queued: list[rows.Row]) -> None:
        if queued and failure == "bug":
            raise ValueError("not a journal value")
        write(conn, sql, [(*row[:-1], object()) for row in queued])  # unbindable: SQLite refuses

    monkeypatch.setattr(rows, "insert", insert)
    outcomes: list[str] = []

    async def dispatch(task_id: str) -> None:
        rec._dispatch(oc.Task(id=task_id, agent="a", prompt="p"))  # pyright: ignore[reportPrivateUsage]
        try:
            await rec._commit()  # pyright: ignore[reportPrivateUsage]
            outcomes.append("committed")
        except oc.JournalError as exc:
            outcomes.append(type(exc).__name__)

    with anyio.fail_after(30):  # a hang detector, not a speed check
        async with anyio.create_task_group() as group:
            for task_id in ("a", "b", "c"):
                group.start_soon(dispatch, task_id)
    assert outcomes == ["JournalError"] * 3
    reason = "not a journal value" if failure == "bug" else "Error binding parameter"
    assert rec.broken is not None and reason in str(rec.broken)
    monkeypatch.undo()
    rec.abandon()


@pytest.mark.anyio
async def test_a_result_waiting_for_an_open_batch_waits_without_polling(
    fake: FakeModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A result queued while a batch of dispatches is open is written by that batch's commit,
    and waits for it without stepping at every pass of the event loop (a task ready at every
    pass keeps the loop from sleeping while threads do the run's work); with no batch open, it
    opens one."""
    path = tmp_path / "runs.sqlite"
    rec = _recorder(fake, path)
    first = oc.Task(id="first", agent="a", prompt="p")
    attempt, _ = rec._dispatch(first)  # pyright: ignore[reportPrivateUsage]
    await rec._commit()  # pyright: ignore[reportPrivateUsage]
    checkpoint = anyio.lowlevel.checkpoint
    steps = 0

    async def counted() -> None:
        nonlocal steps
        steps += 1
        await checkpoint()

    monkeypatch.setattr(anyio.lowlevel, "checkpoint", counted)
    monkeypatch.setattr(recorder, "_GROUP_PASSES", 400)  # a batch held open a long time

    async def second() -> None:
        rec._dispatch(oc.Task(id="second", agent="a", prompt="p"))  # pyright: ignore[reportPrivateUsage]
        await rec._commit()  # pyright: ignore[reportPrivateUsage]

    def status(task_id: str = "first") -> str:
        with closing(sqlite3.connect(path)) as conn:
            row = conn.execute("SELECT status FROM nodes WHERE task_id = ?", (task_id,))
            return str(row.fetchone()[0])

    with anyio.fail_after(30):  # a hang detector, not a speed check
        async with anyio.create_task_group() as group:
            group.start_soon(rec._settler)  # pyright: ignore[reportPrivateUsage]
            async with anyio.create_task_group() as dispatching:
                dispatching.start_soon(second)
                await checkpoint()  # the batch opens (the real one: not counted)
                now = datetime.now(timezone.utc)
                result = oc.NodeResult(
                    task_id="first", agent="a", output="done", started=now, finished=now
                )
                rec._settle_later("first", attempt, result, "succeeded")  # pyright: ignore[reportPrivateUsage]
                assert status() == "started"
            assert status() == "succeeded"  # written by the batch's commit
            # With no dispatch to come, a result opens a batch of its own.
            ended = result.model_copy(update={"task_id": "second"})
            rec._settle_later("second", 1, ended, "succeeded")  # pyright: ignore[reportPrivateUsage]
            await checkpoint()  # the settler's step (the real checkpoint: not counted)
            batch = rec._batch  # pyright: ignore[reportPrivateUsage]
            assert batch is not None
            await batch.done.wait()
            assert status("second") == "succeeded"
            group.cancel_scope.cancel()
    assert steps == 0  # a batch's passes are its opener's; a result waiting adds none
    monkeypatch.undo()
    rec.abandon()
