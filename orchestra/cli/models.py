"""`orchestra models`: the constellation the other commands would run on."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from orchestra.cli.common import Commands, constellation

__all__ = ["register"]


def register(commands: Commands, common: argparse.ArgumentParser) -> None:
    """Add `models` to the `orchestra` command."""
    models = commands.add_parser("models", parents=[common], help="list the constellation")
    models.set_defaults(handler=_models)


def _models(args: argparse.Namespace, console: Console) -> int:
    models = constellation(args, console)
    table = Table(title="models")
    for column in ("name", "model", "quality", "$/1M in", "$/1M out", "ttft s", "decode tok/s"):
        table.add_column(column)
    for spec in models:
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
