"""The cluster router: prompts clustered, the cheapest near-best model per cluster."""

from __future__ import annotations

import pytest

import orchestra as oc
from orchestra.routing import ClusterRouter, Outcome, fit_cluster_router
from orchestra.routing.fit import Query

SUMS = [f"What is {a} plus {b} apples and pears?" for a in range(12) for b in range(2)]
CODE = [f"def f{a}(items): return sorted(items)[{b}]" for a in range(12) for b in range(2)]


def outcomes(right: set[str]) -> Query:
    """Outcomes of models a (cheap), b (mid), c (dear): right when named."""
    costs = {"a": 1e-5, "b": 2e-5, "c": 1e-4}
    return {m: Outcome("1", m in right, cost) for m, cost in costs.items()}


def fitted(**options: float) -> ClusterRouter:
    """A router fitted where `a` solves the sums and only `b` and `c` the code."""
    queries = [outcomes({"a", "b", "c"}) for _ in SUMS] + [outcomes({"b", "c"}) for _ in CODE]
    return fit_cluster_router(SUMS + CODE, queries, clusters=2, **options)  # type: ignore[arg-type]


def request(prompt: str, **fields: object) -> oc.RouteRequest:
    """A request for `prompt` over models a, b and c."""
    specs = tuple(oc.ModelSpec(name=m, model=f"x/{m}", input_cost=1, output_cost=1) for m in "abc")
    return oc.RouteRequest(oc.Task(id="t", agent="x", prompt=prompt), oc.Agent(name="x"), prompt,
                           specs, **fields)  # type: ignore[arg-type]  # fmt: skip


def test_each_cluster_gets_its_cheapest_good_model() -> None:
    """Sums go to the cheap model that solves them, code to the cheapest that solves it."""
    router = fitted()
    assert router.choose(request("What is 40 plus 2 apples?")).model == "a"
    decision = router.choose(request("def g(items): return sorted(items)[3]"))
    assert decision.model == "b"
    assert "the cheapest within 2% of the best there" in decision.reason


def test_an_unusable_choice_falls_to_the_next_in_the_clusters_order() -> None:
    """When the cluster's model has an open circuit, the next one of its order answers."""
    decision = fitted().choose(request("What is 7 plus 8 apples?", unavailable=frozenset("a")))
    assert decision.model == "b" and "(a is not usable)" in decision.reason


def test_fitting_is_deterministic_and_checks_its_input() -> None:
    """The same seed gives the same clusters; mismatched inputs are a ConfigError."""
    assert fitted(seed=3).choices == fitted(seed=3).choices
    with pytest.raises(oc.ConfigError, match="as many of each"):
        fit_cluster_router(["p"], [])
