"""Opening the journal's and the cache's SQLite files while other connections hold them:
several processes creating the same new file at once, a peer in the middle of creating it, a
peer holding it past the timeout."""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

import orchestra as oc
from orchestra.journal import ResponseCache, schema

CACHE_ID = 0x6F726363
# One opener per core of the smallest machine the tests run on: openers spin to start together,
# and one without a core of its own would start late.
PROCESSES, PATHS = 2, 60


def _open(kind: str, path: Path, timeout: float = 5.0) -> None:
    if kind == "journal":
        oc.Journal(path, timeout=timeout).connect().close()
    else:
        ResponseCache(path, ttl=None, timeout=timeout).close()


def _schema(path: Path) -> tuple[str, int, int, list[tuple[str, str, str | None]]]:
    with closing(sqlite3.connect(path)) as conn:
        return (
            conn.execute("PRAGMA journal_mode").fetchone()[0],
            conn.execute("PRAGMA application_id").fetchone()[0],
            conn.execute("PRAGMA user_version").fetchone()[0],
            conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall(),
        )


def _assert_created(kind: str, path: Path) -> None:
    """`path` is in WAL mode and holds the schema (once) that one opener alone creates."""
    alone = path.with_name(f"alone-{kind}.sqlite")
    if not alone.exists():
        _open(kind, alone)
    expected = _schema(alone)
    assert expected[:2] == ("wal", schema.APPLICATION_ID if kind == "journal" else CACHE_ID)
    assert _schema(path) == expected


@pytest.mark.slow  # spawns two processes, which create 60 files together
@pytest.mark.parametrize("kind", ["journal", "cache"])
def test_processes_creating_the_same_file_at_once_all_open_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Two processes opening the same new journal or cache at the same moment both get it,
    with its schema, over 60 fresh paths."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    import open_worker

    paths = [tmp_path / f"{i}.sqlite" for i in range(PATHS)]
    spawn = multiprocessing.get_context("spawn")
    arrived = spawn.Value("i", 0)
    out: multiprocessing.Queue[str] = spawn.Queue()
    processes = [
        spawn.Process(target=open_worker.open_each, args=(kind, paths, arrived, PROCESSES, out))
        for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    outcomes = [out.get(timeout=120) for _ in range(PROCESSES * PATHS)]
    for process in processes:
        process.join(timeout=60)
    assert [p.exitcode for p in processes] == [0] * PROCESSES
    assert [o for o in outcomes if o != "ok"] == []
    for path in paths:
        _assert_created(kind, path)


@pytest.mark.parametrize("kind", ["journal", "cache"])
def test_a_peer_switching_a_new_file_to_wal_is_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """An opener that meets a peer halfway through switching a new file to WAL (holding its
    write lock, the one conflict SQLite reports at once instead of waiting) pauses, tries
    again once the peer is done, and opens the file."""
    path = tmp_path / "new.sqlite"
    with closing(sqlite3.connect(path, isolation_level=None)) as peer:
        peer.execute("BEGIN IMMEDIATE")
        pauses: list[float] = []

        def pause(seconds: float) -> None:  # the peer finishes while the opener pauses
            pauses.append(seconds)
            if peer.in_transaction:
                peer.execute("ROLLBACK")
                peer.execute("PRAGMA journal_mode=WAL")

        monkeypatch.setattr(schema, "sleep", pause)
        _open(kind, path)
    assert len(pauses) == 1
    _assert_created(kind, path)


def _switching_to_wal(peer: sqlite3.Connection) -> None:
    peer.execute("BEGIN IMMEDIATE")


def _creating_the_schema(peer: sqlite3.Connection) -> None:
    peer.execute("PRAGMA journal_mode=WAL")
    peer.execute("BEGIN IMMEDIATE")


def _writing_exclusively(peer: sqlite3.Connection) -> None:
    peer.execute("BEGIN EXCLUSIVE")


@pytest.mark.parametrize("kind", ["journal", "cache"])
@pytest.mark.parametrize("hold", [_switching_to_wal, _creating_the_schema, _writing_exclusively])
def test_a_new_file_held_past_the_timeout_raises_journal_error(
    tmp_path: Path, kind: str, hold: Callable[[sqlite3.Connection], None]
) -> None:
    """Opening a new file that another connection holds locked for longer than the timeout
    raises JournalError naming the path, the wait and the fix; it opens once released."""
    path = tmp_path / "new.sqlite"
    with closing(sqlite3.connect(path, isolation_level=None)) as peer:
        hold(peer)
        with pytest.raises(oc.JournalError) as raised:
            _open(kind, path, timeout=0.05)
        peer.execute("ROLLBACK")
    assert raised.value.path == str(path)
    assert f"{str(path)!r}: another process held it locked for 0.05 s" in str(raised.value)
    assert str(raised.value).endswith("raise timeout= or use another path")
    _open(kind, path, timeout=0.05)
    _assert_created(kind, path)


@pytest.mark.parametrize("kind", ["journal", "cache"])
def test_opening_a_created_file_never_waits_for_its_writer(tmp_path: Path, kind: str) -> None:
    """A journal or cache that exists opens while another connection holds its write lock:
    opening it only reads."""
    path = tmp_path / "made.sqlite"
    _open(kind, path)
    with closing(sqlite3.connect(path, isolation_level=None, timeout=0)) as writer:
        writer.execute("BEGIN IMMEDIATE")
        _open(kind, path, timeout=0)
