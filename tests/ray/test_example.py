"""The Ray example runs on the cluster (it is not numbered: it needs the namespace)."""

from __future__ import annotations

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
