"""Every numbered example runs offline and prints what it promises (STYLE rule 19)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("[0-9][0-9]_*.py"))
OFFLINE_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_OFFLINE_MODE": "true",
    "HF_HUB_OFFLINE": "1",
}
EXPECTED = {
    "01_quickstart.py": "cost by model",
    "02_hand_written_plan.py": "critical path: market -> compare -> memo",
    "03_tools.py": "the model saw the tools answer: ['1.08', '4']",
    "04_any_openai_compatible_server.py": "saw 2 requests",
    "05_budgets_and_failures.py": "NodeFailed: task 'south'",
    "06_routing.py": "slack-aware: aside -> fast, check -> fast-wafer",
    "07_see_a_run.py": "6/6 nodes",
    "08_fallbacks.py": "breaker  primary is now open",
    "09_streaming_plan.py": "(before the plan was done)",
    "10_replan.py": "replanned after 'analysis' failed",
    "11_map.py": "'describe' fanned out into 5 nodes",
    "12_crash_and_resume.py": "resumed: the model was called for ['chart', 'draft', 'review']",
    "13_learned_cascade.py": "40 new questions: 40 right (strong alone: 40), 13 escalated",
    "14_map_batch.py": "journal: 39 of 40 succeeded",
    "15_real_local_model.py": "skipped: llama-cpp-python's server is not installed",
    "16_hot_swap.py": "calls: old provider 1, new provider 1",
    "17_hedging.py": "hedge won for b on backup",
    "18_mid_stream_fallback.py": "answered by backup: A whole answer, from the backup server.",
    "19_limits.py": "8 nodes, at most 2 calls in flight on fast",
    "20_notes_and_compaction.py": "the reader saw: Notes so far: | - [scout] budget is $2M",
    "21_verify_and_mixture.py": "verifier 'mid' says NO",
    "22_opentelemetry.py": "trace root: invoke_workflow",
    "23_orchestra_toml.py": "facts: 'GPUs are fast.' on worker",
    "24_llm_router.py": "router 'fast' chose boss: a multi-step proof",
}


def test_every_example_has_an_expectation() -> None:
    """Each numbered example is listed in EXPECTED, and each listed example exists."""
    assert sorted(p.name for p in EXAMPLES) == sorted(EXPECTED)


def test_the_docs_index_lists_every_example() -> None:
    """docs/index.md links each numbered example."""
    index = (EXAMPLES_DIR.parent / "docs" / "index.md").read_text(encoding="utf-8")
    assert [p.name for p in EXAMPLES if f"(../examples/{p.name})" not in index] == []


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name: str, tmp_path: Path) -> None:
    """The example exits 0 and prints its expected text."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLES_DIR / name)],
        cwd=tmp_path,
        # No local models here: the real-model example runs in tests/real_models.
        env={**os.environ, **OFFLINE_ENV, "ORCHESTRA_LOCAL_MODELS": str(tmp_path / "none")},
        capture_output=True,
        text=True,
        timeout=300,  # a guard against a hang, not a speed test (benchmarks/examples.py is)
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert EXPECTED[name] in done.stdout, done.stdout


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_is_short_and_documented(path: Path) -> None:
    """The example opens with a module docstring, has a main(), and stays under 100 lines."""
    source = path.read_text(encoding="utf-8")
    module = ast.parse(source)
    assert ast.get_docstring(module), f"{path.name} has no module docstring"
    assert any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in module.body)
    assert source.lstrip().startswith('"""'), f"{path.name} must open with its docstring"
    assert len(source.splitlines()) < 100
