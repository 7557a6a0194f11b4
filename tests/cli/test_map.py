"""`orchestra map` as a user drives it: the real command, in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestra.journal.store import Journal
from orchestra.testing.server import Error, OpenAICompatibleServer, RecordedRequest, Reply, Step

Orchestra = Callable[..., subprocess.CompletedProcess[str]]
pytestmark = pytest.mark.slow

PLAN_TOML = """\
output = "memo"

[[tasks]]
id = "facts"
agent = "researcher"
prompt = "List facts about {topic}"

[[tasks]]
id = "memo"
agent = "writer"
prompt = "Write a memo from:\\n{facts}"
after = ["facts"]
"""


def _rows(path: Path, *topics: str) -> None:
    path.write_text("".join(json.dumps({"topic": t}) + "\n\n" for t in topics))


def test_a_batch_prints_one_json_line_per_run_and_resume_runs_nothing_finished(
    orchestra: Orchestra, tmp_path: Path
) -> None:
    """Three rows (blank lines skipped): stdout is one JSON line per run, every run recorded
    as BATCH:INDEX; the summary and the simulated notice go to stderr; --resume of the
    finished batch runs nothing."""
    (tmp_path / "plan.toml").write_text(PLAN_TOML)
    _rows(tmp_path / "rows.jsonl", "GPUs", "TPUs", "FPGAs")
    args = ("--inputs", "rows.jsonl", "--batch-id", "chips", "--time-scale", "0")
    done = orchestra("map", "plan.toml", *args)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted(line["index"] for line in lines) == [0, 1, 2]
    assert {line["status"] for line in lines} == {"succeeded"}
    assert all(line["output"] and line["error"] is None for line in lines)
    assert {line["run_id"] for line in lines} == {"chips:0", "chips:1", "chips:2"}
    assert "batch chips: 3 succeeded, 0 failed" in done.stderr
    assert "simulated constellation" in done.stderr
    journal = Journal(tmp_path / "runs.sqlite")
    assert {journal.run(f"chips:{i}").status for i in range(3)} == {"succeeded"}

    again = orchestra("map", "--resume", "chips", "--time-scale", "0")
    assert again.returncode == 0, again.stderr
    assert again.stdout == ""
    assert "0 succeeded, 0 failed (3 finished before)" in again.stderr


def test_a_failed_run_is_a_line_with_its_error_and_exit_1(
    orchestra: Orchestra, tmp_path: Path
) -> None:
    """A row whose call the provider refuses: its line says failed and why, the other rows
    succeed, the command exits 1."""

    def answer(request: RecordedRequest) -> Step:
        if "broken" in request.last_user_message:
            return Error(400, "this topic is refused")
        return Reply("done")

    (tmp_path / "plan.toml").write_text(PLAN_TOML.replace("researcher", "w").replace("writer", "w"))
    _rows(tmp_path / "rows.jsonl", "fine", "broken", "also fine")
    with OpenAICompatibleServer(api_key="k", default=answer) as server:
        (tmp_path / "orchestra.toml").write_text(
            f'[models.m]\nmodel = "openai/m"\napi_base = "{server.url}"\napi_key = "k"\n'
            'input_cost = 0\noutput_cost = 0\n[agents.w]\ndescription = "works"\nmodel = "m"\n'
        )
        done = orchestra("map", "plan.toml", "--inputs", "rows.jsonl", "--concurrency", "2")
    assert done.returncode == 1, done.stderr
    lines = {line["index"]: line for line in map(json.loads, done.stdout.splitlines())}
    assert [lines[i]["status"] for i in range(3)] == ["succeeded", "failed", "succeeded"]
    assert "this topic is refused" in lines[1]["error"] and lines[1]["output"] is None
    assert "2 succeeded, 1 failed" in done.stderr


def test_bad_inputs_exit_2_naming_the_line_before_any_run(
    orchestra: Orchestra, tmp_path: Path
) -> None:
    """A line that is not a JSON object, a row missing an input the plan uses, or no
    --inputs: exit 2 with what was wrong and where; nothing ran."""
    (tmp_path / "plan.toml").write_text(PLAN_TOML)
    (tmp_path / "rows.jsonl").write_text('{"topic": "GPUs"}\n["TPUs"]\n')
    done = orchestra("map", "plan.toml", "--inputs", "rows.jsonl", "--time-scale", "0")
    assert done.returncode == 2
    assert "rows.jsonl line 2: expected a JSON object of inputs" in done.stderr
    (tmp_path / "rows.jsonl").write_text('{"topic": "GPUs"}\n{"subject": "TPUs"}\n')
    done = orchestra("map", "plan.toml", "--inputs", "rows.jsonl", "--time-scale", "0")
    assert done.returncode == 2
    assert "inputs[1]" in done.stderr and "{topic}" in done.stderr
    done = orchestra("map", "plan.toml", "--time-scale", "0")
    assert done.returncode == 2 and "--inputs ROWS.jsonl" in done.stderr
    assert done.stdout == ""
    assert not Journal(tmp_path / "runs.sqlite").runs()


def test_ctrl_c_stops_the_batch_and_resume_finishes_only_the_rest(
    tmp_path: Path, orchestra: Orchestra
) -> None:
    """SIGINT after the first run's line: exit 130 naming the resume command; --resume then
    prints exactly the runs that had not finished, so every row is answered once."""
    (tmp_path / "plan.toml").write_text(PLAN_TOML)
    _rows(tmp_path / "rows.jsonl", *(f"chip {i}" for i in range(6)))
    command = [sys.executable, "-m", "orchestra.cli", "map", "plan.toml", "--inputs", "rows.jsonl"]
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_OFFLINE_MODE": "true",
        "ORCHESTRA_JOURNAL": str(tmp_path / "runs.sqlite"),
    }
    with subprocess.Popen(
        [*command, "--batch-id", "b", "--concurrency", "1", "--time-scale", "1"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as batch:
        assert batch.stdout is not None and batch.stderr is not None
        first = json.loads(batch.stdout.readline())
        batch.send_signal(signal.SIGINT)
        rest, err = batch.communicate(timeout=300)
    assert batch.returncode == 130, err
    assert "finish it with: orchestra map --resume b" in err
    before = [first, *map(json.loads, rest.splitlines())]
    done = orchestra("map", "--resume", "b", "--time-scale", "0")
    assert done.returncode == 0, done.stderr
    after = [json.loads(line) for line in done.stdout.splitlines()]
    indices = [line["index"] for line in before + after]
    assert sorted(indices) == list(range(6)) and after
    assert f"({len(before)} finished before)" in done.stderr
