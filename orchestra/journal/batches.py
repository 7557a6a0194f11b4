"""Batches in the journal: what `Orchestra.map` runs, so that `resume_map` can finish it.

A batch row holds what every run of the batch runs (a plan, or a task for the boss), the
per-run budget and the concurrency; one row per input holds that run's inputs, as the text
that enters the prompts. The runs themselves are ordinary runs, recorded under `BATCH:INDEX`
by their own recorders. One process drives a batch at a time: it holds the batch's lease
(in the leases table, under `BATCH:*`, a key no run of the batch can have).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import anyio

from orchestra._clock import utc_stamp
from orchestra.errors import JournalError
from orchestra.journal.lease import HEARTBEAT_SECONDS, Lease, read_lease
from orchestra.journal.sessions import claiming
from orchestra.journal.store import Journal
from orchestra.models.budget import Budget
from orchestra.plan import Plan

__all__ = ["BatchBook", "RunState", "StoredBatch", "index_of", "run_id_of"]

RunState = Literal["new", "resume", "done", "failed"]
"""Where one run of a batch stands: never recorded (`new`); recorded but unfinished,
interrupted or stopped (`resume`); succeeded (`done`); failed or over its budget (`failed`)."""


def run_id_of(batch_id: str, index: int) -> str:
    """The run id of the batch's run number `index` (from 0)."""
    return f"{batch_id}:{index}"


def index_of(run_id: str) -> int:
    """The index of a batch's run from its run id (`BATCH:INDEX`)."""
    return int(run_id.rpartition(":")[2])


def _lease_key(batch_id: str) -> str:
    return f"{batch_id}:*"


@dataclass(frozen=True)
class StoredBatch:
    """A batch as the journal holds it, with where each of its runs stands."""

    batch_id: str
    plan: Plan | None
    task: str | None
    """The task given to the boss for each run (None when the batch runs a plan)."""
    inputs: tuple[dict[str, str], ...]
    """Each run's inputs, in input order."""
    budget: Budget | None
    """Each run's budget (None: the Orchestra's)."""
    concurrency: int
    states: tuple[RunState, ...]
    """Where each run stands, in input order."""


def _check_free(conn: sqlite3.Connection, journal: Journal, batch_id: str) -> None:
    """Raise if another live process drives the batch (inside the claiming transaction)."""
    held = read_lease(conn, _lease_key(batch_id))
    if held is not None and held.live():
        raise JournalError(
            f"batch {batch_id!r} is being run by {held.describe()}; only one process may "
            "drive a batch: wait for it to finish (or stop it), then resume it",
            path=str(journal.path),
        )


def _states(
    conn: sqlite3.Connection, batch_id: str, size: int, *, has_plan: bool
) -> list[RunState]:
    """Where each run stands. A run of a plan batch recorded without its plan (its process
    died between the two first commits) ran nothing: it is forgotten and starts anew."""
    states: list[RunState] = ["new"] * size
    prefix = f"{batch_id}:"
    rows = conn.execute(
        "SELECT run_id, status, EXISTS (SELECT 1 FROM plans WHERE plans.run_id = runs.run_id) "
        "FROM runs WHERE run_id >= ? AND run_id < ?",
        (prefix, f"{batch_id};"),  # every id that starts with the prefix (';' follows ':')
    ).fetchall()
    for run_id, status, planned in rows:
        suffix = str(run_id)[len(prefix) :]
        if not suffix.isdigit() or int(suffix) >= size:
            continue  # someone's own run that merely shares the prefix
        index = int(suffix)
        if has_plan and not planned:
            for table in ("runs", "nodes", "events", "leases"):
                conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
        elif status == "succeeded":
            states[index] = "done"
        elif status in ("failed", "budget_exceeded"):
            states[index] = "failed"
        else:
            states[index] = "resume"
    return states


class BatchBook:
    """One process's session of a batch in the journal: its record and its lease."""

    def __init__(
        self, *, journal: Journal, batch_id: str, conn: sqlite3.Connection, lease: Lease
    ) -> None:
        self.journal = journal
        self.batch_id = batch_id
        self._conn: sqlite3.Connection | None = conn
        self._lease = lease

    @classmethod
    def begin(
        cls,
        *,
        journal: Journal,
        batch_id: str,
        work: Plan | str,
        inputs: Sequence[Mapping[str, str]],
        budget: Budget | None,
        concurrency: int,
    ) -> BatchBook:
        """Record a new batch (every run's inputs) and take its lease, in one transaction.

        Raises:
            JournalError: the journal cannot be written, or already holds `batch_id`.
        """
        with claiming(journal, _lease_key(batch_id), "record the batch") as (conn, lease):
            _check_free(conn, journal, batch_id)
            if conn.execute("SELECT 1 FROM batches WHERE batch_id = ?", (batch_id,)).fetchone():
                raise JournalError(
                    f"batch {batch_id!r} is already in journal {str(journal.path)!r}; finish "
                    f"it with `orch.resume_map({batch_id!r})`, or give this batch another "
                    "batch_id",
                    path=str(journal.path),
                )
            now = utc_stamp()
            conn.execute(
                "INSERT INTO batches (batch_id, plan, task, size, budget, concurrency, started, "
                "updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    batch_id,
                    work.model_dump_json() if isinstance(work, Plan) else None,
                    work if isinstance(work, str) else None,
                    len(inputs),
                    None if budget is None else budget.model_dump_json(),
                    concurrency,
                    now,
                    now,
                ),
            )
            conn.executemany(
                "INSERT INTO batch_inputs (batch_id, idx, inputs) VALUES (?, ?, ?)",
                ((batch_id, i, json.dumps(dict(row))) for i, row in enumerate(inputs)),
            )
        return cls(journal=journal, batch_id=batch_id, conn=conn, lease=lease)

    @classmethod
    def resume(cls, *, journal: Journal, batch_id: str) -> tuple[BatchBook, StoredBatch]:
        """Take the lease of a recorded batch and load it, with where each run stands.

        Raises:
            JournalError: no such batch, another live process drives it, or the journal
                cannot be written.
        """
        if not journal.path.exists():
            raise cls._unknown(journal, batch_id)
        with claiming(journal, _lease_key(batch_id), "resume the batch") as (conn, lease):
            _check_free(conn, journal, batch_id)
            row = conn.execute(
                "SELECT plan, task, size, budget, concurrency FROM batches WHERE batch_id = ?",
                (batch_id,),
            ).fetchone()
            if row is None:
                raise cls._unknown(journal, batch_id)
            plan_json, task, size, budget_json, concurrency = row
            inputs = tuple(
                {str(k): str(v) for k, v in json.loads(encoded).items()}
                for (encoded,) in conn.execute(
                    "SELECT inputs FROM batch_inputs WHERE batch_id = ? ORDER BY idx", (batch_id,)
                )
            )
            states = _states(conn, batch_id, int(size), has_plan=plan_json is not None)
            conn.execute(
                "UPDATE batches SET sessions = sessions + 1, updated = ? WHERE batch_id = ?",
                (utc_stamp(), batch_id),
            )
        stored = StoredBatch(
            batch_id=batch_id,
            plan=None if plan_json is None else Plan.model_validate_json(plan_json),
            task=task,
            inputs=inputs,
            budget=None if budget_json is None else Budget.model_validate_json(budget_json),
            concurrency=int(concurrency),
            states=tuple(states),
        )
        return cls(journal=journal, batch_id=batch_id, conn=conn, lease=lease), stored

    @staticmethod
    def _unknown(journal: Journal, batch_id: str) -> JournalError:
        return JournalError(
            f"journal {str(journal.path)!r} holds no batch {batch_id!r}; a batch is recorded "
            "when `orch.map` starts it (with the journal on)",
            path=str(journal.path),
        )

    async def heartbeat(self) -> None:
        """Renew the batch's lease while the batch runs (until cancelled)."""
        while True:
            await anyio.sleep(HEARTBEAT_SECONDS)
            conn = self._conn
            if conn is None:
                return
            try:
                conn.execute("BEGIN")
                renewed = self._lease.renew(conn, _lease_key(self.batch_id))
                conn.execute("COMMIT")
            except sqlite3.Error:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                continue  # a busy journal: the next beat tries again, well within the expiry
            if not renewed:
                return

    def close(self) -> None:
        """Release the batch's lease and close the connection."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        key = _lease_key(self.batch_id)
        try:
            conn.execute("BEGIN")
            conn.execute(
                "UPDATE batches SET updated = ? WHERE batch_id = ?", (utc_stamp(), self.batch_id)
            )
            self._lease.release(conn, key)
            conn.execute("COMMIT")
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            # The lease names this process, which is ending its session: it counts as dead.
            self._lease.release(None, key)
        finally:
            conn.close()
