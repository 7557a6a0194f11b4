"""What the `orchestra` commands share: building the Orchestra they run, and the usage table.

`orchestra.cli` (run, plan, models) and `orchestra.journal.commands` (runs, resume) both build
their Orchestra the same way — from `orchestra.toml` or `--config`, else the simulated
constellation, said on screen — and end with the same table of usage per model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

import orchestra.simulated as simulated
from orchestra.config import CONFIG_FILE, load_orchestra
from orchestra.events import EventSink
from orchestra.orchestra import Orchestra
from orchestra.results import RunResult

SIMULATED_NOTICE = (
    "Running on the simulated constellation: offline, no API keys, latencies and prices of real "
    f"model classes. Add an {CONFIG_FILE} to use real models."
)


def build_orchestra(
    args: argparse.Namespace, console: Console, printer: EventSink | None
) -> Orchestra:
    """The configured Orchestra (`--config` or ./orchestra.toml), else the simulated one."""
    config = Path(args.config) if args.config else Path(CONFIG_FILE)
    if args.config or config.exists():
        return load_orchestra(config, on_event=printer)
    if not args.json:
        console.print(f"[bold]{SIMULATED_NOTICE}[/]", highlight=False)
    return simulated.orchestra(time_scale=args.time_scale, on_event=printer)


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
