"""Fitting cascades on recorded answers: which cheap models to ask, per agent, within a budget.

Vocabulary: a *query* is one recorded question with, for each model, an `Outcome` — the key
of its answer (`orchestra.checks.answer_key`), whether it was right, what it cost. `replay`
runs a cascade over recorded queries exactly as the node runner would run it live (same
checks, same tie rules), without calling anything. A *group* is the queries of one agent (a
task type).

`fit_cascades` chooses one cascade per group from a deliberately small family — few choices
generalise; the larger families we tried won on the data they were fitted on and lost on
held-out data:

1. the strong model alone; the best cheap model alone; a vote of any three cheap models;
2. two cheap models that must agree, else the strong model (`Agree(2)`, then `Vote()`);
3. the same with a third cheap model asked before the strong one (2 of 3 must agree).

"Cheap" means a mean cost at most `cheap_ratio` times the strong model's on that group; the
`pool` most accurate of them are used. Groups share one exchange rate between accuracy and
cost, λ: each group takes the cascade maximising `correct answers − λ × USD`, and λ is the
smallest that keeps the total cost within `max_cost_ratio` of the strong model's. One λ for all
groups spends the budget where it buys the most accuracy.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from orchestra.checks import Agree, Vote, plurality
from orchestra.errors import ConfigError
from orchestra.routing.cascade import Cascade, Stage

__all__ = [
    "CrossValidation",
    "Fit",
    "Outcome",
    "Replayed",
    "cross_validate",
    "fit_cascades",
    "replay",
]


@dataclass(frozen=True)
class Outcome:
    """One model's recorded answer to one query."""

    key: str | None
    """The answer's key (`orchestra.checks.answer_key` of its text); None: no final answer."""
    correct: bool
    cost_usd: float


Query = Mapping[str, Outcome]
"""One recorded query: an outcome per model name."""


@dataclass(frozen=True)
class Replayed:
    """A cascade replayed on one query: the model whose answer is kept, and what it cost."""

    model: str
    correct: bool
    cost_usd: float


def replay(cascade: Cascade, query: Query) -> Replayed:
    """Run `cascade` on one recorded query, as the node runner would run it live.

    Availability and budgets are not replayed; models missing from the query are skipped.

    Raises:
        ConfigError: a stage uses a check other than `Agree` or `Vote` (or none), or no
            model of the cascade has an outcome for the query.
    """
    models: list[str] = []
    keys: list[str | None] = []
    cost = 0.0
    for position, stage in enumerate(cascade.stages):
        fresh = [m for m in stage.models if m in query and m not in models]
        if not fresh:
            continue
        first = len(models)
        for model in fresh:
            models.append(model)
            keys.append(query[model].key)
            cost += query[model].cost_usd
        last = all(
            not any(m in query and m not in models for m in later.models)
            for later in cascade.stages[position + 1 :]
        )
        check = stage.check
        if check is None:
            chosen = first
        elif isinstance(check, (Agree, Vote)):
            top = plurality(keys)
            chosen = len(models) - 1 if top is None else top[0]
            accepted = isinstance(check, Vote) or (top is not None and top[1] >= check.min_agree)
            if not (accepted or last):
                continue
        else:
            raise ConfigError(f"replay supports Agree and Vote checks, not {check!r}")
        return Replayed(models[chosen], query[models[chosen]].correct, cost)
    raise ConfigError("no model of the cascade has a recorded outcome for this query")


@dataclass(frozen=True)
class Fit:
    """Fitted cascades, and how they did on the data they were fitted on."""

    cascades: dict[str, Cascade]
    """A cascade per group (agent name)."""
    default: Cascade
    """A cascade fitted on every group pooled, for agents with no group of their own."""
    accuracy: float
    cost_usd: float
    """Mean cost per query, in USD."""
    strong_accuracy: float
    strong_cost_usd: float
    lam: float
    """The exchange rate chosen: correct answers per USD."""


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _options(
    queries: Sequence[Query], *, strong: str, pool: int, cheap_ratio: float
) -> list[Cascade]:
    models = sorted({m for q in queries for m in q})
    if strong not in models:
        raise ConfigError(f"the strong model {strong!r} has no recorded outcomes")
    accuracy = {m: _mean([float(q[m].correct) for q in queries if m in q]) for m in models}
    cost = {m: _mean([q[m].cost_usd for q in queries if m in q]) for m in models}
    cheap = sorted(
        (m for m in models if m != strong and cost[m] <= cheap_ratio * cost[strong]),
        key=lambda m: (-accuracy[m], cost[m], m),
    )[:pool]

    def weakest_first(names: Sequence[str]) -> tuple[str, ...]:
        # Ties go to the answer asked last: let the strongest model be last.
        return tuple(sorted(names, key=lambda m: (accuracy[m], -cost[m], m)))

    top = Stage((strong,), Vote())
    options = [Cascade((Stage((strong,)),))]
    if cheap:
        options.append(Cascade((Stage((cheap[0],)),)))
    for trio in itertools.combinations(cheap, 3):
        options.append(Cascade((Stage(weakest_first(trio), Vote()),)))
    for pair in itertools.combinations(cheap, 2):
        agree = Stage(weakest_first(pair), Agree(2))
        options.append(Cascade((agree, top)))
        for third in cheap:
            if third not in pair:
                options.append(Cascade((agree, Stage((third,), Agree(2)), top)))
    return options


def _table(options: Sequence[Cascade], queries: Sequence[Query]) -> list[tuple[float, float]]:
    """(correct answers, USD) of each option over `queries`."""
    table: list[tuple[float, float]] = []
    for option in options:
        runs = [replay(option, q) for q in queries]
        table.append((float(sum(r.correct for r in runs)), sum(r.cost_usd for r in runs)))
    return table


def _pick(table: Sequence[tuple[float, float]], lam: float) -> int:
    # Ties: the cheaper option, then the earlier (simpler) one.
    return max(range(len(table)), key=lambda i: (table[i][0] - lam * table[i][1], -table[i][1], -i))


def _rate(
    tables: Mapping[str, Sequence[tuple[float, float]]], budget: float
) -> tuple[float, dict[str, int]]:
    """The smallest λ whose picks fit in `budget` USD (bisection on a log scale)."""

    def picks(lam: float) -> dict[str, int]:
        return {group: _pick(table, lam) for group, table in tables.items()}

    def spent(chosen: Mapping[str, int]) -> float:
        return sum(tables[g][i][1] for g, i in chosen.items())

    if spent(picks(0.0)) <= budget:
        return 0.0, picks(0.0)
    low, high = -6.0, 12.0  # log10 of λ, in correct answers per USD
    for _ in range(80):
        middle = (low + high) / 2
        if spent(picks(10**middle)) <= budget:
            high = middle
        else:
            low = middle
    return 10**high, _spend_the_rest(tables, picks(10**high), budget)


def _spend_the_rest(
    tables: Mapping[str, Sequence[tuple[float, float]]], chosen: dict[str, int], budget: float
) -> dict[str, int]:
    """Upgrade groups while money is left: one exchange rate for all groups (λ) can leave part
    of the budget unspent, or miss a better mix; take the best correct-per-USD upgrade that
    still fits, until none does. Then keep the better of that and every group's most accurate
    option, when that fits (so the strong model alone, when affordable, is never beaten)."""
    chosen = dict(chosen)

    def spent(picks: Mapping[str, int]) -> float:
        return sum(tables[g][i][1] for g, i in picks.items())

    def correct(picks: Mapping[str, int]) -> float:
        return sum(tables[g][i][0] for g, i in picks.items())

    while True:
        left = budget - spent(chosen)
        best: tuple[float, str, int] | None = None
        for group, table in tables.items():
            now_correct, now_cost = table[chosen[group]]
            for index, (right, cost) in enumerate(table):
                gain, extra = right - now_correct, cost - now_cost
                if gain <= 0 or extra > left + 1e-15:
                    continue
                rate = gain / extra if extra > 0 else float("inf")
                if best is None or rate > best[0]:
                    best = (rate, group, index)
        if best is None:
            break
        chosen[best[1]] = best[2]
    best_each = {g: max(range(len(t)), key=lambda i, t=t: t[i][0]) for g, t in tables.items()}
    if spent(best_each) <= budget and correct(best_each) > correct(chosen):
        return best_each
    return chosen


def fit_cascades(
    groups: Mapping[str, Sequence[Query]],
    *,
    strong: str,
    max_cost_ratio: float = 0.25,
    pool: int = 4,
    cheap_ratio: float = 0.1,
) -> Fit:
    """Fit a cascade per group within `max_cost_ratio` of the strong model's cost.

    Args:
        groups: recorded queries per agent name (task type).
        strong: the model the cascades escalate to, and whose cost is the yardstick.
        max_cost_ratio: most mean cost allowed, as a fraction of the strong model's.
        pool: how many cheap models the cascades may use per group.
        cheap_ratio: a model is cheap on a group when its mean cost there is at most this
            fraction of the strong model's.

    Raises:
        ConfigError: no groups, an empty group, or a strong model with no outcomes.
    """
    if not groups or any(not queries for queries in groups.values()):
        raise ConfigError("fit_cascades needs at least one group, and queries in each")
    options = {
        g: _options(qs, strong=strong, pool=pool, cheap_ratio=cheap_ratio)
        for g, qs in groups.items()
    }
    tables = {g: _table(options[g], groups[g]) for g in groups}
    every = [q for qs in groups.values() for q in qs]
    strong_cost = sum(q[strong].cost_usd for q in every)
    lam, chosen = _rate(tables, max_cost_ratio * strong_cost)
    pooled = _options(every, strong=strong, pool=pool, cheap_ratio=cheap_ratio)
    _, pooled_pick = _rate({"*": _table(pooled, every)}, max_cost_ratio * strong_cost)
    correct = sum(tables[g][i][0] for g, i in chosen.items())
    cost = sum(tables[g][i][1] for g, i in chosen.items())
    return Fit(
        cascades={g: options[g][i] for g, i in chosen.items()},
        default=pooled[pooled_pick["*"]],
        accuracy=correct / len(every),
        cost_usd=cost / len(every),
        strong_accuracy=_mean([float(q[strong].correct) for q in every]),
        strong_cost_usd=strong_cost / len(every),
        lam=lam,
    )


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


def cross_validate(
    groups: Mapping[str, Sequence[Query]],
    *,
    strong: str,
    repeats: int = 10,
    seed: int = 0,
    max_cost_ratio: float = 0.25,
    pool: int = 4,
    cheap_ratio: float = 0.1,
) -> CrossValidation:
    """Two-fold cross-validation of `fit_cascades`, repeated over `repeats` random splits.

    Each group is split in halves; cascades fitted on one half are replayed on the other, and
    the other way round. Deterministic for a given `seed`.
    """
    rng = random.Random(seed)
    gaps: list[float] = []
    accuracies: list[float] = []
    strongs: list[float] = []
    ratios: list[float] = []
    for _ in range(repeats):
        halves: tuple[dict[str, list[Query]], dict[str, list[Query]]] = ({}, {})
        for group, queries in groups.items():
            order = list(queries)
            rng.shuffle(order)
            middle = len(order) // 2
            halves[0][group], halves[1][group] = order[:middle], order[middle:]
        for train, test in (halves, halves[::-1]):
            usable = {g: qs for g, qs in train.items() if qs and test.get(g)}
            fitted = fit_cascades(
                usable,
                strong=strong,
                max_cost_ratio=max_cost_ratio,
                pool=pool,
                cheap_ratio=cheap_ratio,
            )
            runs = [replay(fitted.cascades[g], q) for g in usable for q in test[g]]
            held = [q for g in usable for q in test[g]]
            accuracy = _mean([float(r.correct) for r in runs])
            strong_accuracy = _mean([float(q[strong].correct) for q in held])
            accuracies.append(accuracy)
            strongs.append(strong_accuracy)
            gaps.append(accuracy - strong_accuracy)
            ratios.append(sum(r.cost_usd for r in runs) / sum(q[strong].cost_usd for q in held))
    mean_gap = _mean(gaps)
    spread = math.sqrt(_mean([(g - mean_gap) ** 2 for g in gaps]))
    return CrossValidation(
        accuracy=_mean(accuracies),
        strong_accuracy=_mean(strongs),
        gap_sd=spread,
        cost_ratio=_mean(ratios),
        splits=len(gaps),
    )
