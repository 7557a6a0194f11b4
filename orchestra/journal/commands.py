"""The journal's commands — `orchestra runs`, `orchestra runs show RUN_ID`, `orchestra resume
RUN_ID` — and the graceful stop of a run on SIGINT or SIGTERM.

`orchestra.cli` registers the commands (`add_commands`) and runs `orchestra run` through
`stop_on_signal`: the first SIGINT or SIGTERM stops dispatching and cancels the calls in
flight, which the journal records as cancelled; the command prints how to resume and exits
with 128 + the signal's number. A second signal during that stop ends the process at once.
"""

from __future__ import annotations

import argparse
import signal
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import anyio
from rich.console import Console
from rich.table import Table

from orchestra._cli_parts import build_orchestra, usage_table
from orchestra._sync import run_sync
from orchestra.errors import BudgetExceeded, JournalError, NodeFailed, OrchestraError
from orchestra.events import Event, EventSink, NodeFinished
from orchestra.journal.store import JOURNAL_ENV, Journal, default_journal_path
from orchestra.results import RunResult

if TYPE_CHECKING:
    from orchestra.orchestra import Orchestra

__all__ = ["RunInterrupted", "add_commands", "stop_on_signal"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunInterrupted(OrchestraError):
    """A run was stopped by a signal; its journal holds everything that finished.

    `run_id` names the run, `signal` the signal's number; `exit_status` is the conventional
    128 + that number.
    """

    def __init__(self, message: str, *, run_id: str, signum: int) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.signal = signum
        self.exit_status = 128 + signum


async def _until_signal(start: Callable[[], Awaitable[RunResult]]) -> RunResult | int:
    """The run's result, or the number of the signal that stopped it."""
    outcome: list[RunResult | int] = []
    error: list[Exception] = []
    async with anyio.create_task_group() as group:

        async def watch(*, task_status: anyio.abc.TaskStatus[None]) -> None:
            try:
                with anyio.open_signal_receiver(*_SIGNALS) as signals:
                    task_status.started()
                    async for signum in signals:
                        outcome.append(int(signum))
                        group.cancel_scope.cancel()
                        return
            except NotImplementedError:  # Windows: Ctrl-C stays a KeyboardInterrupt
                task_status.started()

        await group.start(watch)
        try:
            outcome.append(await start())
        except Exception as exc:  # raised below, never inside an ExceptionGroup
            error.append(exc)
        finally:
            group.cancel_scope.cancel()
    if outcome:
        return outcome[0]
    raise error[0]


def stop_on_signal(
    orch: Orchestra, start: Callable[[], Awaitable[RunResult]], *, run_id: str
) -> RunResult:
    """Run `start()` (a run of `orch` with id `run_id`) until it ends or a signal stops it.

    Raises:
        RunInterrupted: SIGINT or SIGTERM stopped the run; the message says how to resume.
        Whatever the run raises.
    """
    outcome = run_sync(lambda: _until_signal(start), name="run")
    if isinstance(outcome, RunResult):
        return outcome
    name = signal.Signals(outcome).name
    if orch.journal is None:
        message = f"run {run_id} was stopped by {name}; the journal is off, so it cannot resume"
        raise RunInterrupted(message, run_id=run_id, signum=outcome)
    summary = ""
    try:
        record = orch.journal.run(run_id)
        nodes = orch.journal.nodes(run_id)
        cancelled = sum(n.status == "cancelled" and n.session == record.sessions for n in nodes)
        summary = (
            f"; {cancelled} call(s) in flight were cancelled and journaled, "
            f"{record.nodes_done} of {record.nodes_total} nodes are recorded"
        )
    except JournalError:
        pass  # stopped before the run was recorded: the plain message will do
    message = (
        f"run {run_id} was stopped by {name}{summary}.\n"
        f"resume it with: orchestra resume {run_id}{_journal_flag(orch.journal)}"
    )
    raise RunInterrupted(message, run_id=run_id, signum=outcome)


def _journal_flag(journal: Journal) -> str:
    """The `--journal` option a resume command needs (none for the default journal)."""
    default = default_journal_path()
    return "" if default is not None and default == journal.path else f" --journal {journal.path}"


# -- the commands --------------------------------------------------------------------------


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],  # pyright: ignore[reportPrivateUsage] - argparse's own type
    common: argparse.ArgumentParser,
) -> None:
    """Register `runs` (and `runs show`) and `resume` on the `orchestra` command."""
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument(
        "--journal",
        metavar="PATH",
        help=f"the run journal (default: ${JOURNAL_ENV}, else ./.orchestra/runs.sqlite)",
    )
    runs = commands.add_parser(
        "runs", parents=[where], help="list recorded runs (newest first), or show one"
    )
    runs.add_argument("--limit", type=int, default=20, help="at most this many runs (default 20)")
    runs.add_argument("--json", action="store_true", help="machine-readable output")
    runs.set_defaults(handler=_runs, action=None)
    actions = runs.add_subparsers(dest="action")
    show = actions.add_parser("show", parents=[where], help="one run: its nodes and attempts")
    show.add_argument("run_id")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(handler=_runs)
    resume = commands.add_parser(
        "resume",
        parents=[common, where],
        help="continue a stopped, crashed or failed run; what finished does not run again",
    )
    resume.add_argument("run_id")
    resume.set_defaults(handler=_resume)


def _journal(args: argparse.Namespace) -> Journal:
    if args.journal:
        return Journal(args.journal)
    path = default_journal_path()
    if path is None:
        raise JournalError(f"the journal is off (${JOURNAL_ENV}); pass --journal PATH")
    return Journal(path)


def _age(when: datetime) -> str:
    seconds = max(0.0, (datetime.now(timezone.utc) - when).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{seconds:.0f}s ago"


def _runs(args: argparse.Namespace, console: Console) -> int:
    journal = _journal(args)
    if args.action == "show":
        return _show(journal, args.run_id, console, as_json=args.json)
    records = journal.runs(limit=args.limit)
    if args.json:
        for record in records:
            console.print(record.model_dump_json(), highlight=False, markup=False, soft_wrap=True)
        return 0
    if not records:
        console.print(f"no runs recorded in {journal.path}", highlight=False, markup=False)
        return 0
    table = Table(title=f"runs in {journal.path}")
    for column in ("run", "status", "nodes", "cost $", "age", "task"):
        table.add_column(column, justify="right" if column in ("nodes", "cost $") else "left")
    for r in records:
        task = (r.task or "(hand-written plan)").splitlines()[0][:50]
        nodes = f"{r.nodes_done}/{r.nodes_total}"
        age = _age(r.started)
        table.add_row(r.run_id, r.status, nodes, f"{r.cost_usd:.6f}", age, task)
    console.print(table)
    return 0


def _show(journal: Journal, run_id: str, console: Console, *, as_json: bool) -> int:
    record = journal.run(run_id)
    nodes = journal.nodes(run_id)
    if as_json:
        data: dict[str, Any] = record.model_dump(mode="json")
        data["nodes"] = [n.model_dump(mode="json") for n in nodes]
        console.print_json(data=data)
        return 0
    console.print(
        f"run {record.run_id}: {record.status}, {record.nodes_done}/{record.nodes_total} nodes, "
        f"${record.cost_usd:.6f}, started {record.started:%Y-%m-%d %H:%M:%S} UTC, "
        f"{record.sessions} session(s)",
        highlight=False,
        markup=False,
    )
    if record.task:
        console.print(f"task: {record.task}", highlight=False, markup=False)
    table = Table(title="node dispatches")
    for column in ("node", "attempt", "status", "model", "cost $", "idempotency key", "error"):
        table.add_column(column)
    for n in nodes:
        error = (n.error or "").splitlines()[0][:60] if n.error else ""
        table.add_row(
            n.task_id,
            str(n.attempt),
            n.status,
            n.model or "",
            f"{n.cost_usd:.6f}",
            n.idempotency_key,
            error,
        )
    console.print(table)
    if record.resumable:
        flag = "" if journal.path == default_journal_path() else f" --journal {journal.path}"
        console.print(f"resume with: orchestra resume {run_id}{flag}", markup=False)
    return 0


def _progress(console: Console) -> EventSink:
    """One line per finished node."""

    def show(event: Event) -> None:
        if isinstance(event, NodeFinished):
            mark = "ok" if event.error is None else f"FAILED: {event.error.splitlines()[0][:80]}"
            console.print(
                f"  {event.task_id} ({event.model or '-'}, ${event.cost_usd:.6f}): {mark}",
                highlight=False,
                markup=False,
            )

    return show


def _resume(args: argparse.Namespace, console: Console) -> int:
    from orchestra.observe.jsonl import JsonLines

    printer = JsonLines(console.file) if args.json else _progress(console)
    orch = build_orchestra(args, console, printer)
    orch.journal = _journal(args) if args.journal else orch.journal
    if orch.journal is None:
        raise JournalError(f"the journal is off (${JOURNAL_ENV}); pass --journal PATH")
    record = orch.journal.run(args.run_id)
    if not args.json:
        console.print(
            f"resuming run {record.run_id} ({record.status}): {record.nodes_done} of "
            f"{record.nodes_total} nodes recorded; only the rest runs",
            highlight=False,
            markup=False,
        )
    status = 0
    try:
        result = stop_on_signal(orch, lambda: orch.resume(args.run_id), run_id=args.run_id)
    except (NodeFailed, BudgetExceeded) as exc:
        result, status = exc.result, 1
        console.print(f"[red]{exc}[/]", highlight=False)
    if not args.json:
        console.print(usage_table(result))
        if status == 0:
            console.rule("answer")
            console.print(str(result.output), highlight=False, markup=False)
    return status
