"""The live view: a run drawn in the terminal as its events arrive.

`LiveView` is an event sink. On a terminal it redraws one frame in place: the DAG's nodes as a
tree, each with its status, agent, model, attempt, elapsed time, tokens, cost and a note (why
that model, what it waits on, what went wrong); a progress bar; and the running cost against
the budget. Elsewhere (CI logs, pipes) it prints one plain line per step instead. Colours
follow the console, so `NO_COLOR` is respected.

It never blocks the event loop: a sink call only folds the event into a `RunTrack` under a
lock (and, when not on a terminal, prints one line); rich's refresh thread does the drawing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from types import TracebackType
from typing import final

from rich.console import Console, ConsoleOptions, Group, JustifyMethod, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from orchestra._clock import utc_now
from orchestra.events import (
    BudgetStopped,
    Event,
    ModelCalled,
    NodeFinished,
    NodeRouted,
    NodeStarted,
    PlanReady,
    PlanRejected,
    RunFinished,
    RunStarted,
)
from orchestra.models.budget import Budget
from orchestra.observe.tracker import BOSS_TASK, NodeStatus, NodeTrack, RunTrack

__all__ = ["LiveView", "tree_order"]

_GLYPHS: dict[NodeStatus, tuple[str, str]] = {
    "waiting": ("·", "dim"),
    "running": ("▶", "cyan"),
    "retrying": ("↻", "yellow"),
    "succeeded": ("✔", "green"),
    "failed": ("✘", "bold red"),
    "not_run": ("○", "dim"),
}
_COLUMNS: tuple[tuple[str, JustifyMethod], ...] = (
    ("", "left"),
    ("node", "left"),
    ("agent", "left"),
    ("model", "left"),
    ("try", "right"),
    ("time", "right"),
    ("tokens", "right"),
    ("cost $", "right"),
    ("note", "left"),
)
_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_PALETTE = ("cyan", "magenta", "green", "yellow", "blue", "bright_red", "bright_cyan")


def _first_line(text: str, limit: int = 160) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def tree_order(nodes: dict[str, NodeTrack]) -> list[tuple[str, str]]:
    """Nodes as a tree: each under its last dependency, with the guide to draw before it.

    A node with several dependencies appears once, under the last one its task lists.

    Example:
        >>> nodes = {"a": NodeTrack("a"), "b": NodeTrack("b", after=("a",)),
        ...          "c": NodeTrack("c")}
        >>> tree_order(nodes)
        [('a', '├─ '), ('b', '│  └─ '), ('c', '└─ ')]
    """
    children: dict[str | None, list[str]] = {}
    for task_id, node in nodes.items():
        parent = next((p for p in reversed(node.after) if p in nodes), None)
        children.setdefault(parent, []).append(task_id)
    order: list[tuple[str, str]] = []
    seen: set[str] = set()

    def walk(parent: str | None, indent: str) -> None:
        kids = [k for k in children.get(parent, []) if k not in seen]
        for index, task_id in enumerate(kids):
            last = index == len(kids) - 1
            seen.add(task_id)
            order.append((task_id, indent + ("└─ " if last else "├─ ")))
            walk(task_id, indent + ("   " if last else "│  "))

    walk(None, "")
    # A cycle cannot come from a validated plan; show anything unreached flat all the same.
    order.extend((task_id, "") for task_id in nodes if task_id not in seen)
    return order


@final
class LiveView:
    """An event sink that shows a run: redrawn in place on a terminal, plain lines elsewhere.

    Use it as a context manager around the run, so the display stops even if the run raises:

        with LiveView(budget=orch.budget) as view:
            orch = oc.simulated.orchestra(on_event=view)
            orch.run_sync("Compare small and large models")

    Args:
        console: where to draw (default: a new rich Console on stdout).
        budget: the run's budget, to show spending against it.
        refresh_per_second: how often the terminal frame is redrawn.
        clock: the current time (injected for tests).
    """

    def __init__(
        self,
        console: Console | None = None,
        *,
        budget: Budget | None = None,
        refresh_per_second: float = 8.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.console = console or Console()
        self.budget = budget
        self.track = RunTrack()
        self._clock = clock
        self._refresh = refresh_per_second
        self._lock = threading.Lock()
        self._live: Live | None = None
        self._colors: dict[str, str] = {}

    @property
    def in_place(self) -> bool:
        """True when the frame is redrawn in place (the console is a terminal)."""
        return self.console.is_terminal

    def __enter__(self) -> LiveView:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop redrawing, leaving the last frame on screen. A run that did not finish (a
        Ctrl-C, an error) is shown as stopped, not as still running."""
        with self._lock:
            unfinished = self.track.run_id is not None and not self.track.ended
            if unfinished:
                self.track.status = "stopped"
                for node in [*self.track.nodes.values(), *filter(None, [self.track.boss])]:
                    if not node.done:
                        node.status = "not_run"
        live, self._live = self._live, None
        if live is not None:
            live.stop()  # draws the final frame
        elif unfinished and not self.in_place:
            self.console.print(
                f"run {self.track.run_id} stopped before it finished",
                highlight=False,
                markup=False,
                emoji=False,
            )

    def __call__(self, event: Event) -> None:
        """Take one event (the sink's entry point)."""
        with self._lock:
            if isinstance(event, RunStarted) and self.track.run_id not in (None, event.run_id):
                self.track = RunTrack()  # a new run on the same view
            self.track.apply(event)
        if not self.in_place:
            line = self._line(event)
            if line is not None:  # user text (tasks, errors) is printed as it is
                self.console.print(line, highlight=False, markup=False, emoji=False, soft_wrap=True)
            return
        if self._live is None and not isinstance(event, RunFinished):
            self._live = Live(
                self,
                console=self.console,
                refresh_per_second=self._refresh,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()
        elif self._live is not None and isinstance(event, RunFinished):
            self.close()  # draws the final frame

    def __rich_console__(
        self, console: Console, options: ConsoleOptions
    ) -> Iterator[RenderableType]:
        with self._lock:
            frame = self.render(self._clock(), width=options.max_width)
        yield frame

    # -- the terminal frame ------------------------------------------------------------------

    def _color(self, model: str | None) -> str:
        if model is None:
            return "dim"
        if model not in self._colors:
            self._colors[model] = _PALETTE[len(self._colors) % len(_PALETTE)]
        return self._colors[model]

    def render(self, now: datetime, *, width: int | None = None) -> RenderableType:
        """The frame for the run's state at `now`, for a terminal `width` columns wide."""
        width = width or self.console.width
        track = self.track
        title = Text.assemble(
            ("orchestra ", "bold"),
            (f"run {track.run_id or '…'} ", ""),
            (f"[{track.status}]", _status_style(track.status)),
        )
        if track.task:
            title.append(f"  {_first_line(track.task, 90)}", style="italic")
        table = Table(
            box=None, padding=(0, 1, 0, 0), show_edge=False, header_style="bold dim", expand=True
        )
        for name, justify in _COLUMNS:
            # The note takes the width left by the figures, which stay whole on one line; on a
            # narrow terminal it wraps rather than being cut (`cheapest wi…` told nothing).
            note = name == "note"
            table.add_column(
                name,
                justify=justify,
                no_wrap=not note,
                overflow="fold" if note else "ellipsis",
                ratio=1 if note else None,
                min_width=20 if note else None,
            )
        if track.boss is not None:
            table.add_row(*self._row(track.boss, "", now))
        for task_id, guide in tree_order(track.nodes):
            table.add_row(*self._row(track.nodes[task_id], guide, now))
        return Group(title, table, self._footer(now))

    def _row(self, node: NodeTrack, guide: str, now: datetime) -> list[RenderableType]:
        glyph, style = _GLYPHS[node.status]
        if node.status in ("running", "retrying"):
            glyph = _SPINNER[int(now.timestamp() * 10) % len(_SPINNER)]
        seconds = node.seconds(now)
        started = node.started is not None or node.calls > 0
        return [
            Text(glyph, style=style),
            Text.assemble((guide, "dim"), (node.task_id, "bold" if started else "")),
            Text(node.agent or "", style="dim"),
            Text(node.model or "", style=self._color(node.model)),
            Text(str(node.attempt) if started else ""),
            Text("" if seconds is None else f"{seconds:.1f}s"),
            Text(f"{node.tokens:,}" if node.tokens else ""),
            Text(f"{node.cost_usd:.6f}" if node.calls else ""),
            self._note(node),
        ]

    def _note(self, node: NodeTrack) -> Text:
        if node.error is not None:
            return Text(_first_line(node.error, 80), style="red")
        if node.status == "retrying" and node.notes:
            last = node.notes[-1]
            note = f"{_LABELS.get(last.kind, last.kind)}: {_describe(last, 40)}"
            return Text(_first_line(note, 80), style="yellow")
        if node.truncated:
            # The column is narrow: the plain lines say why.
            many = f" ({node.truncated} answers)" if node.truncated > 1 else ""
            return Text(f"truncated{many}", style="yellow")
        if node.status == "waiting":
            nodes = self.track.nodes
            pending = [p for p in node.after if p in nodes and not nodes[p].done]
            return Text(f"after {', '.join(pending)}" if pending else "ready", style="dim")
        return Text(_first_line(node.reason or "", 60), style="dim")

    def _footer(self, now: datetime) -> RenderableType:
        track, budget = self.track, self.budget
        done, total = track.done_count, max(track.total, 1)
        # While the boss still writes the plan, the nodes known so far are not all of them: the
        # bar pulses instead of filling up.
        planning = track.boss is not None and not track.boss.done and not track.ended
        progress = Table.grid(padding=(0, 1))
        progress.add_row(
            ProgressBar(total=None if planning else total, completed=done, width=40),
            Text(f"{done}/{track.total}{'+ nodes, planning' if planning else ' nodes'}"),
            Text(f"{track.seconds(now):.1f}s", style="dim"),
        )
        spend = Text("cost ")
        spend.append(f"${track.cost_usd:.6f}", style="bold")
        if budget is not None and budget.max_usd is not None:
            share = track.cost_usd / budget.max_usd
            style = "red" if share >= 1 else "yellow" if share >= 0.8 else "green"
            spend.append(f" of ${budget.max_usd:g} ({share:.1%})", style=style)
        spend.append(f"   tokens {track.tokens:,}")
        if budget is not None and budget.max_tokens is not None:
            spend.append(f" of {budget.max_tokens:,}")
        if budget is not None and budget.max_seconds is not None:
            spend.append(f"   deadline {budget.max_seconds:g}s")
        if track.stopped is not None:
            spend.append(f"   stopped: {track.stopped}", style="bold red")
        limited = [m for m in track.models.values() if m.pauses]
        if not limited:
            return Group(progress, spend)
        rates = Text("rate limits ")
        for model in limited:
            style = "bold yellow" if model.paused(now) else "yellow"
            rates.append(f"{model.name}: {model.pauses}x 429", style=style)
            if model.concurrency is not None:
                rates.append(f", {model.concurrency} at a time", style=style)
            if model.paused(now):
                rates.append(" (paused)", style="bold yellow")
            rates.append("   ")
        return Group(progress, spend, rates)

    # -- plain lines -------------------------------------------------------------------------

    def _line(self, event: Event) -> str | None:
        track = self.track
        match event:
            case RunStarted():
                task = f": {_first_line(event.task, 100)}" if event.task else ""
                return f"run {event.run_id} started{task}"
            case PlanRejected():
                return f"plan rejected (attempt {event.attempt}): {len(event.problems)} problem(s)"
            case PlanReady():
                return f"plan ready: {len(event.task_ids)} tasks, {len(event.edges)} edges"
            case NodeStarted():
                return f"  start    {event.task_id:<16} {event.agent}"
            case NodeRouted():
                return f"  route    {event.task_id:<16} {event.model:<12} {event.reason}"
            case ModelCalled() if event.task_id == BOSS_TASK and event.error is None:
                return (
                    f"plan: {event.model} answered in {event.seconds:.2f}s, "
                    f"{event.input_tokens + event.output_tokens:,} tokens, ${event.cost_usd:.6f}"
                ) + (f", truncated: {_cut(1)}" if event.truncated else "")
            case ModelCalled() if event.error is not None:
                error = _first_line(event.error)
                return f"  error    {event.task_id:<16} {event.model:<12} {error}"
            case ModelCalled() if event.truncated:
                return f"  truncated {event.task_id:<15} {event.model:<12} {_cut(1)}"
            case ModelCalled():
                return None  # the node's `done` line says it
            case NodeFinished():
                node = track.node(event.task_id)
                mark = "done  " if event.error is None else "FAILED"
                line = (
                    f"  {mark}   {event.task_id:<16} {event.model or '-':<12} "
                    f"{event.seconds:6.2f}s {node.tokens:>8,} tok  ${event.cost_usd:.6f}"
                )
                if node.truncated:
                    line += f"  truncated: {_cut(node.truncated)}"
                return line + (f"  {_first_line(event.error)}" if event.error else "")
            case RunFinished():
                return (
                    f"run {event.status} in {event.seconds:.2f}s: {track.done_count}/"
                    f"{track.total} nodes, {track.tokens:,} tokens, ${event.cost_usd:.6f}"
                )
            case BudgetStopped():
                return f"budget stop: {event.limit} reached at ${event.cost_usd:.6f}"
            case _:
                return _generic_line(event)


_LABELS = {
    "retry_scheduled": "retry",
    "fallback_used": "fallback",
    "escalated": "escalate",
    "check_failed": "check",
    "hedge_started": "hedge",
    "hedge_won": "hedged",
    "call_timed_out": "timeout",
    "breaker_changed": "breaker",
    "rate_limited": "429",
    "concurrency_restored": "restored",
}
"""Short verbs for the decisions the view shows in a generic way; other kinds show as is."""


def _cut(answers: int) -> str:
    """What `answers` truncated answers mean, in a few words."""
    what = "an answer" if answers == 1 else f"{answers} answers"
    return f"{what} cut at the token limit (finish_reason=length)"


def _describe(event: Event, limit: int = 80) -> str:
    """The event's own fields, `name=value`, for a one-line summary."""
    fields = event.model_dump(exclude={"run_id", "at", "kind", "task_id"})
    return " ".join(f"{k}={_first_line(str(v), limit)}" for k, v in fields.items())


def _generic_line(event: Event) -> str:
    """One line for events the view has no special wording for (retries, fallbacks...)."""
    task_id: object = getattr(event, "task_id", "")
    label = _LABELS.get(event.kind, event.kind)
    return f"  {label:<8} {task_id!s:<16} {_describe(event)}".rstrip()


def _status_style(status: str) -> str:
    if status == "succeeded":
        return "bold green"
    if status in ("failed", "budget_exceeded", "stopped"):
        return "bold red"
    return "bold cyan"
