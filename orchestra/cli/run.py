"""`orchestra run TASK` (the boss plans, the constellation runs, the live view shows it), `orchestra
run --plan FILE` (a hand-written plan, JSON or TOML) and `orchestra plan TASK` (the boss's plan
only, as a tree, JSON or a Mermaid flowchart).

`run` shows the live view (`orchestra.observe.live`): redrawn in place on a terminal, plain
lines when stdout is not a terminal; `--json` prints the run's events as JSON lines instead.
`--report FILE` writes the HTML report (also when the run fails, planning included); `--events
FILE` saves the events, from which `orchestra report` rebuilds it. SIGINT or SIGTERM stops the
run gracefully (`orchestra.cli.signals`).
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import ExitStack
from pathlib import Path

from rich.text import Text
from rich.tree import Tree

from orchestra.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    Commands,
    Terminal,
    add_run_options,
    build_orchestra,
    inputs_of,
    print_json,
    read_plan,
    say,
    usage_table,
)
from orchestra.cli.signals import RunInterrupted, stop_on_signal
from orchestra.errors import BudgetExceeded, ConfigError, NodeFailed, OrchestraError
from orchestra.events import Event, EventSink
from orchestra.observe.jsonl import JsonLines
from orchestra.observe.live import LiveView
from orchestra.orchestra import Orchestra
from orchestra.plan import Plan
from orchestra.results import RunResult
from orchestra.validation import validate_plan

__all__ = ["mermaid", "register"]


def register(commands: Commands, common: argparse.ArgumentParser) -> None:
    """Add `run` and `plan` to the `orchestra` command."""
    run = commands.add_parser(
        "run", parents=[common], help="plan a task with the boss and run it, or run a plan file"
    )
    run.add_argument("task", nargs="?", help="what to do, in words (the boss plans it)")
    run.add_argument(
        "--plan", metavar="FILE", help="run this hand-written plan (JSON or TOML) instead"
    )
    add_run_options(run)
    run.add_argument("--report", metavar="FILE", help="write the run's HTML report to FILE")
    run.add_argument("--events", metavar="FILE", help="save the run's events as JSON lines")
    run.set_defaults(handler=_run)
    plan = commands.add_parser("plan", parents=[common], help="show the boss's plan, run nothing")
    plan.add_argument("task")
    plan.add_argument(
        "--input",
        dest="input_names",
        metavar="KEY",
        action="append",
        default=[],
        help="a run input the plan may use as {KEY} (repeatable)",
    )
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
        label = Text()  # appended text is never read as markup: ids and prompts are the user's
        label.append(task.id, style="bold")
        label.append(f" {task.agent}", style="dim")
        if task.after:
            label.append(f" (after {', '.join(task.after)})")
        label.append(f": {task.prompt.splitlines()[0][:70]}")
        tree.add(label)
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


def _plan_file(args: argparse.Namespace) -> Plan | None:
    """The plan file to run (None: the boss plans TASK), checked before anything is built."""
    if args.plan is not None and args.task is not None:
        raise ConfigError("give a TASK or --plan FILE, not both")
    if args.plan is not None:
        return read_plan(args.plan)
    if args.task is None:
        raise ConfigError("say what to do: orchestra run TASK, or orchestra run --plan FILE")
    if not args.task.strip():
        raise ConfigError("the task is empty; say what the boss should plan")
    return None


def _starter(
    orch: Orchestra, task: str | None, plan: Plan | None, inputs: dict[str, str], run_id: str
) -> Callable[[], Awaitable[RunResult]]:
    """The run to start, checked against the Orchestra before anything is paid for."""
    if plan is not None:
        validate_plan(
            plan, agents=orch.agents.keys(), models=orch.models.names, inputs=inputs.keys()
        )
        return lambda: orch.execute(plan, inputs=inputs, run_id=run_id)
    if orch.boss is None or task is None:
        raise ConfigError(
            'the configuration names no boss to plan the task: add boss = "NAME" to it, or '
            "run a hand-written plan with --plan FILE"
        )
    return lambda: orch.run(task, inputs=inputs, run_id=run_id)


def _run(args: argparse.Namespace, term: Terminal) -> int:
    inputs, plan = inputs_of(args), _plan_file(args)
    events: list[Event] = []
    result: RunResult | None = None
    failure: OrchestraError | None = None
    with ExitStack() as stack:
        view = None if args.json else stack.enter_context(LiveView(term.out))
        sinks: list[EventSink] = [JsonLines(term.out.file) if view is None else view]
        if args.events:
            log = stack.enter_context(Path(args.events).open("w", encoding="utf-8"))
            sinks.append(JsonLines(log))
        if args.report:
            sinks.append(events.append)
        orch = build_orchestra(args, term, _fan_out(sinks))
        if view is not None:
            view.budget = orch.budget
        run_id = uuid.uuid4().hex[:12]
        start = _starter(orch, args.task, plan, inputs, run_id)
        try:
            result = stop_on_signal(orch, start, run_id=run_id)
        except (NodeFailed, BudgetExceeded) as exc:
            result, failure = exc.result, exc
        except RunInterrupted:
            raise
        except OrchestraError as exc:  # the boss could not plan, or the run could not go on
            failure = exc
        if view is not None:
            view.close()
    if failure is not None and not args.json:
        say(term.err, failure, "red")
    if args.report:
        from orchestra.observe.report import write_report

        path = write_report(args.report, events=events, result=result, inputs=inputs)
        if not args.json:
            say(term.out, f"report: {path}")
    if result is not None and not args.json:
        term.out.print(usage_table(result))
        if failure is None:
            term.out.rule("answer")
            say(term.out, result.output)
    return EXIT_OK if failure is None else EXIT_FAILED


def _plan(args: argparse.Namespace, term: Terminal) -> int:
    if not args.task.strip():
        raise ConfigError("the task is empty; say what the boss should plan")
    orch = build_orchestra(args, term, None)
    try:
        plan = orch.plan_sync(args.task, inputs=dict.fromkeys(args.input_names, ""))
    except (ConfigError, RunInterrupted):
        raise
    except OrchestraError as exc:  # the boss gave no valid plan, or could not be called
        say(term.err, exc, "red")
        return EXIT_FAILED
    if args.mermaid:
        say(term.out, mermaid(plan))
    elif args.json:
        print_json(term.out, plan.model_dump(mode="json"))
    else:
        term.out.print(_plan_tree(plan))
    return EXIT_OK
