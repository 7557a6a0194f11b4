"""The `orchestra` command: simulated by default, configured by orchestra.toml, plain when piped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestra.cli import main
from orchestra.testing.server import OpenAICompatibleServer, RecordedRequest, Reply


@pytest.fixture(autouse=True)
def _no_config_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_run_without_config_uses_simulated_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    """With no orchestra.toml the simulated constellation runs, and the screen says so."""
    assert main(["run", "Compare small and large models", "--time-scale", "0"]) == 0
    out = capsys.readouterr().out
    assert "simulated constellation" in out
    assert "succeeded" in out and "answer" in out
    assert "\x1b[" not in out  # not a terminal: no escape codes


def test_run_json_prints_event_lines(capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints one JSON event per line, from run_started to run_finished."""
    assert main(["run", "A task", "--time-scale", "0", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert lines[0]["kind"] == "run_started"
    assert lines[-1]["kind"] == "run_finished" and lines[-1]["status"] == "succeeded"


def test_plan_prints_tree_and_mermaid(capsys: pytest.CaptureFixture[str]) -> None:
    """`plan` shows the DAG without running workers; --mermaid prints a flowchart."""
    assert main(["plan", "A task", "--time-scale", "0"]) == 0
    assert "background" in capsys.readouterr().out
    assert main(["plan", "A task", "--time-scale", "0", "--mermaid"]) == 0
    out = capsys.readouterr().out
    assert "flowchart TD" in out and "compare --> answer" in out


def test_models_lists_the_constellation(capsys: pytest.CaptureFixture[str]) -> None:
    """`models` prints every spec with its prices."""
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("boss", "fast", "mid"))


def test_config_file_drives_real_models_over_http(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """orchestra.toml's models, agents and boss are used: the boss and workers are HTTP calls."""
    plan = {"tasks": [{"id": "only", "agent": "helper", "prompt": "help"}]}

    def answer(request: RecordedRequest) -> Reply:
        return Reply(json.dumps(plan) if request.model == "chief" else "helped")

    with OpenAICompatibleServer(api_key="k", default=answer) as server:
        (tmp_path / "orchestra.toml").write_text(
            f"""
boss = "chief"
[budget]
max_usd = 1.0
[models.chief]
model = "openai/chief"
api_base = "{server.url}"
api_key = "k"
input_cost = 2.5
output_cost = 10.0
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
        assert main(["run", "Do it"]) == 0
        assert [r.model for r in server.requests] == ["chief", "worker"]
    out = capsys.readouterr().out
    assert "simulated" not in out and "helped" in out


def test_bad_config_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A config with an unknown key exits 2 with a message naming it."""
    (tmp_path / "orchestra.toml").write_text('bos = "x"\n[models.a]\nmodel = "openai/a"\n')
    assert main(["models"]) == 2
    assert "unknown key(s) bos" in capsys.readouterr().out


def test_boss_model_error_exits_2_naming_the_cause(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A boss that cannot authenticate: exit status 2 and a message naming authentication."""
    with OpenAICompatibleServer(api_key="right") as server:
        (tmp_path / "orchestra.toml").write_text(
            f'boss = "b"\n[models.b]\nmodel = "openai/b"\n'
            f'api_base = "{server.url}"\napi_key = "wrong"\n'
        )
        assert main(["run", "x"]) == 2  # the boss itself fails: a ModelError
    assert "authentication" in capsys.readouterr().out


def test_report_by_run_id_reads_the_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`orchestra report RUN_ID` builds the HTML report from the journal's recorded events."""
    import orchestra as oc

    assert main(["run", "A task", "--time-scale", "0"]) == 0
    run_id = oc.Orchestra(models=oc.simulated.constellation(time_scale=0)).runs()[0].run_id
    out = tmp_path / "report.html"
    assert main(["report", run_id, "-o", str(out)]) == 0
    assert "report:" in capsys.readouterr().out
    assert run_id in out.read_text()
    assert main(["report", "no-such-run", "-o", str(out)]) == 2
