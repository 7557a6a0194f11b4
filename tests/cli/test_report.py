"""`orchestra report` from an event log or from the journal, as a user runs it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

Orchestra = Callable[..., subprocess.CompletedProcess[str]]
pytestmark = pytest.mark.slow


def test_report_from_the_journal_has_outputs_and_filled_prompts(
    orchestra: Orchestra, tmp_path: Path
) -> None:
    """A run recorded in the journal rebuilds a report with its final output, its prompts as
    sent (inputs and dependencies filled in) and every call counted."""
    plan = {
        "tasks": [
            {"id": "facts", "agent": "researcher", "prompt": "List facts about {topic}"},
            {"id": "memo", "agent": "writer", "prompt": "Memo:\n{facts}", "after": ["facts"]},
        ]
    }
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    done = orchestra("run", "--plan", "plan.json", "--input", "topic=GPUs", "--json")
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout.splitlines()[0])["run_id"]
    report = orchestra("report", run_id, "-o", "j.html")
    assert report.returncode == 0, report.stderr
    html = (tmp_path / "j.html").read_text()
    assert "No final output" not in html and 'id="output"' in html
    assert "List facts about GPUs" in html and "{topic}" not in html
    assert "model calls (0 failed)" in html


def test_report_from_an_event_log(orchestra: Orchestra, tmp_path: Path) -> None:
    """`report EVENTS.jsonl` rebuilds the page from a saved log."""
    assert orchestra("run", "Compare", "--time-scale", "0", "--events", "e.jsonl").returncode == 0
    done = orchestra("report", "e.jsonl", "-o", "again.html")
    assert done.returncode == 0, done.stderr
    assert "report: again.html (" in done.stdout
    assert (tmp_path / "again.html").read_text().count('class="node ') == 6


def test_report_of_something_else_exits_2(orchestra: Orchestra, tmp_path: Path) -> None:
    """An unknown run id, a file that is no event log, an empty log: exit 2 and why."""
    unknown = orchestra("report", "3f2a9c0d1e7b")
    assert unknown.returncode == 2 and "orchestra runs" in unknown.stderr
    (tmp_path / "notes.txt").write_text("hello\n")
    notes = orchestra("report", "notes.txt")
    assert notes.returncode == 2 and "line 1 is not an orchestra event" in notes.stderr
    (tmp_path / "empty.jsonl").write_text("")
    empty = orchestra("report", "empty.jsonl")
    assert empty.returncode == 2 and "holds no events" in empty.stderr
