"""Event logs as JSON lines: one event per line, written and read with the one serialiser.

`JsonLines` is the sink behind `orchestra run --json` and `--events FILE`; `read_events` reads
such a log back (for `orchestra report EVENTS.jsonl`), exactly as the events were emitted.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO, final

from orchestra.events import EVENTS, Event

__all__ = ["JsonLines", "dump_event", "parse_events", "read_events"]


def dump_event(event: Event) -> str:
    """The event as one line of JSON (no newline)."""
    return EVENTS.dump_json(event).decode()


@final
class JsonLines:
    """An event sink writing each event as one JSON line to a text file.

    Example:
        >>> import io
        >>> from orchestra.events import RunStarted
        >>> out = io.StringIO()
        >>> JsonLines(out)(RunStarted(run_id="r1", task="t"))
        >>> parse_events(out.getvalue().splitlines())[0].run_id
        'r1'
    """

    def __init__(self, file: IO[str], *, flush: bool = True) -> None:
        self._file = file
        self._flush = flush

    def __call__(self, event: Event) -> None:
        """Write one event (the sink's entry point)."""
        self._file.write(dump_event(event) + "\n")
        if self._flush:
            self._file.flush()


def parse_events(lines: Iterable[str]) -> list[Event]:
    """Events from JSON lines (blank lines are skipped).

    Raises:
        ValueError: a line is not an event; the message gives its number.
    """
    events: list[Event] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            events.append(EVENTS.validate_json(line))
        except ValueError as exc:
            raise ValueError(f"line {number} is not an orchestra event: {exc}") from exc
    return events


def read_events(path: str | os.PathLike[str]) -> list[Event]:
    """The events of a JSON-lines event log, in order."""
    with Path(path).open(encoding="utf-8") as file:
        return parse_events(file)
