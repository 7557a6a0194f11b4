"""What the `orchestra` commands share: building the Orchestra they run, and the usage table.

Every command that runs models builds its Orchestra the same way — from `orchestra.toml` or
`--config`, else the simulated constellation, said on screen — and ends with the same table of
usage per model.
"""

from __future__ import annotations

import argparse
from typing import TypeAlias

from rich.console import Console
from rich.table import Table

from orchestra.config import CONFIG_FILE, Config, config_path, read_config
from orchestra.events import EventSink
from orchestra.models import simulated
from orchestra.models.constellation import Constellation
from orchestra.orchestra import Orchestra
from orchestra.results import RunResult

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"  # pyright: ignore[reportPrivateUsage] - argparse's own type
"""The `orchestra` parser's subcommands, on which each command module registers itself."""

SIMULATED_NOTICE = (
    "Running on the simulated constellation: offline, no API keys, latencies and prices of real "
    f"model classes. Add an {CONFIG_FILE} to use real models."
)


def configured(args: argparse.Namespace) -> Config | None:
    """The `--config` file, else ./orchestra.toml, read and checked; None if there is neither."""
    path = config_path(args.config)
    return read_config(path) if path is not None else None


def _say_simulated(args: argparse.Namespace, console: Console) -> None:
    if not args.json:
        console.print(f"[bold]{SIMULATED_NOTICE}[/]", highlight=False)


def build_orchestra(
    args: argparse.Namespace, console: Console, printer: EventSink | None
) -> Orchestra:
    """The configured Orchestra (`--config` or ./orchestra.toml), else the simulated one."""
    config = configured(args)
    if config is not None:
        return config.orchestra(on_event=printer)
    _say_simulated(args, console)
    return simulated.orchestra(time_scale=args.time_scale, on_event=printer)


def constellation(args: argparse.Namespace, console: Console) -> Constellation:
    """The configured models, else the simulated ones; no Orchestra is built (so litellm's
    import is not started by a command that calls no model)."""
    config = configured(args)
    if config is not None:
        return config.models
    _say_simulated(args, console)
    return simulated.constellation(time_scale=args.time_scale)


def usage_table(result: RunResult) -> Table:
    """Calls, tokens and cost per model, and the total."""
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
