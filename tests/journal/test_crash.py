"""Crash tests: real processes, real signals, a real SQLite journal, a real HTTP server.

The server tells the processes apart by their `X-Generation` header and the nodes by their
`Idempotency-Key` (`run:node:attempt`), so its log proves what ran where.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest

import orchestra as oc
from orchestra.cli import main
from orchestra.journal import Journal
from orchestra.testing import Error, OpenAICompatibleServer, RecordedRequest, Reply
from orchestra.testing.server import Step

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("crash_worker.py")
RUN_ID = "crash"
NODES = 30
OFFLINE = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_OFFLINE_MODE": "true",
    "HF_HUB_OFFLINE": "1",
}


def _worker_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crash_worker", WORKER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    generation: str
    node: str
    attempt: int


@dataclass
class Arrivals:
    """The server's handler: logs every request, answers after a delay per node and attempt."""

    delay: Callable[[str, int], float] = lambda node, attempt: 0.0
    gate: threading.Event | None = None
    seen: list[Seen] = field(default_factory=list[Seen])
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: RecordedRequest) -> Reply:
        _, node, attempt = request.headers["idempotency-key"].split("/")[0].rsplit(":", 2)
        generation = request.headers.get("x-generation", "?")
        with self.lock:
            self.seen.append(Seen(generation, node, int(attempt)))
        if self.gate is not None and generation != "setup":
            self.gate.wait(60)
        return Reply(f"out {node}", delay=self.delay(node, int(attempt)))

    def of(self, generation: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.generation == generation]


def _spread(node: str, attempt: int) -> float:
    """100 to 380 ms, fixed per node and attempt: a run takes about two seconds."""
    return 0.1 + zlib.crc32(f"{node}:{attempt}".encode()) % 8 * 0.04


def _spawn(
    url: str, journal: Path, generation: str, mode: str, *, wait: bool = False
) -> subprocess.Popen[str]:
    """A worker process; with `wait`, it loads litellm and waits for `_go`."""
    return subprocess.Popen(
        [sys.executable, str(WORKER), url, str(journal), RUN_ID, generation, mode]
        + (["--wait"] if wait else []),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **OFFLINE},
    )


def _finish(worker: subprocess.Popen[str], timeout: float = 120) -> tuple[str, str]:
    """Wait for the worker to end; its stdout and stderr."""
    worker.wait(timeout)
    streams = (worker.stdout, worker.stderr)
    texts = tuple("" if s is None else s.read() for s in streams)
    for stream in (worker.stdin, *streams):
        if stream is not None:
            stream.close()
    return texts[0], texts[1]


def _go(worker: subprocess.Popen[str]) -> None:
    """Let a waiting worker start its run, once it has loaded litellm."""
    assert worker.stdin is not None and worker.stdout is not None
    assert worker.stdout.readline().strip() == "READY"
    worker.stdin.write("go\n")
    worker.stdin.close()


def _recorded(journal: Path) -> set[str]:
    """Nodes with a recorded result, read without ever writing the file: a reader that opened
    it as a journal (creating its schema, switching it to WAL) would race the worker doing the
    same and make its open fail with "database is locked"."""
    if not journal.exists():
        return set()
    try:
        with closing(sqlite3.connect(f"file:{journal}?mode=ro", uri=True)) as conn:
            rows = conn.execute(
                "SELECT task_id FROM nodes WHERE run_id = ? AND status = 'succeeded'", (RUN_ID,)
            ).fetchall()
    except sqlite3.Error:  # not created yet
        return set()
    return {str(row[0]) for row in rows}


def _dispatches(journal: Path) -> list[tuple[str, int, str]]:
    """Every recorded dispatch, in the order of its start: node, attempt, status."""
    return [(n.task_id, n.attempt, n.status) for n in Journal(journal).nodes(RUN_ID)]


def _wal_commits(wal: bytes) -> tuple[int, list[int]]:
    """A WAL file's frame size and where each of its commits ends (frames of an older
    generation, with other salts, are not part of the log)."""
    frame = 24 + int.from_bytes(wal[8:12], "big")
    salts = wal[16:24]
    ends: list[int] = []
    for start in range(32, len(wal) - frame + 1, frame):
        if wal[start + 8 : start + 16] != salts:
            break
        if int.from_bytes(wal[start + 4 : start + 8], "big"):
            ends.append(start + frame)
    return frame, ends


def _journal_copy(journal: Path, wal: bytes, folder: Path) -> Path:
    """A copy of `journal` in `folder` whose WAL holds `wal`."""
    folder.mkdir()
    copy = folder / journal.name
    shutil.copy(journal, copy)
    Path(f"{copy}-wal").write_bytes(wal)
    return copy


def _results_per_node(journal: Path) -> Counter[str]:
    return Counter(n.task_id for n in Journal(journal).nodes(RUN_ID) if n.status == "succeeded")


def _wait(condition: Callable[[], object], process: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the worker exited before {what}: {_finish(process)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def test_sigkill_at_random_moments_then_resume_until_done(
    tmp_path: Path, openai_server: OpenAICompatibleServer
) -> None:
    """Killed with SIGKILL three times at random moments and resumed: no node with a recorded
    result runs again, only nodes in flight at a kill repeat, and each node has one result."""
    rng = random.Random(20261123)
    journal = tmp_path / "runs.sqlite"
    arrivals = Arrivals(delay=_spread)
    openai_server.handler = arrivals
    recorded_at_start: dict[str, set[str]] = {}
    kills = 3
    # Every process loads litellm up front and waits for its turn: no start-up in the loop.
    workers = [
        _spawn(openai_server.url, journal, str(n), "resume" if n else "start", wait=True)
        for n in range(kills)
    ]
    for number, worker in enumerate(workers):
        generation = str(number)
        recorded_at_start[generation] = _recorded(journal)
        _go(worker)
        _wait(functools.partial(arrivals.of, generation), worker, "its first request")
        time.sleep(rng.uniform(0.0, 0.5))
        worker.send_signal(signal.SIGKILL)
        _finish(worker)
        assert Journal(journal).check() == []  # a kill never corrupts the journal
        assert len(_recorded(journal)) < NODES  # it died mid-run
    # The last resume runs here (the journal on disk is all that carries over).
    recorded_at_start[str(kills)] = _recorded(journal)
    orch = _worker_module().orchestra(openai_server.url, str(journal), str(kills))
    assert orch.resume_sync(RUN_ID).output == f"out t{NODES - 1}"

    by_node: defaultdict[str, list[Seen]] = defaultdict(list)
    for seen in arrivals.seen:
        by_node[seen.node].append(seen)
        # The proof: a node recorded before a process started was never requested by it.
        assert seen.node not in recorded_at_start[seen.generation], seen
    for node, requests in by_node.items():
        generations = [int(r.generation) for r in requests]
        assert generations == sorted(set(generations)), f"{node} ran twice in one process"
        attempts = [r.attempt for r in requests]
        assert attempts == sorted(set(attempts)), f"{node}'s idempotency keys repeat"
        for request in requests[:-1]:  # each repeat was in flight when its process died
            assert node not in recorded_at_start[str(int(request.generation) + 1)]
    assert any(len(requests) > 1 for requests in by_node.values())  # kills hit calls in flight
    assert _results_per_node(journal) == dict.fromkeys([f"t{i:02d}" for i in range(NODES)], 1)
    server_counts = Counter(
        r.headers["idempotency-key"].rsplit(":", 2)[1] for r in openai_server.requests
    )
    assert server_counts == Counter({node: len(rs) for node, rs in by_node.items()})
    record = Journal(journal).run(RUN_ID)
    assert (record.status, record.nodes_done, record.sessions) == ("succeeded", NODES, kills + 1)


def test_torn_write_under_kill_recovers_and_resumes(
    tmp_path: Path, openai_server: OpenAICompatibleServer
) -> None:
    """A kill that tears a journal commit in half: the integrity check passes, the torn
    commit is simply absent, and the run resumes with exactly one result per node."""
    journal = tmp_path / "runs.sqlite"
    arrivals = Arrivals(delay=_spread)
    openai_server.handler = arrivals
    worker = _spawn(openai_server.url, journal, "0", "start")
    _wait(lambda: len(_recorded(journal)) >= 8, worker, "eight recorded results")
    worker.send_signal(signal.SIGKILL)
    worker.communicate()
    wal = Path(f"{journal}-wal").read_bytes()
    frame, commits = _wal_commits(wal)
    assert len(commits) >= 2, "the kill left no WAL to tear"
    # The latest commit that recorded dispatches is cut in the middle of its last frame: what a
    # crash while writing it leaves on disk (later commits may only renew the lease).
    for end in reversed(commits[1:]):
        torn = _journal_copy(journal, wal[: end - frame // 2], tmp_path / f"torn-{end}")
        whole = _journal_copy(journal, wal[:end], tmp_path / f"whole-{end}")
        assert Journal(torn).check() == []
        torn_rows, whole_rows = set(_dispatches(torn)), set(_dispatches(whole))
        if torn_rows != whole_rows:
            break
    else:
        raise AssertionError("no commit in the WAL recorded a dispatch")
    # Exactly the torn commit is gone: the starts or ends of the dispatches it grouped (nodes
    # dispatched or finished in one pass of the event loop share a commit).
    lost, older = whole_rows - torn_rows, torn_rows - whole_rows
    assert lost and len(older) <= len(lost)
    assert {(node, attempt) for node, attempt, _ in older} <= {(n, a) for n, a, _ in lost}
    survived = _recorded(torn)
    assert survived <= _recorded(whole) <= _recorded(journal)
    worker_module = _worker_module()
    orch = worker_module.orchestra(openai_server.url, str(torn), "resumed")
    result = orch.resume_sync(RUN_ID)
    assert result.status == "succeeded"
    assert not {s.node for s in arrivals.of("resumed")} & survived
    assert _results_per_node(torn) == dict.fromkeys([f"t{i:02d}" for i in range(NODES)], 1)


def _plan_json(fast: int, slow: int) -> str:
    tasks = [{"id": f"w{i}", "agent": "helper", "prompt": f"part {i}"} for i in range(fast + slow)]
    parts = " ".join(f"{{w{i}}}" for i in range(fast + slow))
    tasks.append(
        {
            "id": "total",
            "agent": "helper",
            "prompt": f"sum {parts}",
            "after": [t["id"] for t in tasks],
        }
    )
    return json.dumps({"tasks": tasks, "output": "total"})


def test_sigint_stops_gracefully_and_resume_finishes(
    tmp_path: Path, openai_server: OpenAICompatibleServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """SIGINT to `orchestra run`: in-flight calls are cancelled and journaled, the resume
    command is printed, exit 130; `orchestra resume` runs only the cancelled and unstarted
    nodes, on the stored plan (the boss is not asked again)."""
    fast, slow = 4, 4
    config = tmp_path / "orchestra.toml"
    config.write_text(
        f'boss = "chief"\n'
        f'[models.chief]\nmodel = "openai/chief"\napi_base = "{openai_server.url}"\n'
        f'api_key = "k"\n'
        f'[models.worker]\nmodel = "openai/worker"\napi_base = "{openai_server.url}"\n'
        f'api_key = "k"\n'
        f'[agents.helper]\ndescription = "helps"\nmodel = "worker"\n'
    )
    calls: Counter[str] = Counter()

    def answer(request: RecordedRequest) -> Reply:
        if request.model == "chief":
            calls["(boss)"] += 1
            return Reply(_plan_json(fast, slow))
        node, attempt = request.headers["idempotency-key"].rsplit(":", 2)[1:]
        calls[node] += 1
        slow_first = node.startswith("w") and int(node[1:]) >= fast and attempt == "1"
        return Reply(f"out {node}", delay=30.0 if slow_first else 0.0)

    openai_server.handler = answer
    journal = tmp_path / "runs.sqlite"
    env = {**os.environ, **OFFLINE, "ORCHESTRA_JOURNAL": str(journal)}
    command = [sys.executable, "-m", "orchestra.cli"]
    run = subprocess.Popen(
        [*command, "run", "a task", "--config", str(config)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait(lambda: len(_any_recorded(journal)) >= fast, run, "the fast nodes' results")
    _wait(lambda: sum(calls[f"w{i}"] for i in range(fast, fast + slow)) == slow, run, "slow")
    signalled = time.monotonic()
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=30)
    assert time.monotonic() - signalled < 10, "the stop waited for the calls in flight"
    assert run.returncode == 130, err
    run_id = re.findall(r"orchestra resume (\w+)", err)[-1]
    assert f"{slow} call(s) in flight were cancelled" in err
    statuses = {n.task_id: n.status for n in Journal(journal).nodes(run_id)}
    assert statuses == {
        **{f"w{i}": "succeeded" for i in range(fast)},
        **{f"w{i}": "cancelled" for i in range(fast, fast + slow)},
    }
    assert Journal(journal).run(run_id).status == "stopped"

    # `orchestra resume` in this process (litellm is loaded here already).
    status = main(["resume", run_id, "--config", str(config), "--journal", str(journal)])
    assert status == 0
    assert "out total" in capsys.readouterr().out
    assert calls == Counter(
        {
            "(boss)": 1,
            **{f"w{i}": 1 for i in range(fast)},
            **{f"w{i}": 2 for i in range(fast, fast + slow)},
            "total": 1,
        }
    )


def _any_recorded(journal: Path) -> set[str]:
    """Nodes with a recorded result, over every run of the journal."""
    if not journal.exists():
        return set()
    done: set[str] = set()
    for record in Journal(journal).runs():
        done |= {
            n.task_id for n in Journal(journal).nodes(record.run_id) if n.status == "succeeded"
        }
    return done


def test_two_concurrent_resumers_exactly_one_proceeds(
    tmp_path: Path, openai_server: OpenAICompatibleServer
) -> None:
    """Two processes resume one run at once: exactly one proceeds; the other gets a clear
    JournalError and sends no request."""
    journal = tmp_path / "runs.sqlite"
    worker_module = _worker_module()
    gate = threading.Event()
    arrivals = Arrivals(gate=gate)

    def answer(request: RecordedRequest) -> Step:
        step = arrivals(request)
        node = request.headers["idempotency-key"].rsplit(":", 2)[1]
        if request.headers.get("x-generation") == "setup" and node >= "t08":
            return Error(400, "refused")  # the first run fails there, with 8 nodes recorded
        return step

    openai_server.handler = answer
    orch = worker_module.orchestra(openai_server.url, str(journal), "setup")
    with pytest.raises(oc.NodeFailed):
        orch.execute_sync(worker_module.plan(), run_id=RUN_ID)
    assert len(_recorded(journal)) == 8
    first = _spawn(openai_server.url, journal, "A", "resume")
    second = _spawn(openai_server.url, journal, "B", "resume")
    workers = {"A": first, "B": second}
    deadline = time.monotonic() + 60
    while all(w.poll() is None for w in workers.values()):
        assert time.monotonic() < deadline, "neither resumer gave up"
        time.sleep(0.01)
    loser = next(g for g, w in workers.items() if w.poll() is not None)
    winner = "B" if loser == "A" else "A"
    gate.set()  # only now can the winner's requests be answered
    _, loser_err = _finish(workers[loser])
    winner_out, winner_err = _finish(workers[winner])
    assert workers[loser].returncode == 3
    assert f"run {RUN_ID!r} is being run by process {workers[winner].pid}" in loser_err
    assert workers[winner].returncode == 0, winner_err
    assert f"DONE out t{NODES - 1}" in winner_out
    assert arrivals.of(loser) == []
    assert _results_per_node(journal) == dict.fromkeys([f"t{i:02d}" for i in range(NODES)], 1)
