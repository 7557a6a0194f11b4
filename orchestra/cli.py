"""The `orchestra` command: run or plan a task, list models.

With an `orchestra.toml` (or `--config`) it uses the models it configures; with none it runs on
the built-in simulated constellation, offline, and says so on screen. Output is plain when
stdout is not a terminal; `--json` prints the run's events as JSON lines.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from orchestra.config import CONFIG_FILE, load_orchestra
from orchestra.errors import BudgetExceeded, NodeFailed, OrchestraError
from orchestra.models import simulated
from orchestra.observe.events import EVENTS, Event, NodeFinished, PlanReady
from orchestra.orchestra import Orchestra
from orchestra.plan import Plan
from orchestra.results import RunResult

__all__ = ["main"]

SIMULATED_NOTICE = (
    "Running on the simulated constellation: offline, no API keys, latencies and prices of real "
    f"model classes. Add an {CONFIG_FILE} to use real models."
)


class _Printer:
    """Prints a run's events as they come: one line per finished node, or JSON lines."""

    def __init__(self, console: Console, *, as_json: bool) -> None:
        self.console = console
        self.as_json = as_json

    def __call__(self, event: Event) -> None:
        if self.as_json:
            self.console.print_json(EVENTS.dump_json(event).decode(), indent=None)
        elif isinstance(event, PlanReady):
            self.console.print(f"plan ready: {len(event.task_ids)} tasks")
        elif isinstance(event, NodeFinished):
            mark = "[green]done[/]" if event.error is None else "[red]FAILED[/]"
            self.console.print(
                f"  {mark} {event.task_id:<16} {event.model or '-':<12} "
                f"{event.seconds:6.2f}s  ${event.cost_usd:.6f}"
                + (f"  {event.error}" if event.error else ""),
                highlight=False,
            )


def _orchestra(args: argparse.Namespace, console: Console, printer: _Printer | None) -> Orchestra:
    config = Path(args.config) if args.config else Path(CONFIG_FILE)
    if args.config or config.exists():
        return load_orchestra(config, on_event=printer)
    if not args.json:
        console.print(f"[bold]{SIMULATED_NOTICE}[/]", highlight=False)
    return simulated.orchestra(time_scale=args.time_scale, on_event=printer)


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


def _usage_table(result: RunResult) -> Table:
    table = Table(title=f"run {result.run_id}: {result.status} in {result.seconds:.2f}s")
    for column in ("model", "calls", "input tokens", "output tokens", "cost USD"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, usage in sorted(result.usage.by_model.items()):
        table.add_row(
            name,
            str(usage.calls),
            str(usage.input_tokens),
            str(usage.output_tokens),
            f"{usage.cost_usd:.6f}",
        )
    table.add_row(
        "total",
        str(result.usage.calls),
        str(result.usage.input_tokens),
        str(result.usage.output_tokens),
        f"{result.usage.cost_usd:.6f}",
        style="bold",
    )
    return table


def _run(args: argparse.Namespace, console: Console) -> int:
    printer = _Printer(console, as_json=args.json)
    orch = _orchestra(args, console, printer)
    try:
        result = orch.run_sync(args.task)
    except (NodeFailed, BudgetExceeded) as exc:
        console.print(f"[red]{exc}[/]", highlight=False)
        if not args.json:
            console.print(_usage_table(exc.result))
        return 1
    if not args.json:
        console.print(_usage_table(result))
        console.rule("answer")
        console.print(str(result.output), highlight=False, markup=False)
    return 0


def _plan(args: argparse.Namespace, console: Console) -> int:
    orch = _orchestra(args, console, None)
    plan = orch.plan_sync(args.task)
    if args.mermaid:
        console.print(mermaid(plan), highlight=False, markup=False)
    elif args.json:
        console.print_json(plan.model_dump_json())
    else:
        console.print(_plan_tree(plan))
    return 0


def _models(args: argparse.Namespace, console: Console) -> int:
    orch = _orchestra(args, console, None)
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
    run.set_defaults(handler=_run)
    plan = commands.add_parser("plan", parents=[common], help="show the boss's plan, run nothing")
    plan.add_argument("task")
    plan.add_argument("--mermaid", action="store_true", help="print a Mermaid flowchart")
    plan.set_defaults(handler=_plan)
    models = commands.add_parser("models", parents=[common], help="list the constellation")
    models.set_defaults(handler=_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `orchestra` command; returns the exit status."""
    args = _parser().parse_args(argv)
    # Not a terminal (CI logs, pipes): plain text, wide enough for the tables.
    console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 120)
    try:
        return int(args.handler(args, console))
    except OrchestraError as exc:
        console.print(f"[red]error:[/] {exc}", highlight=False)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
