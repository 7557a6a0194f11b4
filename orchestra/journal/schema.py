"""The journal's SQLite file: connection settings, schema, version check and migrations.

The file is marked as an orchestra journal (`PRAGMA application_id`) and versioned
(`PRAGMA user_version`). Opening an older journal migrates it in one transaction; opening a
newer one, or a SQLite file that is not a journal, raises `JournalError` without touching it
(the check comes before anything is written, even the switch to WAL).
The database runs in WAL mode with `synchronous=NORMAL`: a commit survives the process being
killed (SIGKILL, OOM); a power loss may roll back the last commits, never corrupt the file.
Any number of processes and threads may open the same file at once, a new one included: each
waits for the others (`timeout` seconds in all), and one of them creates the schema.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Generator
from contextlib import contextmanager
from pathlib import Path
from time import monotonic, sleep

from orchestra.errors import JournalError

__all__ = [
    "APPLICATION_ID",
    "SCHEMA_VERSION",
    "Create",
    "connect",
    "open_database",
    "write_transaction",
]

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


Create = Callable[[sqlite3.Connection], None]
"""Creates or migrates a file's schema once it is checked and in WAL mode."""


def open_database(
    path: Path, *, timeout: float, application_id: int, kind: str, create: Create
) -> sqlite3.Connection:
    """Open (creating if needed) an orchestra SQLite file (a `kind`: journal, response
    cache) in WAL mode, with `create` run on it to create or migrate its schema.

    A file that is not ours (another application's database, or not SQLite at all) is refused
    before anything is written to it: switching to WAL is a write, so it comes after the check.
    Other connections opening or writing the same file are waited for, `timeout` seconds in
    all: SQLite returns "database is locked" at once, without waiting, to one of two
    connections switching a new file to WAL together, so the whole opening is tried again
    after a short pause until the time is spent.

    Raises:
        JournalError: the file cannot be created or opened, is not an orchestra `kind`, or
            another connection held it locked for `timeout` seconds.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise _fail(
            path, f"cannot be opened ({exc}); check the path and its permissions", kind
        ) from exc
    try:
        _until_not_busy(conn, timeout, lambda: _prepare(conn, path, application_id, kind, create))
    except JournalError:
        conn.close()
        raise
    except sqlite3.Error as exc:
        conn.close()
        if _busy(exc):
            message = (
                f"another process held it locked for {timeout:g} s while this one opened it "
                f"({exc}); raise timeout= or use another path"
            )
            raise _fail(path, message, kind) from exc
        raise _fail(path, f"cannot be used ({exc})", kind) from exc
    return conn


def connect(path: Path, *, timeout: float) -> sqlite3.Connection:
    """Open (creating if needed) the journal at `path`, checked and migrated to this version.

    Raises:
        JournalError: the file cannot be created or opened, is not an orchestra journal, was
            written by a newer orchestra, or another process held it locked for `timeout`
            seconds.
    """
    return open_database(
        path,
        timeout=timeout,
        application_id=APPLICATION_ID,
        kind="journal",
        create=lambda conn: _check_and_migrate(conn, path),
    )


def _prepare(
    conn: sqlite3.Connection, path: Path, application_id: int, kind: str, create: Create
) -> None:
    # One statement, so the three come from one snapshot, whatever another opener commits.
    tables, version, app = conn.execute(
        "SELECT (SELECT count(*) FROM sqlite_master), user_version, application_id "
        "FROM pragma_user_version, pragma_application_id"
    ).fetchone()
    if app != application_id and (version != 0 or tables != 0):
        raise _fail(
            path, f"is a SQLite database but not an orchestra {kind}; use another path", kind
        )
    # WAL mode is stored in the file: only its first opener needs to switch it, the one
    # step that can fail at once, without waiting, when another opener does the same.
    if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    create(conn)


_FIRST_PAUSE = 0.001
_LONGEST_PAUSE = 0.05
_SQLITE_BUSY = 5  # sqlite3.SQLITE_BUSY, named only from Python 3.11


def _until_not_busy(conn: sqlite3.Connection, timeout: float, step: Callable[[], None]) -> None:
    """Run `step`, again after a pause (doubling from 1 ms to 50 ms) each time it fails with
    SQLITE_BUSY, until `timeout` seconds from now; SQLite's own waits count against it."""
    deadline = monotonic() + timeout
    pause = _FIRST_PAUSE
    while True:
        try:
            step()
        except sqlite3.OperationalError as exc:
            left = deadline - monotonic()
            if not _busy(exc) or left <= 0:
                raise
            sleep(min(pause, left))
            pause = min(2 * pause, _LONGEST_PAUSE)
            _busy_timeout(conn, deadline - monotonic())
        else:
            _busy_timeout(conn, timeout)
            return


def _busy_timeout(conn: sqlite3.Connection, seconds: float) -> None:
    conn.execute(f"PRAGMA busy_timeout = {max(0, round(seconds * 1000))}")


def _busy(exc: sqlite3.Error) -> bool:
    code: int | None = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is None:
        return "database is locked" in str(exc)
    return code & 0xFF == _SQLITE_BUSY


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Generator[None, None, None]:
    """A transaction holding the write lock from its start (`BEGIN IMMEDIATE`), so what it
    reads stays true until it commits; rolled back if its body raises."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite rolls back by itself after some errors
            conn.execute("ROLLBACK")
        raise


def _check_and_migrate(conn: sqlite3.Connection, path: Path) -> None:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version == SCHEMA_VERSION and _application_id(conn) == APPLICATION_ID:
        return  # the common case, without taking the write lock
    with write_transaction(conn):
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


def _application_id(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA application_id").fetchone()[0])


def _statements(script: str) -> list[str]:
    """The statements of a DDL script (executescript would commit our transaction)."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
