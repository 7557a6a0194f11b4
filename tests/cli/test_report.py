"""`orchestra run --report/--events` and `orchestra report EVENTS.jsonl`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestra.cli import main
from orchestra.observe.jsonl import read_events


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no orchestra.toml here: the simulated constellation runs


def test_run_writes_report_and_event_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`run --report --events` writes both; the log rebuilds a report with `report`."""
    args = ["--time-scale", "0", "--report", "r.html", "--events", "e.jsonl"]
    assert main(["run", "Compare", *args]) == 0
    out = capsys.readouterr().out
    assert "report: r.html" in out and "run succeeded" in out
    html = (tmp_path / "r.html").read_text()
    assert 'id="dag"' in html and 'id="gantt"' in html and "Answer the task: Compare" in html
    events = read_events(tmp_path / "e.jsonl")
    assert events[0].kind == "run_started" and events[-1].kind == "run_finished"
    assert main(["report", "e.jsonl", "-o", "again.html"]) == 0
    assert f"report: again.html ({len(events)} events)" in capsys.readouterr().out
    again = (tmp_path / "again.html").read_text()
    assert again.count('class="node ') == html.count('class="node ') == 6


def test_json_output_and_event_log_are_the_same_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --json, stdout carries exactly the lines saved by --events."""
    assert main(["run", "Compare", "--time-scale", "0", "--json", "--events", "e.jsonl"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    saved = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert printed == saved and printed[-1]["status"] == "succeeded"


def test_report_of_an_unknown_run_explains_the_journal(capsys: pytest.CaptureFixture[str]) -> None:
    """A run id the journal does not hold: exit 2, and the message says how to list runs."""
    assert main(["report", "3f2a9c0d1e7b"]) == 2
    out = capsys.readouterr().out
    assert "no run '3f2a9c0d1e7b'" in out and "orchestra runs" in out


def test_report_of_a_file_that_is_not_an_event_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file of something else: exit 2 naming the bad line."""
    (tmp_path / "notes.txt").write_text("hello\n")
    assert main(["report", "notes.txt"]) == 2
    assert "line 1 is not an orchestra event" in capsys.readouterr().out
    (tmp_path / "empty.jsonl").write_text("")
    assert main(["report", "empty.jsonl"]) == 2
    assert "holds no events" in capsys.readouterr().out
