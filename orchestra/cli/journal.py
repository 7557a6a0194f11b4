"""`orchestra runs` (list recorded runs), `orchestra runs show RUN_ID` (one run's nodes and
attempts) and `orchestra resume RUN_ID` (continue a stopped, crashed or failed run)."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from orchestra._clock import utc_now
from orchestra.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    Commands,
    Terminal,
    build_orchestra,
    plain,
    print_json,
    say,
    usage_table,
)
from orchestra.cli.signals import RunInterrupted, journal_flag, stop_on_signal
from orchestra.errors import BudgetExceeded, JournalError, NodeFailed, OrchestraError
from orchestra.events import Event, EventSink, NodeFinished
from orchestra.journal.store import JOURNAL_ENV, Journal, default_journal_path
from orchestra.results import RunResult

__all__ = ["register"]


def register(commands: Commands, common: argparse.ArgumentParser) -> None:
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
    seconds = max(0.0, (utc_now() - when).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{seconds:.0f}s ago"


def _runs(args: argparse.Namespace, term: Terminal) -> int:
    journal = _journal(args)
    if args.action == "show":
        return _show(journal, args.run_id, term.out, as_json=args.json)
    records = journal.runs(limit=args.limit)
    if args.json:  # one run per line
        for record in records:
            print_json(term.out, record.model_dump(mode="json"))
        return EXIT_OK
    if not records:
        say(term.out, f"no runs recorded in {journal.path}")
        return EXIT_OK
    table = Table(title=plain(f"runs in {journal.path}"))
    for column in ("run", "status", "nodes", "cost $", "age", "task"):
        table.add_column(column, justify="right" if column in ("nodes", "cost $") else "left")
    for r in records:
        task = (r.task or "(hand-written plan)").splitlines()[0][:50]
        nodes = f"{r.nodes_done}/{r.nodes_total}"
        age = _age(r.started)
        table.add_row(plain(r.run_id), r.status, nodes, f"{r.cost_usd:.6f}", age, plain(task))
    term.out.print(table)
    return EXIT_OK


def _show(journal: Journal, run_id: str, console: Console, *, as_json: bool) -> int:
    record = journal.run(run_id)
    nodes = journal.nodes(run_id)
    if as_json:
        data: dict[str, Any] = record.model_dump(mode="json")
        data["nodes"] = [n.model_dump(mode="json") for n in nodes]
        print_json(console, data)
        return EXIT_OK
    say(
        console,
        f"run {record.run_id}: {record.status}, {record.nodes_done}/{record.nodes_total} nodes, "
        f"${record.cost_usd:.6f}, started {record.started:%Y-%m-%d %H:%M:%S} UTC, "
        f"{record.sessions} session(s)",
    )
    if record.task:
        say(console, f"task: {record.task}")
    table = Table(title="node dispatches")
    for column in ("node", "attempt", "status", "model", "cost $", "idempotency key", "error"):
        table.add_column(column)
    for n in nodes:
        error = (n.error or "").splitlines()[0][:60] if n.error else ""
        table.add_row(
            plain(n.task_id),
            str(n.attempt),
            n.status,
            plain(n.model or ""),
            f"{n.cost_usd:.6f}",
            plain(n.idempotency_key),
            plain(error),
        )
    console.print(table)
    if record.resumable:
        say(console, f"resume with: orchestra resume {run_id}{journal_flag(journal)}")
    return EXIT_OK


def _progress(console: Console) -> EventSink:
    """One line per finished node."""

    def show(event: Event) -> None:
        if isinstance(event, NodeFinished):
            mark = "ok" if event.error is None else f"FAILED: {event.error.splitlines()[0][:80]}"
            say(console, f"  {event.task_id} ({event.model or '-'}, ${event.cost_usd:.6f}): {mark}")

    return show


def _resume(args: argparse.Namespace, term: Terminal) -> int:
    from orchestra.observe.jsonl import JsonLines

    printer = JsonLines(term.out.file) if args.json else _progress(term.out)
    orch = build_orchestra(args, term, printer)
    orch.journal = _journal(args) if args.journal else orch.journal
    if orch.journal is None:
        raise JournalError(f"the journal is off (${JOURNAL_ENV}); pass --journal PATH")
    record = orch.journal.run(args.run_id)
    if not args.json:
        say(
            term.out,
            f"resuming run {record.run_id} ({record.status}): {record.nodes_done} of "
            f"{record.nodes_total} nodes recorded; only the rest runs",
        )
    result: RunResult | None = None
    failure: OrchestraError | None = None
    try:
        result = stop_on_signal(orch, lambda: orch.resume(args.run_id), run_id=args.run_id)
    except (NodeFailed, BudgetExceeded) as exc:
        result, failure = exc.result, exc
    except RunInterrupted:
        raise
    except OrchestraError as exc:  # the rest of the run could not go on
        failure = exc
    if failure is not None and not args.json:
        say(term.err, failure, "red")
    if result is not None and not args.json:
        term.out.print(usage_table(result))
        if failure is None:
            term.out.rule("answer")
            say(term.out, result.output)
    return EXIT_OK if failure is None else EXIT_FAILED
