"""The routing benchmark's code path, on a small slice of the recorded dev split."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from orchestra.routing import Cascade, Stage
from orchestra.testing import RecordedConstellation

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


needs_data = pytest.mark.skipif(
    not DATA.is_dir(), reason="the recorded routing data is not checked out"
)


@pytest.mark.slow
@needs_data
def test_benchmark_runs_every_policy_on_a_slice(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """30 dev queries through every policy and baseline, 2% of the recorded answers failing:
    the table with the literature's columns, the failed queries listed, the cross-validated
    candidates, the Pareto SVG and a complete RESULT line."""
    svg = tmp_path / "pareto.svg"
    args = ["--data", str(DATA), "--limit", "30", "--cv-repeats", "1", "--faults", "0.02",
            "--svg", str(svg)]  # fmt: skip
    figures = benchmark().main(args)
    out = capsys.readouterr().out
    assert f"failed queries (scored wrong, their cost counted): {figures['failed_queries']}" in out
    for name in ("learned cascades (preset)", "oracle", "ABC", "cluster router", "threshold",
                 "PGR", "small: calls", "recommended by cross-validation", "APGR"):  # fmt: skip
        assert name in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("RESULT {")
    required = {"policy", "accuracy", "cost_per_query_usd", "strong_model", "strong_accuracy",
                "strong_cost_per_query_usd", "cv_accuracy", "cv_gap_p10", "cv_cost_ratio",
                "cv_live_accuracy", "pgr", "small_share_calls"}  # fmt: skip
    assert required <= figures.keys()
    assert figures["queries"] == 30
    assert 0 < figures["cost_per_query_usd"] < figures["strong_cost_per_query_usd"]
    assert figures["oracle_accuracy"] >= figures["strong_accuracy"]
    assert (
        svg.read_text(encoding="utf-8").startswith("<svg") and "Pareto frontier" in svg.read_text()
    )


@pytest.mark.slow
@needs_data
def test_failing_recorded_answers_escalate_cascades() -> None:
    """With 2% of the recorded answers empty or failing, every query whose cheap answer failed
    escalates to the strong model, and no node fails."""
    bench = benchmark()
    recorded = RecordedConstellation.load(DATA, "dev", models=[bench.MINI, bench.STRONG])
    faulty = recorded.with_faults(0.02, seed=1)
    recorded.close()
    queries = bench.interleave(faulty.queries, 300)
    broken = {q.qid for q in queries if not q.answers[bench.MINI].text}
    cascade = Cascade((Stage((bench.MINI,)), Stage((bench.STRONG,))))
    nodes = bench.run_policy(faulty, queries, cascade, [bench.MINI, bench.STRONG])
    faulty.close()
    assert len(nodes) == len(queries)
    assert any(nodes[qid].ok for qid in broken)
    for qid in broken:
        if nodes[qid].ok:
            assert nodes[qid].model == bench.STRONG and "failed" in (nodes[qid].route or "")
    assert all(nodes[q.qid].ok or not q.answers[bench.STRONG].text for q in queries)
    assert all(nodes[qid].model == bench.MINI for qid in nodes.keys() - broken if nodes[qid].ok)
