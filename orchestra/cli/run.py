"""`orchestra run TASK` (the boss plans, the constellation runs, the live view shows it) and
`orchestra plan TASK` (the boss's plan only, as a tree, JSON or a Mermaid flowchart).

`run` shows the live view (`orchestra.observe.live`): redrawn in place on a terminal, plain
lines when stdout is not a terminal; `--json` prints the run's events as JSON lines instead.
`--report FILE` writes the HTML report; `--events FILE` saves the events, from which
`orchestra report` rebuilds it. SIGINT or SIGTERM stops the run gracefully
(`orchestra.cli.signals`).
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from rich.console import Console
from rich.tree import Tree

from orchestra.cli.common import Commands, build_orchestra, usage_table
from orchestra.cli.signals import stop_on_signal
from orchestra.errors import BudgetExceeded, NodeFailed
from orchestra.events import Event, EventSink
from orchestra.observe.jsonl import JsonLines
from orchestra.observe.live import LiveView
from orchestra.plan import Plan

__all__ = ["mermaid", "register"]


def register(commands: Commands, common: argparse.ArgumentParser) -> None:
    """Add `run` and `plan` to the `orchestra` command."""
    run = commands.add_parser("run", parents=[common], help="plan a task with the boss and run it")
    run.add_argument("task")
    run.add_argument("--report", metavar="FILE", help="write the run's HTML report to FILE")
    run.add_argument("--events", metavar="FILE", help="save the run's events as JSON lines")
    run.set_defaults(handler=_run)
    plan = commands.add_parser("plan", parents=[common], help="show the boss's plan, run nothing")
    plan.add_argument("task")
    plan.add_argument("--mermaid", action="store_true", help="print a Mermaid flowchart")
    plan.set_defaults(handler=_plan)


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
    """The plan as a Mermaid flowchart.

    Example:
        >>> from orchestra.plan import Task
        >>> print(mermaid(Plan(tasks=[Task(id="a", agent="w", prompt="x"),
        ...                           Task(id="b", agent="w", prompt="{a}", after=["a"])])))
        flowchart TD
            a["a<br/>w"]
            b["b<br/>w"]
            a --> b
    """
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
