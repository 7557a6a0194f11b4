"""The `orchestra` command: run or plan a task, list models, report on a run.

With an `orchestra.toml` (or `--config`) it uses the models it configures; with none it runs on
the built-in simulated constellation, offline, and says so on screen. `run` shows the live view
(`orchestra.observe.live`): redrawn in place on a terminal, plain lines when stdout is not a
terminal; `--json` prints the run's events as JSON lines instead. `run --report FILE` writes
the HTML report; `run --events FILE` saves the events, from which `report` rebuilds it.
`runs` and `resume` read the run journal (`orchestra.journal.commands`); SIGINT or SIGTERM
stops a run gracefully and prints how to resume it.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from orchestra._cli_parts import build_orchestra, usage_table
from orchestra.config import CONFIG_FILE
from orchestra.errors import BudgetExceeded, NodeFailed, OrchestraError
from orchestra.events import Event, EventSink
from orchestra.journal.commands import RunInterrupted, add_commands, stop_on_signal
from orchestra.observe.jsonl import JsonLines, read_events
from orchestra.observe.live import LiveView
from orchestra.plan import Plan

__all__ = ["main"]


def _fan_out(sinks: Sequence[EventSink]) -> EventSink:
    """One sink that hands each event to every sink, in order."""

    def send(event: Event) -> None:
        for sink in sinks:
            sink(event)

    return send


def _plan_tree(plan: Plan) -> Tree:
    tree = Tree("plan")
    for task in plan.tasks:
        after = f" (after {', '.join(task.after)})" if task.after else ""
        tree.add(
            f"[bold]{task.id}[/] [dim]{task.agent}[/]{after}: {task.prompt.splitlines()[0][:70]}"
        )
    return tree


def mermaid(plan: Plan) -> str:
    """The plan as a Mermaid flowchart."""
    lines = ["flowchart TD"]
    for task in plan.tasks:
        lines.append(f'    {task.id}["{task.id}<br/>{task.agent}"]')
    for task in plan.tasks:
        lines.extend(f"    {dep} --> {task.id}" for dep in task.after)
    return "\n".join(lines)


def _run(args: argparse.Namespace, console: Console) -> int:
    events: list[Event] = []
    with ExitStack() as stack:
        view = None if args.json else stack.enter_context(LiveView(console))
        sinks: list[EventSink] = []
        sinks.append(JsonLines(console.file) if view is None else view)
        if args.events:
            log = stack.enter_context(Path(args.events).open("w", encoding="utf-8"))
            sinks.append(JsonLines(log))
        if args.report:
            sinks.append(events.append)
        orch = build_orchestra(args, console, _fan_out(sinks))
        if view is not None:
            view.budget = orch.budget
        status = 0
        run_id = uuid.uuid4().hex[:12]
        try:
            result = stop_on_signal(orch, lambda: orch.run(args.task, run_id=run_id), run_id=run_id)
        except (NodeFailed, BudgetExceeded) as exc:
            result, status = exc.result, 1
            if view is not None:
                view.close()
            console.print(f"[red]{exc}[/]", highlight=False)
    if args.report:
        path = result.report(args.report, events=events)
        if not args.json:
            console.print(f"report: {path}", highlight=False, markup=False)
    if not args.json:
        console.print(usage_table(result))
        if status == 0:
            console.rule("answer")
            console.print(str(result.output), highlight=False, markup=False)
    return status


def _report(args: argparse.Namespace, console: Console) -> int:
    source = Path(args.source)
    if source.is_file():
        try:
            events = read_events(source)
        except ValueError as exc:
            raise OrchestraError(f"{source}: {exc}") from None
    else:
        from orchestra.journal.store import Journal, default_journal_path

        path = Path(args.journal) if args.journal else default_journal_path()
        if path is None:
            raise OrchestraError(
                f"{args.source!r} is no event log, and the journal is off; pass --journal PATH"
            )
        events = Journal(path).events(args.source)
    if not events:
        raise OrchestraError(f"{source} holds no events")
    from orchestra.observe.report import write_report

    path = write_report(args.output, events=events)
    console.print(f"report: {path} ({len(events)} events)", highlight=False, markup=False)
    return 0


def _plan(args: argparse.Namespace, console: Console) -> int:
    orch = build_orchestra(args, console, None)
    plan = orch.plan_sync(args.task)
    if args.mermaid:
        console.print(mermaid(plan), highlight=False, markup=False)
    elif args.json:
        console.print_json(plan.model_dump_json())
    else:
        console.print(_plan_tree(plan))
    return 0


def _models(args: argparse.Namespace, console: Console) -> int:
    orch = build_orchestra(args, console, None)
    table = Table(title="models")
    for column in ("name", "model", "quality", "$/1M in", "$/1M out", "ttft s", "decode tok/s"):
        table.add_column(column)
    for spec in orch.models:
        table.add_row(
            spec.name,
            spec.model,
            f"{spec.quality:.2f}",
            f"{spec.input_cost:g}",
            f"{spec.output_cost:g}",
            f"{spec.ttft:g}",
            f"{spec.decode_tps:g}",
        )
    console.print(table)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestra", description="Run a task on a constellation of models."
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help=f"TOML config (default: ./{CONFIG_FILE} if present)")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument(
        "--time-scale",
        type=float,
        default=0.3,
        help="simulated constellation only: multiply simulated latencies (default 0.3)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", parents=[common], help="plan a task with the boss and run it")
    run.add_argument("task")
    run.add_argument("--report", metavar="FILE", help="write the run's HTML report to FILE")
    run.add_argument("--events", metavar="FILE", help="save the run's events as JSON lines")
    run.set_defaults(handler=_run)
    plan = commands.add_parser("plan", parents=[common], help="show the boss's plan, run nothing")
    plan.add_argument("task")
    plan.add_argument("--mermaid", action="store_true", help="print a Mermaid flowchart")
    plan.set_defaults(handler=_plan)
    models = commands.add_parser("models", parents=[common], help="list the constellation")
    models.set_defaults(handler=_models)
    report = commands.add_parser(
        "report", help="write the HTML report of a recorded run (or of saved events)"
    )
    report.add_argument(
        "source", help="a run id from the journal, or an event log from `run --events FILE`"
    )
    report.add_argument("--journal", help="the journal to read run ids from (default: ours)")
    report.add_argument(
        "-o", "--output", default="report.html", help="where to write it (default report.html)"
    )
    report.set_defaults(handler=_report)
    add_commands(commands, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `orchestra` command; returns the exit status."""
    args = _parser().parse_args(argv)
    # Not a terminal (CI logs, pipes): plain text, wide enough for the tables.
    console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 120)
    try:
        return int(args.handler(args, console))
    except RunInterrupted as exc:
        console.print(f"[yellow]{exc}[/]", highlight=False)
        return exc.exit_status
    except OrchestraError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
