"""Repeated cross-validation of fitters: the same halves for all, percentiles of the gap."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import orchestra as oc
from orchestra.routing import Case, Outcome, cross_validate_fitters
from orchestra.routing.evaluate import percentile
from orchestra.routing.fit import Replayed


def cases(count: int) -> list[Case]:
    """Cases in two groups: the cheap model right on even ones, the strong one always."""
    return [
        Case(f"g{i % 2}", f"q{i}", {"cheap": Outcome("1", i % 4 == 0, 1.0),
                                    "strong": Outcome("1", True, 10.0)})
        for i in range(count)
    ]  # fmt: skip


def always(model: str) -> Callable[[Sequence[Case]], Callable[[Case], Replayed]]:
    """A fitter that learns nothing: every case goes to `model`."""

    def fit(train: Sequence[Case]) -> Callable[[Case], Replayed]:
        def run(case: Case) -> Replayed:
            outcome = case.outcomes[model]
            return Replayed(model, outcome.correct, outcome.cost_usd)

        return run

    return fit


def test_fitters_are_scored_against_the_strong_model_on_the_same_halves() -> None:
    """The strong model's own gap is 0 at ratio 1; the cheap one's is its accuracy loss at 0.1."""
    held = cross_validate_fitters(cases(40), {"strong": always("strong"), "cheap": always("cheap")},
                                  strong="strong", repeats=3, seed=2)  # fmt: skip
    assert held["strong"].gaps == (0.0,) * 6 and held["strong"].ratios == (1.0,) * 6
    assert held["cheap"].mean_ratio == pytest.approx(0.1)
    assert held["cheap"].mean_gap == pytest.approx(-0.75, abs=0.1)
    assert held["cheap"].gap_p10 <= held["cheap"].mean_gap
    again = cross_validate_fitters(cases(40), {"cheap": always("cheap")}, strong="strong",
                                   repeats=3, seed=2)  # fmt: skip
    assert again["cheap"] == held["cheap"]


def test_cases_without_the_strong_model_are_refused() -> None:
    """Every case needs the strong model's outcome (the yardstick)."""
    with pytest.raises(oc.ConfigError, match="outcome of 'gpt'"):
        cross_validate_fitters(cases(4), {"x": always("cheap")}, strong="gpt")


@settings(max_examples=40)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=30), st.floats(0, 1), st.floats(0, 1))
def test_percentiles_lie_between_the_extremes_and_grow_with_the_share(
    values: list[float], one: float, other: float
) -> None:
    """A percentile is within [min, max] and never decreases as the share grows (property)."""
    low, high = sorted((one, other))
    assert min(values) <= percentile(values, low) <= percentile(values, high) <= max(values)
