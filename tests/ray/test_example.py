"""The Ray example and `orchestra map --ray` run on the cluster (the example is not numbered:
it needs the namespace)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ray_map.py"


def test_the_ray_example_runs_a_batch_on_the_cluster(cluster: Any, tmp_path: Path) -> None:
    """examples/ray_map.py joins the cluster (RAY_ADDRESS) and runs its batch on two actors."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        cwd=tmp_path,
        env={**os.environ, "RAY_ADDRESS": cluster.address},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "on Ray: 20 runs succeeded, 0 failed" in done.stdout
    assert "calls admitted by the cluster's admission service: 40" in done.stdout


def test_orchestra_map_with_ray_runs_the_batch_on_the_cluster(cluster: Any, tmp_path: Path) -> None:
    """`orchestra map PLAN --inputs ROWS --ray ADDRESS` (the simulated constellation, whose
    fakes travel to the actors): one JSON line per run, all succeeded."""
    plan = {"tasks": [{"id": "facts", "agent": "researcher", "prompt": "facts on {topic}"}]}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    (tmp_path / "rows.jsonl").write_text("".join(f'{{"topic": "t{i}"}}\n' for i in range(4)))
    command = ["map", "plan.json", "--inputs", "rows.jsonl", "--ray", cluster.address]
    done = subprocess.run(
        [sys.executable, "-m", "orchestra.cli", *command, "--time-scale", "0"],
        cwd=tmp_path,
        env={**os.environ, "ORCHESTRA_JOURNAL": str(tmp_path / "runs.sqlite")},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted(line["index"] for line in lines) == [0, 1, 2, 3]
    assert {line["status"] for line in lines} == {"succeeded"}
