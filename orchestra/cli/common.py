"""What the `orchestra` commands share: building the Orchestra they run, the exit statuses,
the options of a run, plan files, and printing user text that is never read as markup.

Every command that runs models builds its Orchestra the same way — from `orchestra.toml` or
`--config`, else the simulated constellation, said on screen — and ends with the same table of
usage per model. `add_run_options` and `read_plan` are what a command running plans needs
(`run`, and `map`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from rich.console import Console
from rich.table import Table
from rich.text import Text

import orchestra.simulated as simulated
from orchestra.config import (
    CONFIG_FILE,
    ROUTERS,
    Config,
    budget_from,
    config_path,
    read_config,
    router_from,
)
from orchestra.errors import ConfigError, PlanError
from orchestra.events import EventSink
from orchestra.models.budget import Budget
from orchestra.models.constellation import Constellation, read_toml
from orchestra.orchestra import Orchestra
from orchestra.plan import Plan
from orchestra.results import RunResult

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"  # pyright: ignore[reportPrivateUsage] - argparse's own type
"""The `orchestra` parser's subcommands, on which each command module registers itself."""

EXIT_OK = 0
"""The command did what it was asked."""
EXIT_FAILED = 1
"""A run (or the boss's planning) failed, or a budget stopped it; what finished is printed and
journaled."""
EXIT_USAGE = 2
"""Nothing ran: bad arguments, configuration, plan file or run id."""
# A signal N ends a run with 128 + N (130 for Ctrl-C, 143 for SIGTERM): `RunInterrupted`.

SIMULATED_NOTICE = (
    "Running on the simulated constellation: offline, no API keys, latencies and prices of real "
    f"model classes. Add an {CONFIG_FILE} to use real models."
)


@dataclass(frozen=True)
class Terminal:
    """Where a command prints: results on `out`, errors and stops on `err` (so `--json`
    output stays clean)."""

    out: Console
    err: Console


def plain(value: object) -> Text:
    """`value` as text shown exactly as it is: never rich markup, never an emoji code.

    Example:
        >>> plain("[bold]:memo:[/]").plain
        '[bold]:memo:[/]'
    """
    return Text(str(value))


def say(console: Console, message: object, style: str = "") -> None:
    """Print `message` verbatim (user strings may hold `[brackets]` or `:codes:`)."""
    console.print(plain(message), style=style, highlight=False)


def configured(args: argparse.Namespace) -> Config | None:
    """The `--config` file, else ./orchestra.toml, read and checked; None if there is neither."""
    path = config_path(args.config)
    return read_config(path) if path is not None else None


def _say_simulated(args: argparse.Namespace, term: Terminal) -> None:
    if not args.json:
        say(term.out, SIMULATED_NOTICE, "bold")


def build_orchestra(
    args: argparse.Namespace, term: Terminal, printer: EventSink | None
) -> Orchestra:
    """The configured Orchestra (`--config` or ./orchestra.toml), else the simulated one, with
    the run options given (`--budget-usd`, `--max-seconds`, `--router`) over the file's."""
    config = configured(args)
    overrides = _budget_overrides(args)
    router = getattr(args, "router", None)
    if config is not None:
        budget = _budget(config.budget, overrides) if overrides else None
        return Orchestra.from_config(config, on_event=printer, budget=budget, router=router)
    _say_simulated(args, term)
    return simulated.orchestra(
        time_scale=args.time_scale,
        on_event=printer,
        budget=_budget(Budget(), overrides) if overrides else None,
        router=router_from(router, simulated.PROFILES, source="--router") if router else None,
    )


def constellation(args: argparse.Namespace, term: Terminal) -> Constellation:
    """The configured models, else the simulated ones; no Orchestra is built (so litellm's
    import is not started by a command that calls no model)."""
    config = configured(args)
    if config is not None:
        return config.models
    _say_simulated(args, term)
    return simulated.constellation(time_scale=args.time_scale)


# -- the options of a run ---------------------------------------------------------------------


def _input(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return name.strip(), value


def _router(text: str) -> dict[str, Any]:
    policy, _, value = text.partition(":")
    settings = ROUTERS.get(policy)
    if settings is None:
        raise argparse.ArgumentTypeError(
            f"unknown policy {policy!r}; use one of {', '.join(ROUTERS)}"
        )
    if not value:
        return {"policy": policy}
    setting = settings[0]
    if setting != "min_quality":
        return {"policy": policy, setting: value}
    try:
        return {"policy": policy, setting: float(value)}
    except ValueError:
        raise argparse.ArgumentTypeError(f"{policy}:{value}: the quality bar is a number") from None


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """`--input KEY=VALUE` (repeatable), `--budget-usd`, `--max-seconds` and `--router`."""
    parser.add_argument(
        "--input",
        dest="inputs",
        metavar="KEY=VALUE",
        type=_input,
        action="append",
        default=[],
        help="a run input, for {KEY} in prompts (repeatable)",
    )
    parser.add_argument(
        "--budget-usd", type=float, metavar="USD", help="stop before spending more than this"
    )
    parser.add_argument(
        "--max-seconds", type=float, metavar="S", help="stop the run after this many seconds"
    )
    parser.add_argument(
        "--router",
        type=_router,
        metavar="POLICY[:ARG]",
        help="route unpinned agents: cheapest[:MIN_QUALITY], slack-aware[:MIN_QUALITY], "
        "fixed:MODEL, llm:MODEL, cascades:FILE_OR_PRESET (default: the config's [router])",
    )


def inputs_of(args: argparse.Namespace) -> dict[str, str]:
    """The `--input` pairs; a key given twice is an error."""
    inputs: dict[str, str] = {}
    for name, value in args.inputs:
        if name in inputs:
            raise ConfigError(f"--input {name} is given twice")
        inputs[name] = value
    return inputs


def _budget_overrides(args: argparse.Namespace) -> dict[str, float]:
    flags = {"max_usd": "budget_usd", "max_seconds": "max_seconds"}
    found = {field: getattr(args, flag, None) for field, flag in flags.items()}
    return {field: value for field, value in found.items() if value is not None}


def _budget(base: Budget, overrides: Mapping[str, float]) -> Budget:
    return budget_from(
        {**base.model_dump(), **overrides}, "the budget (--budget-usd, --max-seconds)"
    )


def read_plan(path: str | Path) -> Plan:
    """A hand-written plan from a JSON file (`oc.Plan` as JSON) or a TOML file (`output = ...`
    and one `[[tasks]]` table per task).

    Raises:
        ConfigError: the file is missing or is neither JSON nor TOML.
        PlanError: the plan is invalid; the message names the file and the task.
    """
    file = Path(path)
    data: Any
    if file.suffix == ".toml":
        data = read_toml(file)
    else:
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"plan file {str(file)!r} does not exist") from None
        except ValueError as exc:
            raise ConfigError(f"plan file {file} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PlanError(f"plan file {file}: expected an object with a 'tasks' list")
    try:
        return Plan.parse(data)  # pyright: ignore[reportUnknownArgumentType] - JSON input
    except PlanError as exc:
        raise PlanError(f"plan file {file}: {exc}", task_id=exc.task_id) from exc


# -- shared output ----------------------------------------------------------------------------


def usage_table(result: RunResult) -> Table:
    """Calls, tokens and cost per model, and the total."""
    title = plain(f"run {result.run_id}: {result.status} in {result.seconds:.2f}s")
    table = Table(title=title)
    for column in ("model", "calls", "input tokens", "output tokens", "cost USD"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, usage in sorted(result.usage.by_model.items()):
        table.add_row(
            plain(name),
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


def print_json(console: Console, data: object) -> None:
    """One JSON document on one line, exactly as `json.dumps` writes it."""
    console.print(json.dumps(data), markup=False, highlight=False, soft_wrap=True, emoji=False)
