"""Commands that call no model start without litellm (seconds to import)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

Orchestra = Callable[..., subprocess.CompletedProcess[str]]
pytestmark = pytest.mark.slow


def _imported(stderr: str) -> set[str]:
    """Top-level packages in a `PYTHONPROFILEIMPORTTIME` trace."""
    return {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


@pytest.mark.parametrize(
    "args",
    [["--help"], ["--version"], ["models"], ["models", "--json"], ["runs"], ["runs", "--json"]],
    ids=" ".join,
)
def test_commands_that_call_no_model_never_import_litellm(
    orchestra: Orchestra, args: list[str]
) -> None:
    """--help, --version, models and runs succeed without importing litellm."""
    done = orchestra(*args, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    imported = _imported(done.stderr)
    assert "orchestra" in imported and "litellm" not in imported


def test_report_from_an_event_log_never_imports_litellm(
    orchestra: Orchestra, tmp_path: Path
) -> None:
    """`orchestra report EVENTS` rebuilds the page without litellm."""
    assert orchestra("run", "A task", "--time-scale", "0", "--events", "e.jsonl").returncode == 0
    done = orchestra("report", "e.jsonl", "-o", "r.html", env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "litellm" not in _imported(done.stderr)
    assert (tmp_path / "r.html").stat().st_size > 0
