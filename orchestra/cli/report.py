"""`orchestra report RUN_ID|EVENTS.jsonl`: the HTML report of a recorded run, rebuilt from the
journal's events or from an event log saved by `orchestra run --events FILE`."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from orchestra.cli.common import Commands
from orchestra.errors import OrchestraError
from orchestra.observe.jsonl import read_events

__all__ = ["register"]


def register(commands: Commands, common: argparse.ArgumentParser) -> None:
    """Add `report` to the `orchestra` command."""
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
