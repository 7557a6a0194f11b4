"""Leases: at most one process drives a run at a time.

A run's lease row names its holder (a random owner token, its pid and host) and an expiry the
holder renews while it runs. A lease is live while its holder is: on the same host the pid is
checked (a process killed with SIGKILL leaves a lease that is taken over at once); on another
host, until it expires. Taking a lease happens inside a `BEGIN IMMEDIATE` transaction, so two
processes racing for one run are serialised by SQLite: exactly one wins.
"""

from __future__ import annotations

import os
import platform
import sqlite3
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HEARTBEAT_SECONDS", "LEASE_SECONDS", "Lease", "read_lease"]

LEASE_SECONDS = 60.0
"""How long a lease outlives its holder's last renewal (what another host waits for)."""
HEARTBEAT_SECONDS = 15.0
"""How often a running session renews its lease."""
# platform.node() is the host name too, without importing socket on every `import orchestra`.
HOST = platform.node()
# Owner tokens of the leases this process holds now: a lease naming this pid but no token
# here was left by a session of this process that could not release it.
_HELD: set[str] = set()


def _pid_alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # no cheap, safe check: rely on the expiry
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    if sys.platform.startswith("linux"):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        return stat.rpartition(")")[2].split()[:1] != ["Z"]  # a zombie is dead
    return True


@dataclass(frozen=True)
class Lease:
    """Who holds a run, and until when (unix time) without renewal."""

    owner: str
    pid: int
    host: str
    expires: float

    @classmethod
    def new(cls) -> Lease:
        """A lease for a new session of this process."""
        return cls(uuid.uuid4().hex, os.getpid(), HOST, time.time() + LEASE_SECONDS)

    def live(self, now: float | None = None) -> bool:
        """Whether the holder may still be driving the run."""
        if self.host == HOST:
            if self.pid == os.getpid():
                return self.owner in _HELD
            return _pid_alive(self.pid)
        return self.expires > (time.time() if now is None else now)

    def describe(self) -> str:
        """Who holds it, for error messages."""
        return f"process {self.pid} on {self.host}"

    def take(self, conn: sqlite3.Connection, run_id: str) -> None:
        """Write this lease for `run_id` (inside the caller's transaction)."""
        conn.execute(
            "INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?)",
            (run_id, self.owner, self.pid, self.host, self.expires),
        )
        _HELD.add(self.owner)

    def renew(self, conn: sqlite3.Connection, run_id: str) -> bool:
        """Push the expiry on; False if the lease is no longer ours."""
        cursor = conn.execute(
            "UPDATE leases SET expires = ? WHERE run_id = ? AND owner = ?",
            (time.time() + LEASE_SECONDS, run_id, self.owner),
        )
        return cursor.rowcount == 1

    def release(self, conn: sqlite3.Connection | None, run_id: str) -> None:
        """Give the run up (the row is deleted if the connection still works)."""
        _HELD.discard(self.owner)
        if conn is not None:
            conn.execute("DELETE FROM leases WHERE run_id = ? AND owner = ?", (run_id, self.owner))


def read_lease(conn: sqlite3.Connection, run_id: str) -> Lease | None:
    """The run's lease row, if any."""
    row = conn.execute(
        "SELECT owner, pid, host, expires FROM leases WHERE run_id = ?", (run_id,)
    ).fetchone()
    return None if row is None else Lease(str(row[0]), int(row[1]), str(row[2]), float(row[3]))
