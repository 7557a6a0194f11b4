"""`orchestra run` and `orchestra plan` as a user drives them: the real command, in a subprocess."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestra.journal.store import Journal
from orchestra.observe.jsonl import read_events
from orchestra.testing.server import OpenAICompatibleServer, RecordedRequest, Reply

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


def test_a_run_on_the_simulated_constellation_with_report_and_events(
    orchestra: Orchestra, tmp_path: Path
) -> None:
    """With no config: the notice, plain lines, the usage table, the answer; --report and
    --events write the page and the log; exit 0."""
    done = orchestra("run", "Compare", "--time-scale", "0", "--report", "r.html", "--events", "e")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "simulated constellation" in out and "\x1b[" not in out
    assert "run succeeded in" in out and "answer" in out and "report: r.html" in out
    html = (tmp_path / "r.html").read_text()
    assert 'id="dag"' in html and "Answer the task: Compare" in html
    events = read_events(tmp_path / "e")
    assert events[0].kind == "run_started" and events[-1].kind == "run_finished"


def test_json_prints_only_the_events(orchestra: Orchestra, tmp_path: Path) -> None:
    """--json: stdout is exactly one JSON event per line, the same as --events saves."""
    done = orchestra("run", "Compare", "--time-scale", "0", "--json", "--events", "e.jsonl")
    assert done.returncode == 0, done.stderr
    printed = [json.loads(line) for line in done.stdout.splitlines()]
    saved = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert printed == saved and printed[-1]["status"] == "succeeded"


def test_a_plan_file_with_inputs_a_router_and_a_budget(
    orchestra: Orchestra, tmp_path: Path
) -> None:
    """run --plan FILE (TOML) --input KEY=VALUE --router fixed:fast --budget-usd: the plan runs
    with the input, the unpinned researcher on `fast`, the writer where its agent is pinned."""
    (tmp_path / "plan.toml").write_text(PLAN_TOML)
    done = orchestra(
        "run", "--plan", "plan.toml", "--input", "topic=GPUs", "--router", "fixed:fast",
        "--budget-usd", "0.5", "--max-seconds", "60", "--time-scale", "0", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    calls = {e["task_id"]: e["model"] for e in events if e["kind"] == "model_called"}
    assert calls == {"facts": "fast", "memo": "mid"}
    run_id = events[0]["run_id"]
    record = Journal(tmp_path / "runs.sqlite").run(run_id)
    assert record.status == "succeeded" and record.task is None


def test_a_json_plan_file_that_cannot_run_exits_2_before_any_call(
    orchestra: Orchestra, tmp_path: Path
) -> None:
    """An invalid plan file: exit 2, the message names the file and the task; nothing ran."""
    plan = {"tasks": [{"id": "a", "agent": "researcher", "prompt": "{b}", "after": ["b"]}]}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    done = orchestra("run", "--plan", "plan.json", "--time-scale", "0")
    assert done.returncode == 2
    assert "task 'a' depends on unknown task 'b'" in done.stderr
    assert not (tmp_path / "runs.sqlite").exists()
    (tmp_path / "plan.json").write_text("{not json")
    done = orchestra("run", "--plan", "plan.json")
    assert done.returncode == 2 and "plan.json is not valid JSON" in done.stderr


def _config(tmp_path: Path, server: OpenAICompatibleServer, extra: str = "") -> None:
    (tmp_path / "orchestra.toml").write_text(
        f"""
boss = "chief"
{extra}
[models.chief]
model = "openai/chief"
api_base = "{server.url}"
api_key = "k"
input_cost = 1.0
output_cost = 1.0
[models.worker]
model = "openai/worker"
api_base = "{server.url}"
api_key = "k"
input_cost = 0
output_cost = 0
[agents.helper]
description = "helps"
model = "worker"
"""
    )


def test_orchestra_toml_drives_real_models_over_http(orchestra: Orchestra, tmp_path: Path) -> None:
    """orchestra.toml's boss, models, agents, [budget] and [router] are used: the boss and the
    worker are HTTP calls."""
    plan = {"tasks": [{"id": "only", "agent": "helper", "prompt": "help"}]}

    def answer(request: RecordedRequest) -> Reply:
        return Reply(json.dumps(plan) if request.model == "chief" else "helped")

    with OpenAICompatibleServer(api_key="k", default=answer) as server:
        extra = '[budget]\nmax_usd = 1.0\n[router]\npolicy = "cheapest"\nmin_quality = 0.1'
        _config(tmp_path, server, extra)
        done = orchestra("run", "Do it")
        assert [r.model for r in server.requests] == ["chief", "worker"]
    assert done.returncode == 0, done.stderr
    assert "simulated" not in done.stdout and "helped" in done.stdout


def test_an_empty_task_is_refused_before_the_boss_is_paid(
    orchestra: Orchestra, tmp_path: Path
) -> None:
    """`orchestra run ""` exits 2 and sends the boss nothing."""
    with OpenAICompatibleServer(api_key="k") as server:
        _config(tmp_path, server)
        done = orchestra("run", "  ")
        assert server.requests == []
    assert done.returncode == 2 and "the task is empty" in done.stderr


def test_a_boss_that_fails_is_a_failed_run_and_still_gets_its_report(
    orchestra: Orchestra, tmp_path: Path
) -> None:
    """A boss that cannot authenticate: exit 1 (the run failed), the reason on stderr, and
    --report writes the page of what happened."""
    with OpenAICompatibleServer(api_key="right") as server:
        _config(tmp_path, server)
        (tmp_path / "orchestra.toml").write_text(
            (tmp_path / "orchestra.toml").read_text().replace('api_key = "k"', 'api_key = "no"')
        )
        done = orchestra("run", "x", "--report", "r.html")
    assert done.returncode == 1, done.stderr
    assert "chief" in done.stderr and "report: r.html" in done.stdout
    assert "run_finished" not in done.stdout
    assert "failed" in (tmp_path / "r.html").read_text()


def test_a_budget_stop_exits_1_with_the_finished_work(orchestra: Orchestra) -> None:
    """--budget-usd too small for the run: exit 1, the budget named, the usage table printed."""
    done = orchestra("run", "Compare", "--time-scale", "0", "--budget-usd", "0.0001")
    assert done.returncode == 1
    assert "max_usd" in done.stderr and "total" in done.stdout


def test_plan_shows_the_dag_verbatim(orchestra: Orchestra) -> None:
    """`plan` prints the tree (user text as it is, never markup), a Mermaid flowchart, or the
    plan as JSON."""
    task = "Compare [bold]GPUs[/] :rocket:"
    tree = orchestra("plan", task, "--time-scale", "0")
    assert tree.returncode == 0, tree.stderr
    assert f"Gather background facts on: {task}" in tree.stdout
    flow = orchestra("plan", "A task", "--time-scale", "0", "--mermaid")
    assert "flowchart TD" in flow.stdout and "compare --> answer" in flow.stdout
    as_json = orchestra("plan", "A task", "--time-scale", "0", "--json")
    assert [t["id"] for t in json.loads(as_json.stdout)["tasks"]][-1] == "answer"


def test_usage_errors_exit_2(orchestra: Orchestra) -> None:
    """No task, a task and a plan file, a bad --input or --router: exit 2, nothing ran."""
    assert orchestra("run").returncode == 2
    assert orchestra("run", "x", "--plan", "p.json").returncode == 2
    bad_input = orchestra("run", "x", "--input", "novalue")
    assert bad_input.returncode == 2 and "is not KEY=VALUE" in bad_input.stderr
    bad_router = orchestra("run", "x", "--router", "fastest")
    assert bad_router.returncode == 2 and "cheapest, slack-aware" in bad_router.stderr
