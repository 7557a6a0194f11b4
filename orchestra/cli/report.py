"""`orchestra report RUN_ID|EVENTS.jsonl`: the HTML report of a recorded run, rebuilt from the
journal's events or from an event log saved by `orchestra run --events FILE`."""

from __future__ import annotations

import argparse
from contextlib import closing
from pathlib import Path

from orchestra.cli.common import EXIT_OK, Commands, Terminal, say
from orchestra.errors import JournalError, OrchestraError
from orchestra.execution.driver import final_output
from orchestra.journal.resume import load_run
from orchestra.journal.store import JOURNAL_ENV, Journal, default_journal_path
from orchestra.observe.jsonl import read_events
from orchestra.results import RunResult

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


def _recorded(journal: Journal, run_id: str) -> tuple[RunResult | None, dict[str, str]]:
    """What the journal holds of a finished run beyond its events: its node results (outputs
    and attempts), its answer and its inputs. (None, {}) for a run that is not finished."""
    record = journal.run(run_id)
    if record.status not in ("succeeded", "failed", "budget_exceeded"):
        return None, {}
    with closing(journal.connect()) as conn:
        stored = load_run(conn, run_id)
    if stored is None or stored.plan is None:
        return None, {}
    answered = all(task in stored.results for task in stored.plan.answer_ids())
    succeeded = record.status == "succeeded" and answered
    result = RunResult(
        run_id=run_id,
        status=record.status,
        output=final_output(stored.plan, stored.results) if succeeded else None,
        plan=stored.plan,
        nodes=stored.results,
        usage=stored.spent,
        started=record.started,
        finished=record.finished or record.updated,
    )
    return result, stored.inputs


def _report(args: argparse.Namespace, term: Terminal) -> int:
    source = Path(args.source)
    result: RunResult | None = None
    inputs: dict[str, str] = {}
    if source.is_file():
        try:
            events = read_events(source)
        except ValueError as exc:
            raise OrchestraError(f"{source}: {exc}") from None
    else:
        path = Path(args.journal) if args.journal else default_journal_path()
        if path is None:
            raise JournalError(
                f"{args.source!r} is no event log, and the journal is off (${JOURNAL_ENV}); "
                "pass --journal PATH"
            )
        journal = Journal(path)
        events = journal.events(args.source)
        result, inputs = _recorded(journal, args.source)
    if not events:
        raise OrchestraError(f"{source} holds no events")
    from orchestra.observe.report import write_report

    path = write_report(args.output, events=events, result=result, inputs=inputs)
    say(term.out, f"report: {path} ({len(events)} events)")
    return EXIT_OK
