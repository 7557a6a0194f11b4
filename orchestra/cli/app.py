"""The `orchestra` parser and entry point: each command module registers its subcommand.

With an `orchestra.toml` (or `--config`) the commands use the models it configures; with none
they run on the built-in simulated constellation, offline, and say so on screen. Exit status:
0 done, 1 a run failed or stopped early (its finished work is kept), 2 nothing ran (bad
arguments, configuration, plan file or run id), 128 + N stopped by signal N.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from typing import TextIO

from rich.console import Console

import orchestra
from orchestra.cli import journal, models, report, run
from orchestra.cli import map as batch
from orchestra.cli.common import EXIT_USAGE, Terminal, say
from orchestra.cli.signals import RunInterrupted
from orchestra.config import CONFIG_FILE
from orchestra.errors import OrchestraError

__all__ = ["main"]

# Each module adds its subcommand(s); a new command is a module with `register` added here.
COMMANDS = (run, batch, models, journal, report)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestra",
        description="Run a task on a constellation of models: a boss plans it as a DAG of "
        "agent calls, the constellation runs them. With no orchestra.toml, on the simulated "
        "constellation (offline, no keys).",
        epilog="exit status: 0 done; 1 a run failed or stopped early (finished work kept); "
        "2 nothing ran (bad arguments, configuration, plan file or run id); 128+N stopped by "
        "signal N (130: Ctrl-C).",
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
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(commands, common)
    return parser


def _console(stream: TextIO) -> Console:
    # Not a terminal (CI logs, pipes): plain text, wide enough for the tables. User strings
    # (tasks, ids, errors) are printed as they are: no emoji codes, no markup.
    width = None if stream.isatty() else 120
    return Console(file=stream, soft_wrap=True, width=width, emoji=False)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `orchestra` command; returns the exit status."""
    args = _parser().parse_args(argv)
    # litellm makes each call's coroutine in a worker thread and awaits it afterwards: a call
    # cancelled in between (Ctrl-C, a deadline) leaves it un-awaited, and Python would warn.
    warnings.filterwarnings(
        "ignore", message="coroutine '.*acompletion' was never awaited", category=RuntimeWarning
    )
    term = Terminal(out=_console(sys.stdout), err=_console(sys.stderr))
    try:
        return int(args.handler(args, term))
    except RunInterrupted as exc:
        say(term.err, exc, "yellow")
        return exc.exit_status
    except OrchestraError as exc:
        say(term.err, f"error: {exc}", "red")
        return EXIT_USAGE
