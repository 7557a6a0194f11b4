"""The `orchestra` parser and entry point: each command module registers its subcommand.

With an `orchestra.toml` (or `--config`) the commands use the models it configures; with none
they run on the built-in simulated constellation, offline, and say so on screen.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rich.console import Console

import orchestra
from orchestra.cli import journal, models, report, run
from orchestra.cli.signals import RunInterrupted
from orchestra.config import CONFIG_FILE
from orchestra.errors import OrchestraError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestra", description="Run a task on a constellation of models."
    )
    parser.add_argument(
        "--version", action="version", version=f"orchestra-dag {orchestra.__version__}"
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
    for command in (run, models, report, journal):
        command.register(commands, common)
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
