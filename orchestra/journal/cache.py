"""The response cache: answers to identical requests, from SQLite instead of the provider.

Opt-in (`Orchestra(cache=True)` or `cache=Cache(ttl=..., agents=[...])`). A request is
identified by its content: the litellm model string, the endpoint, the provider options
(`litellm_params`), the messages and the tools; the spec's name and prices do not count. A hit
answers at once, costs nothing and uses no tokens; it is marked on the node's attempt
(`Attempt.cached`) and in its `model_called` event (`cached`; `reason` starts with
`cache hit`). Only answers are stored, never errors. Entries expire after `ttl` seconds.

A cache is only right for requests whose answer may be reused: with a sampling temperature
above zero, a hit returns one sample again instead of drawing a new one.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

from pydantic import Field

from orchestra._base import Frozen, Names
from orchestra.journal.schema import open_database, write_transaction
from orchestra.models.client import Completion, ToolCall
from orchestra.models.spec import ModelSpec

__all__ = ["Cache", "ResponseCache", "request_key"]

_APPLICATION_ID = 0x6F726363  # "orcc"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT NOT NULL, "
    "answer TEXT NOT NULL, created REAL NOT NULL, expires REAL)"
)


def _create_table(conn: sqlite3.Connection) -> None:
    if conn.execute("PRAGMA application_id").fetchone()[0] == _APPLICATION_ID:
        return  # created already: no write lock needed
    # The table and the mark in one transaction: another opener seeing the table without the
    # mark would refuse the file as not a cache.
    with write_transaction(conn):
        conn.execute(_SCHEMA)
        conn.execute(f"PRAGMA application_id = {_APPLICATION_ID}")


class Cache(Frozen):
    """Settings of the response cache.

    Example:
        >>> Cache(ttl=3600, agents=["researcher"]).agents
        ('researcher',)
    """

    ttl: float | None = Field(default=7 * 24 * 3600.0, gt=0)
    """Seconds an answer stays usable (None: forever). Default: one week."""
    path: str | None = None
    """The cache's SQLite file (default: `cache.sqlite` beside the default journal, or
    `$ORCHESTRA_CACHE`)."""
    agents: Names | None = None
    """Only these agents' calls use the cache (None: every agent's)."""
    timeout: float = Field(default=5.0, gt=0)
    """Seconds opening or writing the cache waits for another process's lock."""

    def applies_to(self, agent: str) -> bool:
        """Whether `agent`'s calls use the cache."""
        return self.agents is None or agent in self.agents


def request_key(
    spec: ModelSpec, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]]
) -> str:
    """The content address of a request: a SHA-256 of everything that shapes its answer."""
    content = {
        "model": spec.model,
        "api_base": spec.api_base,
        "params": spec.litellm_params,
        "messages": list(messages),
        "tools": list(tools),
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class ResponseCache:
    """The cache's store: one SQLite connection, opened for a run and closed after it.

    Failures to read or write the cache never fail a run: a read that fails is a miss.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        ttl: float | None,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Open (creating if needed) the cache at `path`.

        Args:
            path: the SQLite file.
            ttl: seconds an answer stays usable (None: forever).
            timeout: seconds opening or writing waits for another process's lock.
            clock: the time entries are stamped and expired with.

        Raises:
            JournalError: the file cannot be opened, is not an orchestra cache, or another
                process held it locked for `timeout` seconds.
        """
        self.path = Path(path)
        self.ttl = ttl
        self._clock = clock
        self.hits = 0
        self._conn = open_database(
            self.path,
            timeout=timeout,
            application_id=_APPLICATION_ID,
            kind="response cache",
            create=_create_table,
        )

    def get(
        self,
        spec: ModelSpec,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
    ) -> Completion | None:
        """The stored answer to this request (as `spec`'s, free and marked `cached`), if fresh."""
        key = request_key(spec, messages, tools)
        try:
            row = self._conn.execute(
                "SELECT answer, expires FROM responses WHERE key = ?", (key,)
            ).fetchone()
        except sqlite3.Error:
            return None
        if row is None:
            return None
        answer, expires = row
        if expires is not None and expires <= self._clock():
            return None
        data: dict[str, Any] = json.loads(answer)
        self.hits += 1
        return Completion(
            model=spec.name,
            content=data.get("content"),
            tool_calls=tuple(ToolCall(**call) for call in data.get("tool_calls", [])),
            raw_message=data.get("raw_message") or {},
            cached=True,
        )

    def put(
        self,
        spec: ModelSpec,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        completion: Completion,
    ) -> None:
        """Store `completion` as the answer to this request."""
        if completion.cached:
            return
        answer = {
            "content": completion.content,
            "tool_calls": [
                {"id": c.id, "name": c.name, "arguments": c.arguments}
                for c in completion.tool_calls
            ],
            "raw_message": completion.raw_message,
        }
        now = self._clock()
        expires = None if self.ttl is None else now + self.ttl
        # A cache that cannot be written only costs the next identical call a request.
        with suppress(sqlite3.Error):
            self._conn.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)",
                (request_key(spec, messages, tools), spec.model, json.dumps(answer), now, expires),
            )

    def purge(self) -> int:
        """Delete expired entries; returns how many."""
        cursor = self._conn.execute(
            "DELETE FROM responses WHERE expires IS NOT NULL AND expires <= ?", (self._clock(),)
        )
        return cursor.rowcount

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()
