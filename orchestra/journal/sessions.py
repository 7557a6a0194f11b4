"""Opening a session of a run: recording a new run, or taking over a recorded one.

Both happen in one `BEGIN IMMEDIATE` transaction with the run's lease (see
`orchestra.journal.lease`), so two processes racing for one run are serialised: exactly one
gets it. What is stored of the constellation has its secrets removed (`public_spec`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Generator, Iterable, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from orchestra._clock import utc_stamp
from orchestra.agents import Agent
from orchestra.errors import JournalError
from orchestra.journal.lease import Lease, read_lease
from orchestra.journal.resume import StoredRun, load_run
from orchestra.journal.schema import write_transaction
from orchestra.journal.store import Journal
from orchestra.models.budget import Budget
from orchestra.models.constellation import Constellation
from orchestra.models.spec import ModelSpec

__all__ = ["claiming", "new_run", "public_spec", "take_run"]


def public_spec(spec: ModelSpec) -> dict[str, Any]:
    """A spec as the journal stores it: no API key, no credentials in the URL or options."""
    return spec.public()


@contextmanager
def claiming(
    journal: Journal, run_id: str, action: str, note: str = ""
) -> Generator[tuple[sqlite3.Connection, Lease], None, None]:
    """One write transaction that ends by taking the run's lease: the body's writes and the
    lease commit together or not at all. On failure the connection is closed; SQLite errors
    become a JournalError saying what could not be done."""
    conn = journal.connect()
    lease = Lease.new()
    try:
        try:
            with write_transaction(conn):
                yield conn, lease
                lease.take(conn, run_id)
        except BaseException:
            lease.release(None, run_id)
            raise
    except sqlite3.Error as exc:
        conn.close()
        raise JournalError(
            f"journal {str(journal.path)!r} cannot {action} {run_id!r} ({exc}){note}",
            run_id=run_id,
            path=str(journal.path),
        ) from exc
    except BaseException:
        conn.close()
        raise


def new_run(
    journal: Journal,
    run_id: str,
    task: str | None,
    inputs: Mapping[str, str],
    models: Constellation,
    agents: Iterable[Agent],
    budget: Budget,
    started: datetime,
) -> tuple[sqlite3.Connection, Lease]:
    """Record a new run and take its lease, in one transaction.

    Raises:
        JournalError: the journal cannot be written, or already holds `run_id`.
    """
    team = [
        {
            "name": a.name,
            "model": a.model,
            "tags": sorted(a.tags),
            "tools": [t.name for t in a.tools],
        }
        for a in agents
    ]
    with claiming(journal, run_id, "record run", "; no model was called") as (conn, lease):
        row = conn.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is not None:
            raise JournalError(
                f"run {run_id!r} is already in journal {str(journal.path)!r} (status "
                f"{row[0]}); resume it with `await orch.resume({run_id!r})` or "
                f"`orchestra resume {run_id}`, or give this run another run_id",
                run_id=run_id,
                path=str(journal.path),
            )
        conn.execute(
            "INSERT INTO runs (run_id, task, inputs, constellation, agents, budget, "
            "status, started, updated) VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?)",
            (
                run_id,
                task,
                json.dumps(dict(inputs)),
                json.dumps([public_spec(s) for s in models]),
                json.dumps(team),
                budget.model_dump_json(),
                started.isoformat(),
                utc_stamp(),
            ),
        )
    return conn, lease


def take_run(journal: Journal, run_id: str) -> tuple[sqlite3.Connection, Lease, StoredRun, float]:
    """Take the lease of a recorded run and load it, in one transaction; also returns the
    USD recorded so far.

    Raises:
        JournalError: no such run, another live process holds it, or the journal cannot
            be written.
    """
    if not journal.path.exists():
        raise journal.unknown(run_id)  # and no journal file (or folder) left behind
    with claiming(journal, run_id, "resume run") as (conn, lease):
        stored = load_run(conn, run_id)
        if stored is None:
            raise journal.unknown(run_id)
        held = read_lease(conn, run_id)
        if held is not None and held.live():
            raise JournalError(
                f"run {run_id!r} is being run by {held.describe()}; only one process "
                "may drive a run: wait for it to finish (or stop it), then resume",
                run_id=run_id,
                path=str(journal.path),
            )
        cost = conn.execute("SELECT cost_usd FROM runs WHERE run_id = ?", (run_id,)).fetchone()[0]
        conn.execute(
            "UPDATE runs SET status = 'running', sessions = sessions + 1, updated = ?, "
            "finished = NULL WHERE run_id = ?",
            (utc_stamp(), run_id),
        )
    return conn, lease, stored, float(cost)
