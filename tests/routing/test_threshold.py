"""The threshold router: strong model for prompts that need it, within a budget."""

from __future__ import annotations

import pytest

import orchestra as oc
from orchestra.routing import Outcome, fit_threshold_router
from orchestra.routing.fit import Query

EASY = [f"What is {a} plus {b}?" for a in range(15) for b in range(2)]
HARD = [
    f"Prove the theorem about primes number {a} variant {b}" for a in range(15) for b in range(2)
]


def outcomes(weak_right: bool) -> Query:
    """The weak model right or not; the strong one always right, at ten times the cost."""
    return {"weak": Outcome("1", weak_right, 1e-5), "strong": Outcome("1", True, 1e-4)}


def request(prompt: str) -> oc.RouteRequest:
    """A request for `prompt` over the two models."""
    specs = tuple(oc.ModelSpec(name=m, model=f"x/{m}", input_cost=1, output_cost=1)
                  for m in ("weak", "strong"))  # fmt: skip
    return oc.RouteRequest(oc.Task(id="t", agent="x", prompt=prompt), oc.Agent(name="x"), prompt,
                           specs)  # fmt: skip


def test_prompts_like_those_the_weak_model_failed_go_to_the_strong_one() -> None:
    """With budget for the hard half, hard prompts go to the strong model, easy ones do not."""
    queries = [outcomes(True) for _ in EASY] + [outcomes(False) for _ in HARD]
    router = fit_threshold_router(EASY + HARD, queries, weak="weak", strong="strong",
                                  max_cost_ratio=0.6)  # fmt: skip
    hard = router.choose(request("Prove the theorem on primes number 99"))
    assert hard.model == "strong" and "P(strong needed)" in hard.reason
    assert router.choose(request("What is 99 plus 1?")).model == "weak"


def test_no_budget_for_the_strong_model_keeps_the_weak_one() -> None:
    """A budget that pays only for the weak model sends everything to it."""
    queries = [outcomes(True) for _ in EASY] + [outcomes(False) for _ in HARD]
    router = fit_threshold_router(EASY + HARD, queries, weak="weak", strong="strong",
                                  max_cost_ratio=0.1)  # fmt: skip
    assert router.choose(request(HARD[0])).model == "weak"


def test_missing_outcomes_are_config_errors() -> None:
    """Every query needs both models' outcomes, and as many prompts as queries."""
    with pytest.raises(oc.ConfigError, match="outcomes of 'weak' and 'strong'"):
        fit_threshold_router(["p"], [{"weak": Outcome("1", True, 1.0)}], weak="weak",
                             strong="strong")  # fmt: skip
    with pytest.raises(oc.ConfigError, match="as many of each"):
        fit_threshold_router([], [], weak="weak", strong="strong")
