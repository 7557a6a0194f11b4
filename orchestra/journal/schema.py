"""The journal's SQLite file: connection settings, schema, version check and migrations.

The file is marked as an orchestra journal (`PRAGMA application_id`) and versioned
(`PRAGMA user_version`). Opening an older journal migrates it in one transaction; opening a
newer one, or a SQLite file that is not a journal, raises `JournalError` without touching it
(the check comes before anything is written, even the switch to WAL).
The database runs in WAL mode with `synchronous=NORMAL`: a commit survives the process being
killed (SIGKILL, OOM); a power loss may roll back the last commits, never corrupt the file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from orchestra.errors import JournalError

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "connect", "open_database"]

APPLICATION_ID = 0x6F726368  # "orch"
SCHEMA_VERSION = 2

_SCHEMA_V1 = """
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY,
    task TEXT,
    inputs TEXT NOT NULL,
    constellation TEXT NOT NULL,
    agents TEXT NOT NULL,
    budget TEXT NOT NULL,
    status TEXT NOT NULL,
    started TEXT NOT NULL,
    updated TEXT NOT NULL,
    finished TEXT,
    cost_usd REAL NOT NULL DEFAULT 0,
    planning TEXT NOT NULL DEFAULT '{}',
    sessions INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX runs_started ON runs (started);
CREATE TABLE plans (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    plan TEXT NOT NULL,
    reason TEXT NOT NULL,
    failed_task TEXT,
    at TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE nodes (
    run_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    status TEXT NOT NULL,
    idempotency_key TEXT,
    task TEXT,
    result TEXT,
    cost_usd REAL NOT NULL DEFAULT 0,
    started TEXT NOT NULL,
    finished TEXT,
    session INTEGER NOT NULL,
    PRIMARY KEY (run_id, task_id, attempt)
);
-- The guarantee, in the schema: a node has at most one recorded result.
CREATE UNIQUE INDEX nodes_one_result ON nodes (run_id, task_id) WHERE status = 'succeeded';
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    event TEXT NOT NULL
);
CREATE INDEX events_run ON events (run_id, id);
CREATE TABLE leases (
    run_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    expires REAL NOT NULL
);
"""

# v2: batches (`Orchestra.map`): what every run of a batch runs, and each run's inputs.
_BATCHES_V2 = """
CREATE TABLE batches (
    batch_id TEXT PRIMARY KEY,
    plan TEXT,
    task TEXT,
    size INTEGER NOT NULL,
    budget TEXT,
    concurrency INTEGER NOT NULL,
    started TEXT NOT NULL,
    updated TEXT NOT NULL,
    sessions INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE batch_inputs (
    batch_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    inputs TEXT NOT NULL,
    PRIMARY KEY (batch_id, idx)
);
"""

Migration = Callable[[sqlite3.Connection], None]


def _add_batches(conn: sqlite3.Connection) -> None:
    for statement in _statements(_BATCHES_V2):
        conn.execute(statement)


MIGRATIONS: dict[int, Migration] = {1: _add_batches}
"""Upgrades by the version they start from: `MIGRATIONS[n]` takes a journal from n to n + 1."""


def _fail(path: Path, message: str, kind: str = "journal") -> JournalError:
    return JournalError(f"{kind} {str(path)!r}: {message}", path=str(path))


def open_database(
    path: Path, *, timeout: float, application_id: int, kind: str
) -> sqlite3.Connection:
    """Open (creating if needed) an orchestra SQLite file (a `kind`: journal, response
    cache), in WAL mode.

    A file that is not ours (another application's database, or not SQLite at all) is refused
    before anything is written to it: switching to WAL is a write, so it comes after the check.

    Raises:
        JournalError: the file cannot be created or opened, or is not an orchestra `kind`.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise _fail(
            path, f"cannot be opened ({exc}); check the path and its permissions", kind
        ) from exc
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        tables = int(conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])
        if _application_id(conn) != application_id and (version != 0 or tables != 0):
            raise _fail(
                path, f"is a SQLite database but not an orchestra {kind}; use another path", kind
            )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    except JournalError:
        conn.close()
        raise
    except sqlite3.Error as exc:
        conn.close()
        raise _fail(path, f"cannot be used ({exc})", kind) from exc
    return conn


def connect(path: Path, *, timeout: float) -> sqlite3.Connection:
    """Open (creating if needed) the journal at `path`, checked and migrated to this version.

    Raises:
        JournalError: the file cannot be created or opened, is not an orchestra journal, or
            was written by a newer orchestra.
    """
    conn = open_database(path, timeout=timeout, application_id=APPLICATION_ID, kind="journal")
    try:
        _check_and_migrate(conn, path)
    except JournalError:
        conn.close()
        raise
    except sqlite3.Error as exc:
        conn.close()
        raise _fail(path, f"cannot be used ({exc})") from exc
    return conn


def _check_and_migrate(conn: sqlite3.Connection, path: Path) -> None:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version == SCHEMA_VERSION and _application_id(conn) == APPLICATION_ID:
        return  # the common case, without taking the write lock
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Read again under the lock: another process may have created the schema meanwhile.
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        app = _application_id(conn)
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app != APPLICATION_ID and (version != 0 or tables != 0):
            raise _fail(path, "is a SQLite database but not an orchestra journal; use another path")
        if version > SCHEMA_VERSION:
            raise _fail(
                path,
                f"was written by a newer orchestra (schema v{version}; this one reads up to "
                f"v{SCHEMA_VERSION}); upgrade orchestra or use another journal path",
            )
        if version == 0:
            for statement in _statements(_SCHEMA_V1):
                conn.execute(statement)
            version = 1
        while version < SCHEMA_VERSION:
            MIGRATIONS[version](conn)
            version += 1
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _application_id(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA application_id").fetchone()[0])


def _statements(script: str) -> list[str]:
    """The statements of a DDL script (executescript would commit our transaction)."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
