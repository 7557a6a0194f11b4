"""The progress bar of a batch (`Orchestra.map`) on a terminal.

One line: a bar, runs finished of the batch, how many failed, throughput (runs per second),
the cost so far and the estimated time left. Only on a terminal: in CI logs and pipes a
batch prints nothing (the `MapResult` says how it went). rich's refresh thread draws; the
batch only counts, under rich's lock, so a run finishing never waits for the screen.
"""

from __future__ import annotations

from types import TracebackType
from typing import final

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

__all__ = ["MapProgress"]


class _Throughput(ProgressColumn):
    """Runs finished per second, as rich estimates it over the last half minute."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- runs/s" if speed is None else f"{speed:.1f} runs/s", style="cyan")


@final
class MapProgress:
    """A batch's progress bar (see the module docstring); a context manager around the batch.

    Example:
        >>> import io
        >>> from rich.console import Console
        >>> out = io.StringIO()
        >>> with MapProgress(total=2, console=Console(file=out, force_terminal=True)) as bar:
        ...     bar.advance(ok=True, cost_usd=0.25)
        ...     bar.advance(ok=False, cost_usd=0.5)
        >>> "2/2" in out.getvalue() and "1 failed" in out.getvalue() and "$0.7500" in out.getvalue()
        True
    """

    def __init__(
        self, *, total: int, done: int = 0, label: str = "map", console: Console | None = None
    ) -> None:
        """A bar for `total` runs of which `done` finished before (a resumed batch).

        Args:
            total: runs in the whole batch.
            done: runs finished in earlier sessions (they count as done, not in throughput).
            label: what the bar is called (the batch id).
            console: where to draw (default: standard error).
        """
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[red]{task.fields[failed]} failed"),
            _Throughput(),
            TextColumn("${task.fields[cost]:.4f}"),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            transient=False,
        )
        self._task: TaskID = self._progress.add_task(
            label, total=total, completed=done, failed=0, cost=0.0
        )
        self._failed = 0
        self._cost = 0.0

    @staticmethod
    def wanted(console: Console | None = None) -> bool:
        """Whether a bar would be seen: the console (default: standard error) is a terminal."""
        return (console or Console(stderr=True)).is_terminal

    def advance(self, *, ok: bool, cost_usd: float) -> None:
        """Count one finished run: whether it succeeded, and what it cost."""
        self._failed += not ok
        self._cost += cost_usd
        self._progress.update(
            self._task, advance=1, failed=self._failed, cost=self._cost, refresh=False
        )

    def __enter__(self) -> MapProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()
