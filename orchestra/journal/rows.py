"""The journal's rows, written in few statements: a run's dispatches, ends and events.

A statement costs the event loop far more amid a run's work than alone (the `BEGIN` of a commit
took 1-2.6 ms in a run of a thousand instant calls), so one statement per row cost such a run
10-20%. `insert` writes any number of rows in a handful of multi-row statements. Rows are built
when their commit is written, all at once (`Dispatch` and `End` hold what they are made of
until then): serialised one by one amid a run's other work, each cost several times more.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from dataclasses import dataclass

from orchestra.events import Event
from orchestra.plan import Task
from orchestra.results import NodeResult

__all__ = [
    "ENDED",
    "EVENT_ROWS",
    "MOST_ROWS",
    "STARTED",
    "Dispatch",
    "End",
    "Insert",
    "Row",
    "event_row",
    "insert",
    "result_json",
]

Row = tuple[object, ...]
Insert = tuple[str, str, str]
"""A multi-row statement: its head, one row's placeholders, and its tail."""

STARTED: Insert = (
    "INSERT INTO nodes (run_id, task_id, attempt, status, idempotency_key, task, started, "
    "session) VALUES ",
    "(?, ?, ?, 'started', ?, ?, ?, ?)",
    "",
)
# An upsert only to write many ends in one statement (UPDATE ... FROM needs SQLite 3.33): every
# end follows its committed dispatch, so the conflict branch is the one that runs.
ENDED: Insert = (
    "INSERT INTO nodes (run_id, task_id, attempt, status, result, cost_usd, finished, started, "
    "session) VALUES ",
    "(?, ?, ?, ?, ?, ?, ?, ?, ?)",
    " ON CONFLICT (run_id, task_id, attempt) DO UPDATE SET status = excluded.status, "
    "result = excluded.result, cost_usd = excluded.cost_usd, finished = excluded.finished",
)
EVENT_ROWS: Insert = ("INSERT INTO events (run_id, kind, event) VALUES ", "(?, ?, ?)", "")
MOST_ROWS = 64  # per statement: 64 x 9 values stay under old SQLite's 999 variables


@functools.lru_cache(maxsize=64)
def _statement(head: str, values: str, tail: str, rows: int) -> str:
    return head + ", ".join([values] * rows) + tail


def insert(conn: sqlite3.Connection, sql: Insert, rows: list[Row]) -> None:
    """Write `rows` with `sql` in chunks of 64, 32, 16... rows: a handful of statements per
    call, and a handful of statement texts (cached, prepared once) for every size."""
    done = 0
    while done < len(rows):
        size = min(MOST_ROWS, 1 << (len(rows) - done).bit_length() - 1)
        chunk = rows[done : done + size]
        conn.execute(_statement(*sql, size), [value for row in chunk for value in row])
        done += size


@dataclass(frozen=True, slots=True)
class Dispatch:
    """A node's dispatch, waiting for its commit."""

    task: Task
    attempt: int
    key: str
    started: str

    def row(self, run_id: str, session: int) -> Row:
        """Its row for `STARTED`."""
        task = self.task
        return (
            run_id,
            task.id,
            self.attempt,
            self.key,
            task.model_dump_json(),
            self.started,
            session,
        )


@dataclass(frozen=True, slots=True)
class End:
    """How a dispatch ended (`result` None: cancelled), waiting for its commit."""

    task_id: str
    attempt: int
    status: str
    result: NodeResult | None
    finished: str

    def row(self, run_id: str, session: int) -> Row:
        """Its row for `ENDED`."""
        result = self.result
        text = None if result is None else result_json(result)
        cost = 0.0 if result is None else result.cost_usd
        return (
            run_id,
            self.task_id,
            self.attempt,
            self.status,
            text,
            cost,
            self.finished,
            self.finished,
            session,
        )


def event_row(event: Event) -> Row:
    """An event's row in the events table.

    Raises:
        ValueError: the event cannot be serialised.
    """
    # The event's own serialiser: the same text as `EVENTS.dump_json`, a third cheaper.
    return (event.run_id, event.kind, event.model_dump_json())


def result_json(result: NodeResult) -> str:
    """A node's result as the nodes table holds it (an output pydantic cannot serialise is
    kept as its text)."""
    try:
        return result.model_dump_json()
    except ValueError:
        text = json.loads(json.dumps(result.output, default=str))
        return result.model_copy(update={"output": text}).model_dump_json()
