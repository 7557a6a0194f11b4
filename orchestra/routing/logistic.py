"""A small L2-regularised logistic regression, in pure Python, for learned checks.

Learned checks (`orchestra.routing.Scored`) score a handful of features per answer; fitting
them on a few hundred recorded queries needs nothing bigger than Newton's method on a
d × d system (d ≤ ~10), so the library carries no numerical dependency for it.

Features are standardised (mean 0, spread 1) before fitting, and the penalty leaves the
intercept alone: the objective is `Σ logloss + ‖w‖² / (2c)`, the same minimiser as
scikit-learn's `LogisticRegression(C=c)`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from orchestra.errors import ConfigError

__all__ = ["Logistic", "fit_logistic"]


def _sigmoid(z: float) -> float:
    # Split by sign so neither branch overflows.
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@dataclass(frozen=True)
class Logistic:
    """A fitted scorer: the probability that a feature row is a positive case.

    Example:
        >>> model = fit_logistic([[0.0], [1.0], [2.0], [3.0]], [False, False, True, True])
        >>> model.probability([3.0]) > 0.5 > model.probability([0.0])
        True
    """

    weights: tuple[float, ...]
    """One weight per standardised feature."""
    bias: float
    mean: tuple[float, ...]
    """Each feature's mean over the fitting rows."""
    scale: tuple[float, ...]
    """Each feature's spread over the fitting rows (1 where it did not vary)."""

    def __post_init__(self) -> None:
        sizes = {len(self.weights), len(self.mean), len(self.scale)}
        if len(sizes) != 1:
            raise ConfigError(
                "a logistic scorer needs as many means and scales as weights, got "
                f"{len(self.weights)} weights, {len(self.mean)} means, {len(self.scale)} scales"
            )

    def probability(self, features: Sequence[float]) -> float:
        """The modelled probability for one feature row.

        Raises:
            ConfigError: the row does not have one value per weight.
        """
        if len(features) != len(self.weights):
            raise ConfigError(f"the scorer takes {len(self.weights)} features, got {len(features)}")
        z = self.bias + sum(
            w * (x - m) / s
            for w, x, m, s in zip(self.weights, features, self.mean, self.scale, strict=True)
        )
        return _sigmoid(z)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (see `from_dict`)."""
        return {
            "weights": list(self.weights),
            "bias": self.bias,
            "mean": list(self.mean),
            "scale": list(self.scale),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Logistic:
        """Build a scorer from `to_dict`'s form.

        Raises:
            ConfigError: a field is missing or not numeric.
        """
        try:
            return cls(
                weights=tuple(float(v) for v in cast(list[Any], data["weights"])),
                bias=float(data["bias"]),
                mean=tuple(float(v) for v in cast(list[Any], data["mean"])),
                scale=tuple(float(v) for v in cast(list[Any], data["scale"])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"a logistic scorer needs numeric 'weights', 'bias', 'mean', 'scale': {exc}"
            ) from exc


def _solve(matrix: list[list[float]], vector: list[float]) -> list[float]:
    """Solve matrix · x = vector (Gaussian elimination, partial pivoting; matrix is SPD)."""
    n = len(vector)
    rows = [[*row, vector[i]] for i, row in enumerate(matrix)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(rows[r][col]))
        rows[col], rows[pivot] = rows[pivot], rows[col]
        head = rows[col][col]
        for r in range(col + 1, n):
            factor = rows[r][col] / head
            if factor:
                for k in range(col, n + 1):
                    rows[r][k] -= factor * rows[col][k]
    solution = [0.0] * n
    for r in range(n - 1, -1, -1):
        tail = sum(rows[r][k] * solution[k] for k in range(r + 1, n))
        solution[r] = (rows[r][n] - tail) / rows[r][r]
    return solution


def fit_logistic(
    rows: Sequence[Sequence[float]], labels: Sequence[bool], *, c: float = 0.3
) -> Logistic:
    """Fit a logistic scorer by Newton's method (see the module docstring).

    Args:
        rows: one feature row per case, all of the same length.
        labels: whether each case is positive.
        c: inverse strength of the L2 penalty (smaller: weights nearer 0).

    Raises:
        ConfigError: no rows, rows of different lengths, labels not matching rows, or c ≤ 0.
    """
    if not rows or len(rows) != len(labels):
        raise ConfigError(
            f"fit_logistic needs one label per row and at least one row "
            f"(got {len(rows)} rows, {len(labels)} labels)"
        )
    width = len(rows[0])
    if any(len(r) != width for r in rows):
        raise ConfigError("fit_logistic needs feature rows of one length")
    if c <= 0:
        raise ConfigError(f"fit_logistic needs c > 0, not {c}")
    count = len(rows)
    mean = [sum(r[j] for r in rows) / count for j in range(width)]
    spread = [math.sqrt(sum((r[j] - mean[j]) ** 2 for r in rows) / count) for j in range(width)]
    scale = [s if s > 1e-12 else 1.0 for s in spread]
    # Column 0 is the intercept; it carries no penalty.
    design = [[1.0] + [(r[j] - mean[j]) / scale[j] for j in range(width)] for r in rows]
    target = [1.0 if y else 0.0 for y in labels]
    size = width + 1
    penalty = [1e-9] + [1.0 / c] * width
    positives = sum(target)
    if positives in (0.0, float(count)):
        # One class only: the optimum is at infinity; keep the (smoothed) base rate instead.
        bias = math.log((positives + 0.5) / (count - positives + 0.5))
        return Logistic((0.0,) * width, bias, tuple(mean), tuple(scale))
    theta = [math.log(positives / (count - positives))] + [0.0] * width

    def objective(at: Sequence[float]) -> float:
        total = 0.5 * sum(w * t * t for w, t in zip(penalty, at, strict=True))
        for x, y in zip(design, target, strict=True):
            z = sum(t * v for t, v in zip(at, x, strict=True))
            # log(1 + e^z) − y·z, computed without overflow
            total += max(z, 0.0) + math.log1p(math.exp(-abs(z))) - y * z
        return total

    current = objective(theta)
    for _ in range(100):
        gradient = [penalty[j] * theta[j] for j in range(size)]
        hessian = [[0.0] * size for _ in range(size)]
        for j in range(size):
            hessian[j][j] = penalty[j]
        for x, y in zip(design, target, strict=True):
            p = _sigmoid(sum(t * v for t, v in zip(theta, x, strict=True)))
            residual, curvature = p - y, p * (1.0 - p)
            for j in range(size):
                gradient[j] += residual * x[j]
                weighted = curvature * x[j]
                row = hessian[j]
                for k in range(j + 1):
                    row[k] += weighted * x[k]
        for j in range(size):
            for k in range(j + 1, size):
                hessian[j][k] = hessian[k][j]
        step = _solve(hessian, gradient)
        # Newton's full step can overshoot on nearly separable data: halve it until the
        # objective goes down.
        scale_step = 1.0
        for _ in range(40):
            trial = [t - scale_step * s for t, s in zip(theta, step, strict=True)]
            value = objective(trial)
            if value <= current:
                break
            scale_step /= 2
        else:
            break
        theta, improvement, current = trial, current - value, value
        if improvement < 1e-12 * max(1.0, abs(current)):
            break
    return Logistic(weights=tuple(theta[1:]), bias=theta[0], mean=tuple(mean), scale=tuple(scale))
