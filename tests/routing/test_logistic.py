"""The pure-Python logistic regression behind learned checks: optimum, edge cases, errors."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import orchestra as oc
from orchestra.routing.logistic import Logistic, fit_logistic


def gradient(model: Logistic, rows: list[list[float]], labels: list[bool], c: float) -> list[float]:
    """The objective's gradient at `model`, in standardised coordinates (0 at the optimum)."""
    grad = [0.0] + [w / c for w in model.weights]
    for row, label in zip(rows, labels, strict=True):
        z = [(x - m) / s for x, m, s in zip(row, model.mean, model.scale, strict=True)]
        residual = model.probability(row) - float(label)
        grad[0] += residual
        for j, value in enumerate(z):
            grad[j + 1] += residual * value
    return grad


rows_and_labels = st.integers(1, 3).flatmap(
    lambda width: st.lists(
        st.tuples(
            st.lists(st.floats(-50, 50, allow_nan=False), min_size=width, max_size=width),
            st.booleans(),
        ),
        min_size=2,
        max_size=40,
    )
)


@settings(max_examples=40, deadline=None)
@given(rows_and_labels, st.sampled_from([0.05, 0.3, 5.0]))
def test_fit_reaches_the_optimum(data: list[tuple[list[float], bool]], c: float) -> None:
    """Whatever the data (separable, constant columns, one class), the fit is finite and the
    objective's gradient vanishes there (or, with one class only, the smoothed base rate)."""
    rows = [list(r) for r, _ in data]
    labels = [y for _, y in data]
    model = fit_logistic(rows, labels, c=c)
    assert all(math.isfinite(v) for v in (*model.weights, model.bias))
    if len(set(labels)) == 1:
        assert model.weights == (0.0,) * len(rows[0])
        assert (model.probability(rows[0]) > 0.5) == labels[0]
    else:
        assert max(abs(g) for g in gradient(model, rows, labels, c)) < 1e-5 * len(rows)


def test_a_clear_signal_is_learned() -> None:
    """More of the feature, more often positive: the probability rises with it."""
    rows = [[float(x)] for x in range(20)]
    labels = [x >= 10 if x % 5 else x < 10 for x in range(20)]
    model = fit_logistic(rows, labels)
    assert model.probability([19.0]) > 0.7 > 0.3 > model.probability([0.0])


def test_round_trip_and_errors() -> None:
    """to_dict/from_dict round-trips; bad input is a ConfigError naming the problem."""
    model = fit_logistic([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]], [False, True, True])
    assert Logistic.from_dict(model.to_dict()) == model
    with pytest.raises(oc.ConfigError, match="one label per row"):
        fit_logistic([[0.0]], [True, False])
    with pytest.raises(oc.ConfigError, match="one length"):
        fit_logistic([[0.0], [1.0, 2.0]], [True, False])
    with pytest.raises(oc.ConfigError, match="c > 0"):
        fit_logistic([[0.0]], [True], c=0)
    with pytest.raises(oc.ConfigError, match="takes 2 features, got 1"):
        model.probability([1.0])
    with pytest.raises(oc.ConfigError, match="numeric"):
        Logistic.from_dict({"weights": [1.0], "bias": "x", "mean": [0.0], "scale": [1.0]})
    with pytest.raises(oc.ConfigError, match="as many means"):
        Logistic((1.0,), 0.0, (0.0, 0.0), (1.0,))
