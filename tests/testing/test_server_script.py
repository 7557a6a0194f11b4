"""`python -m orchestra.testing.server --script FILE`: the test server on its own, for trying
the command line against a real HTTP endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestra.testing._server_script import load_script, step_of
from orchestra.testing.server import Error, Malformed, Reply


def test_a_script_file_gives_each_model_its_steps(tmp_path: Path) -> None:
    """Strings are replies; objects are replies, errors or malformed bodies; default answers
    the rest."""
    script = tmp_path / "s.json"
    script.write_text(
        json.dumps(
            {
                "default": {"reply": "later", "delay": 0.5},
                "models": {"m": ["first", {"error": 429, "retry_after": 2}, {"malformed": "{"}]},
            }
        )
    )
    default, steps = load_script(script)
    assert default == Reply("later", delay=0.5)
    assert steps == {"m": [Reply("first"), Error(429, retry_after=2), Malformed(body="{")]}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"modls": {}}, "expected an object with 'default' and/or 'models'"),
        ({"models": {"m": [{"eror": 500}]}}, "models.m: bad step {'eror': 500}"),
        ({"models": {"m": [{"error": 500, "wait": 1}]}}, "unexpected keyword argument 'wait'"),
    ],
)
def test_a_bad_script_says_where(tmp_path: Path, bad: object, message: str) -> None:
    """A script that is not one names the file and the step at fault."""
    script = tmp_path / "s.json"
    script.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=r"s\.json") as caught:
        load_script(script)
    assert message in str(caught.value)
    with pytest.raises(ValueError, match="use a string"):
        step_of(3)


@pytest.mark.slow
def test_the_orchestra_command_runs_against_the_scripted_server(tmp_path: Path) -> None:
    """The server started as a command prints its URL; `orchestra run` with a config pointing
    at it gets the scripted plan and answers."""
    plan = {"tasks": [{"id": "only", "agent": "helper", "prompt": "help"}]}
    (tmp_path / "answers.json").write_text(
        json.dumps({"default": "helped", "models": {"chief": [json.dumps(plan)]}})
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "orchestra.testing.server", "--script", "answers.json"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        (tmp_path / "local.toml").write_text(
            f'boss = "chief"\n[models.chief]\nmodel = "openai/chief"\napi_base = "{url}"\n'
            f'api_key = "none"\n[models.worker]\nmodel = "openai/worker"\napi_base = "{url}"\n'
            'api_key = "none"\n[agents.helper]\ndescription = "helps"\nmodel = "worker"\n'
        )
        command = Path(sys.executable).with_name("orchestra")
        done = subprocess.run(
            [str(command), "run", "Help me", "--config", "local.toml"],
            cwd=tmp_path,
            env={**os.environ, "ORCHESTRA_JOURNAL": str(tmp_path / "runs.sqlite")},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith("helped")
    assert "RuntimeWarning" not in err
