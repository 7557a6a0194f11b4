"""The routing benchmark's code path, on a small slice of the recorded dev split."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "routing" / "zeroeval"


def benchmark() -> ModuleType:
    """benchmarks/routing.py, imported as a module."""
    spec = importlib.util.spec_from_file_location(
        "routing_benchmark", ROOT / "benchmarks" / "routing.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.skipif(not DATA.is_dir(), reason="the recorded routing data is not checked out")
def test_benchmark_runs_every_policy_on_a_slice(capsys: pytest.CaptureFixture[str]) -> None:
    """40 dev queries through every policy: a table, CV figures and a complete RESULT line."""
    figures = benchmark().main(["--data", str(DATA), "--limit", "40", "--cv-repeats", "1"])
    out = capsys.readouterr().out
    assert "learned cascades (preset)" in out and "oracle" in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("RESULT {")
    required = {"policy", "accuracy", "cost_per_query_usd", "strong_model", "strong_accuracy",
                "strong_cost_per_query_usd", "cv_accuracy", "cv_live_accuracy"}  # fmt: skip
    assert required <= figures.keys()
    assert figures["queries"] == 40
    assert 0 < figures["cost_per_query_usd"] < figures["strong_cost_per_query_usd"]
    assert figures["oracle_accuracy"] >= figures["strong_accuracy"]
