"""The real `orchestra` command, run in a subprocess in a fresh directory with its own journal."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

COMMAND = Path(sys.executable).with_name("orchestra")
OFFLINE = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_OFFLINE_MODE": "true",
    "HF_HUB_OFFLINE": "1",
    "COLUMNS": "120",
}

Orchestra = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def orchestra(tmp_path: Path) -> Orchestra:
    """`orchestra(*args, env={...})`: run the command in `tmp_path` (no orchestra.toml there
    unless the test writes one); its journal is `tmp_path/runs.sqlite`."""

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(COMMAND), *args],
            cwd=tmp_path,
            env={
                **os.environ,
                **OFFLINE,
                "ORCHESTRA_JOURNAL": str(tmp_path / "runs.sqlite"),
                **(env or {}),
            },
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    return run
