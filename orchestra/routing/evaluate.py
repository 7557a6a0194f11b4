"""Out-of-sample figures for routing policies: repeated cross-validation on recorded answers.

Vocabulary: a *case* (`Case`) is one recorded query — its group (the agent it goes to), its
prompt, and each model's `Outcome`. A *fitter* learns a policy from cases and returns how that
policy answers a case (`Replayed`: the model whose answer is kept, whether it was right, what
it cost), without calling anything.

`cross_validate_fitters` splits the cases of each group in random halves, fits every fitter on
one half and replays it on the other, both ways round, `repeats` times (the same halves for
every fitter, so they are compared on the same draws). For each fitter it keeps, per held-out
half, the accuracy gap to the strong model on that half and the cost as a fraction of the
strong model's: `HeldOut` gives their mean, spread and percentiles. A policy is recommended on
the 10th percentile of the gap, not its mean: a mean a little above zero still loses to the
strong model on a good share of the draws. `cross_validate` is the same for `fit_cascades`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from orchestra.errors import ConfigError
from orchestra.routing.fit import Query, Replayed, fit_cascades, replay

__all__ = [
    "Case",
    "CrossValidation",
    "Fitter",
    "HeldOut",
    "cross_validate",
    "cross_validate_fitters",
    "percentile",
]


@dataclass(frozen=True)
class Case:
    """One recorded query, as fitters and replays see it."""

    group: str
    """The agent (task type) it goes to."""
    prompt: str
    outcomes: Query
    """Each model's recorded outcome."""


Fitter = Callable[[Sequence[Case]], Callable[[Case], Replayed]]
"""Learns a policy from cases; returns how that policy answers a case."""


def percentile(values: Sequence[float], share: float) -> float:
    """The `share` quantile of `values` (linear between order statistics; 0.1: the 10th
    percentile).

    Example:
        >>> percentile([4.0, 1.0, 3.0, 2.0], 0.5)
        2.5
    """
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * share
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


@dataclass(frozen=True)
class HeldOut:
    """A fitter's figures on every held-out half (one value per half, in draw order)."""

    accuracies: tuple[float, ...]
    strong_accuracies: tuple[float, ...]
    """The strong model's accuracy on the same halves."""
    ratios: tuple[float, ...]
    """Cost as a fraction of the strong model's cost on the same half."""

    @property
    def gaps(self) -> tuple[float, ...]:
        """Accuracy minus the strong model's, per half."""
        return tuple(a - s for a, s in zip(self.accuracies, self.strong_accuracies, strict=True))

    @property
    def accuracy(self) -> float:
        """Mean held-out accuracy."""
        return _mean(self.accuracies)

    @property
    def strong_accuracy(self) -> float:
        """Mean accuracy of the strong model on the same halves."""
        return _mean(self.strong_accuracies)

    @property
    def mean_gap(self) -> float:
        """Mean of (accuracy − strong accuracy)."""
        return _mean(self.gaps)

    @property
    def gap_p10(self) -> float:
        """10th percentile of (accuracy − strong accuracy): beaten on 90% of the halves."""
        return percentile(self.gaps, 0.1)

    @property
    def gap_sd(self) -> float:
        """Standard deviation of (accuracy − strong accuracy) over the halves."""
        mean = self.mean_gap
        return math.sqrt(_mean([(g - mean) ** 2 for g in self.gaps]))

    @property
    def mean_ratio(self) -> float:
        """Mean cost as a fraction of the strong model's."""
        return _mean(self.ratios)

    @property
    def ratio_p90(self) -> float:
        """90th percentile of the cost ratio."""
        return percentile(self.ratios, 0.9)


def _halves(
    cases: Sequence[Case], rng: random.Random
) -> tuple[list[Case], list[Case]]:  # fmt: skip
    by_group: dict[str, list[Case]] = {}
    for case in cases:
        by_group.setdefault(case.group, []).append(case)
    first: list[Case] = []
    second: list[Case] = []
    for group in by_group.values():
        rng.shuffle(group)
        middle = len(group) // 2
        first += group[:middle]
        second += group[middle:]
    return first, second


def cross_validate_fitters(
    cases: Sequence[Case],
    fitters: Mapping[str, Fitter],
    *,
    strong: str,
    repeats: int = 10,
    seed: int = 0,
) -> dict[str, HeldOut]:
    """Two-fold cross-validation of every fitter, repeated over `repeats` random halvings.

    Deterministic for a given `seed`; every fitter sees the same halves.

    Raises:
        ConfigError: no cases, or the strong model has no outcome for some case.
    """
    if not cases or any(strong not in c.outcomes for c in cases):
        raise ConfigError(f"cross-validation needs cases, each with an outcome of {strong!r}")
    rng = random.Random(seed)
    figures: dict[str, tuple[list[float], list[float], list[float]]] = {
        name: ([], [], []) for name in fitters
    }
    for _ in range(repeats):
        halves = _halves(cases, rng)
        for train, test in (halves, halves[::-1]):
            strong_cost = sum(c.outcomes[strong].cost_usd for c in test)
            strong_right = _mean([float(c.outcomes[strong].correct) for c in test])
            for name, fit in fitters.items():
                policy = fit(train)
                runs = [policy(case) for case in test]
                accuracies, strongs, ratios = figures[name]
                accuracies.append(_mean([float(r.correct) for r in runs]))
                strongs.append(strong_right)
                ratios.append(sum(r.cost_usd for r in runs) / strong_cost)
    return {name: HeldOut(tuple(a), tuple(s), tuple(r)) for name, (a, s, r) in figures.items()}


@dataclass(frozen=True)
class CrossValidation:
    """Cascades fitted on one half of the data and scored on the other, many times."""

    accuracy: float
    """Mean held-out accuracy of the fitted cascades."""
    strong_accuracy: float
    """Mean held-out accuracy of the strong model on the same halves."""
    gap_sd: float
    """Standard deviation, over the splits, of (accuracy − strong accuracy)."""
    cost_ratio: float
    """Mean held-out cost as a fraction of the strong model's."""
    splits: int
    gap_p10: float = 0.0
    """10th percentile, over the splits, of (accuracy − strong accuracy)."""
    cost_ratio_p90: float = 0.0
    """90th percentile of the held-out cost ratio."""


def cross_validate(
    groups: Mapping[str, Sequence[Query]],
    *,
    strong: str,
    repeats: int = 10,
    seed: int = 0,
    max_cost_ratio: float = 0.25,
    pool: int = 4,
    cheap_ratio: float = 0.1,
    first: Mapping[str, Sequence[str]] | None = None,
    c: float = 0.3,
) -> CrossValidation:
    """Two-fold cross-validation of `fit_cascades`, repeated over `repeats` random splits.

    Each group is split in halves; cascades fitted on one half are replayed on the other, and
    the other way round. Deterministic for a given `seed`.
    """
    cases = [Case(group, "", query) for group, queries in groups.items() for query in queries]

    def fitter(train: Sequence[Case]) -> Callable[[Case], Replayed]:
        by_group: dict[str, list[Query]] = {}
        for case in train:
            by_group.setdefault(case.group, []).append(case.outcomes)
        fitted = fit_cascades(
            by_group,
            strong=strong,
            max_cost_ratio=max_cost_ratio,
            pool=pool,
            cheap_ratio=cheap_ratio,
            first={g: m for g, m in (first or {}).items() if g in by_group},
            c=c,
        )
        return lambda case: replay(fitted.cascades.get(case.group, fitted.default), case.outcomes)

    held = cross_validate_fitters(cases, {"fit": fitter}, strong=strong, repeats=repeats, seed=seed)
    result = held["fit"]
    return CrossValidation(
        accuracy=result.accuracy,
        strong_accuracy=result.strong_accuracy,
        gap_sd=result.gap_sd,
        cost_ratio=result.mean_ratio,
        splits=len(result.gaps),
        gap_p10=result.gap_p10,
        cost_ratio_p90=result.ratio_p90,
    )
