"""`Journal`: where runs are recorded, and how they are read back.

One SQLite file (see `orchestra.journal.schema`) holds every run: its task, inputs and
constellation (secrets removed), every plan and replan, every node dispatch with its attempt
number, idempotency key and result, and every event. Runs are written by one writer each, the
process driving them (`orchestra.journal.recorder`); any process can read them.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Generator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from orchestra.errors import JournalError
from orchestra.events import EVENTS, Event
from orchestra.journal.lease import read_lease
from orchestra.journal.records import NodeRecord, NodeStatus, RunRecord, RunStatus
from orchestra.journal.schema import connect

__all__ = ["DEFAULT_JOURNAL", "JOURNAL_ENV", "Journal", "default_journal_path"]

JOURNAL_ENV = "ORCHESTRA_JOURNAL"
"""Environment variable naming the default journal's path (`off` switches it off)."""
DEFAULT_JOURNAL = Path(".orchestra") / "runs.sqlite"
"""Where the journal goes by default, relative to the working directory."""
_OFF = frozenset({"", "0", "off", "none", "false"})


def default_journal_path() -> Path | None:
    """`$ORCHESTRA_JOURNAL` if set (None when it says `off`), else `./.orchestra/runs.sqlite`."""
    value = os.environ.get(JOURNAL_ENV)
    if value is None:
        return Path.cwd() / DEFAULT_JOURNAL
    if value.strip().lower() in _OFF:
        return None
    return Path(value).expanduser().absolute()


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


class Journal:
    """A run journal: one SQLite file. Opening it has no side effect until a run uses it.

    Example:
        >>> import tempfile, pathlib
        >>> journal = Journal(pathlib.Path(tempfile.mkdtemp()) / "runs.sqlite")
        >>> journal.runs()
        []
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 5.0) -> None:
        """A journal at `path` (created, with its directory, by the first run).

        Args:
            path: the SQLite file.
            timeout: seconds opening the journal or a write waits for another process's
                lock before the journal counts as unusable.
        """
        self.path = Path(path).expanduser().absolute()
        self.timeout = timeout

    def connect(self) -> sqlite3.Connection:
        """A new connection to the journal, created and migrated if needed.

        Raises:
            JournalError: it cannot be opened, is not a journal, is from a newer orchestra,
                or another process held it locked for `timeout` seconds.
        """
        return connect(self.path, timeout=self.timeout)

    @contextmanager
    def _reading(self) -> Generator[sqlite3.Connection | None, None, None]:
        """A connection for reads, or None when the journal was never written."""
        if not self.path.exists():
            yield None
            return
        conn = self.connect()
        try:
            yield conn
        except sqlite3.Error as exc:
            raise JournalError(
                f"journal {str(self.path)!r} cannot be read ({exc})", path=str(self.path)
            ) from exc
        finally:
            conn.close()

    def runs(self, *, limit: int | None = None) -> list[RunRecord]:
        """Recorded runs, newest first (at most `limit`)."""
        with self._reading() as conn:
            if conn is None:
                return []
            rows = conn.execute(
                "SELECT run_id FROM runs ORDER BY started DESC, rowid DESC LIMIT ?",
                (-1 if limit is None else limit,),
            ).fetchall()
            return [self._record(conn, str(row[0])) for row in rows]

    def run(self, run_id: str) -> RunRecord:
        """The record of one run.

        Raises:
            JournalError: the journal holds no run `run_id`.
        """
        with self._reading() as conn:
            if conn is None or not self._exists(conn, run_id):
                raise self.unknown(run_id)
            return self._record(conn, run_id)

    def nodes(self, run_id: str) -> list[NodeRecord]:
        """Every dispatch of the run's nodes, in the order they started."""
        with self._reading() as conn:
            if conn is None or not self._exists(conn, run_id):
                raise self.unknown(run_id)
            rows = conn.execute(
                "SELECT task_id, attempt, status, idempotency_key, result, cost_usd, started, "
                "finished, session FROM nodes WHERE run_id = ? ORDER BY started, task_id, attempt",
                (run_id,),
            ).fetchall()
        records: list[NodeRecord] = []
        for task_id, attempt, status, key, result, cost, started, finished, session in rows:
            data: dict[str, Any] = json.loads(result) if result else {}
            records.append(
                NodeRecord(
                    task_id=task_id,
                    attempt=attempt,
                    status=cast(NodeStatus, status),
                    idempotency_key=key,
                    model=data.get("model"),
                    cost_usd=cost,
                    started=datetime.fromisoformat(started),
                    finished=_time(finished),
                    error=data.get("error"),
                    session=session,
                )
            )
        return records

    def events(self, run_id: str) -> list[Event]:
        """The run's events, in the order they were emitted (over every session)."""
        with self._reading() as conn:
            if conn is None or not self._exists(conn, run_id):
                raise self.unknown(run_id)
            rows = conn.execute(
                "SELECT event FROM events WHERE run_id = ? ORDER BY id", (run_id,)
            ).fetchall()
        return [EVENTS.validate_json(row[0]) for row in rows]

    def check(self) -> list[str]:
        """SQLite's integrity check of the file: the problems found ([] when it is sound)."""
        with self._reading() as conn:
            if conn is None:
                return []
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        problems = [str(row[0]) for row in rows]
        return [] if problems == ["ok"] else problems

    def unknown(self, run_id: str) -> JournalError:
        """The error for a run id the journal does not hold."""
        return JournalError(
            f"journal {str(self.path)!r} holds no run {run_id!r}; `orchestra runs` lists the "
            "recorded runs",
            run_id=run_id,
            path=str(self.path),
        )

    @staticmethod
    def _exists(conn: sqlite3.Connection, run_id: str) -> bool:
        return conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is not None

    @staticmethod
    def _record(conn: sqlite3.Connection, run_id: str) -> RunRecord:
        row = conn.execute(
            "SELECT status, task, cost_usd, planning, started, updated, finished, sessions "
            "FROM runs WHERE run_id = ?",
            (run_id,),
        ).fetchone()
        status, task, cost, planning, started, updated, finished, sessions = row
        if status == "running":
            lease = read_lease(conn, run_id)
            if lease is None or not lease.live():
                status = "interrupted"
            # Not finished: the boss's calls and the nodes recorded so far.
            nodes = conn.execute(
                "SELECT coalesce(sum(cost_usd), 0) FROM nodes WHERE run_id = ?", (run_id,)
            ).fetchone()[0]
            cost = float(json.loads(planning).get("cost_usd", 0.0)) + float(nodes)
        done = conn.execute(
            "SELECT count(*) FROM nodes WHERE run_id = ? AND status = 'succeeded'", (run_id,)
        ).fetchone()[0]
        known = {
            str(r[0])
            for r in conn.execute("SELECT DISTINCT task_id FROM nodes WHERE run_id = ?", (run_id,))
        }
        plan = conn.execute(
            "SELECT plan FROM plans WHERE run_id = ? ORDER BY seq DESC LIMIT 1", (run_id,)
        ).fetchone()
        if plan is not None:
            known.update(str(t["id"]) for t in json.loads(plan[0])["tasks"])
        return RunRecord(
            run_id=run_id,
            status=cast(RunStatus, status),
            task=task,
            nodes_done=int(done),
            nodes_total=len(known),
            cost_usd=float(cost),
            started=datetime.fromisoformat(started),
            updated=datetime.fromisoformat(updated),
            finished=_time(finished),
            sessions=int(sessions),
        )

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"
