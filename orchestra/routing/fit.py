"""Fitting cascades on recorded answers: which cheap models to ask, per agent, within a budget.

Vocabulary: a *query* is one recorded question with, for each model, an `Outcome` — the key
of its answer (`orchestra.checks.answer_key`), whether it was right, what it cost, how many
tokens it wrote. `replay` runs a cascade over recorded queries exactly as the node runner would
run it live (same checks, same tie rules), without calling anything. A *group* is the queries
of one agent (a task type).

`fit_cascades` chooses one cascade per group. Groups share one exchange rate between accuracy
and cost, λ (correct answers per USD): each group takes the option maximising
`correct answers − λ × USD`, and λ is the smallest that keeps the total cost within
`max_cost_ratio` of the strong model's. One λ for all groups spends the budget where it buys
the most accuracy. The options:

- **Learned** (groups named in `first`, the recommended kind): the group's cheap models answer,
  a `Scored` check (`orchestra.routing.scored`) keeps the answer its logistic scorer trusts
  most, and the strong model is asked when that trust is below `strong accuracy − λ × strong
  cost` — the point where escalating buys more than λ correct answers per USD. The threshold
  follows from λ instead of being searched for: searched thresholds, like searched model
  subsets, won on the fitting data and lost on held-out data. (Or the strong model alone.)
- **Agreement** (other groups), a deliberately small family: the strong model alone; the best
  cheap model alone; a vote of three cheap models; two cheap models that must agree, else the
  strong model; the same with a third cheap model asked before the strong one. "Cheap" means
  a mean cost at most `cheap_ratio` times the strong model's on that group; the `pool` most
  accurate of them are used.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from orchestra.checks import Agree, Vote, plurality
from orchestra.errors import ConfigError
from orchestra.routing.cascade import Cascade, Stage
from orchestra.routing.logistic import Logistic, fit_logistic
from orchestra.routing.scored import Said, Scored, candidate_features

__all__ = ["Fit", "Outcome", "Replayed", "fit_cascades", "replay"]


@dataclass(frozen=True)
class Outcome:
    """One model's recorded answer to one query."""

    key: str | None
    """The answer's key (`orchestra.checks.answer_key` of its text); None: no final answer."""
    correct: bool
    cost_usd: float
    output_tokens: int = 0


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
        ConfigError: a stage uses a check other than `Agree`, `Vote` or `Scored` (or none),
            or no model of the cascade has an outcome for the query.
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
        elif isinstance(check, Scored):
            best = check.rank([Said(m, query[m].key, query[m].output_tokens) for m in models])
            chosen = len(models) - 1 if best is None else best.index
            accepted = best is not None and best.probability >= check.threshold
            if not (accepted or last):
                continue
        else:
            raise ConfigError(f"replay supports Agree, Vote and Scored checks, not {check!r}")
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


Option = tuple[Cascade, float, float]
"""A candidate cascade for one group, with its correct answers and USD over the group."""


@dataclass(frozen=True)
class _Menu:
    """A group's options: fixed cascades, and scored families whose threshold follows λ."""

    fixed: tuple[Option, ...]
    families: tuple[_ScoredFamily, ...]

    def at(self, lam: float) -> list[Option]:
        return [*self.fixed, *(family.at(lam) for family in self.families)]


def _options(
    queries: Sequence[Query],
    *,
    strong: str,
    pool: int,
    cheap_ratio: float,
) -> _Menu:
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
        return _weakest_first(names, accuracy, cost)

    top = Stage((strong,), Vote())
    cascades = [Cascade((Stage((strong,)),))]
    if cheap:
        cascades.append(Cascade((Stage((cheap[0],)),)))
    for trio in itertools.combinations(cheap, 3):
        cascades.append(Cascade((Stage(weakest_first(trio), Vote()),)))
    for pair in itertools.combinations(cheap, 2):
        agree = Stage(weakest_first(pair), Agree(2))
        cascades.append(Cascade((agree, top)))
        for third in cheap:
            if third not in pair:
                cascades.append(Cascade((agree, Stage((third,), Agree(2)), top)))
    return _Menu(tuple((cascade, *_replayed(cascade, queries)) for cascade in cascades), ())


def _weakest_first(
    names: Iterable[str], accuracy: Mapping[str, float], cost: Mapping[str, float]
) -> tuple[str, ...]:
    # Checks give ties to the answer asked last: let the strongest model be last.
    return tuple(sorted(names, key=lambda m: (accuracy[m], -cost[m], m)))


def _scored_menu(queries: Sequence[Query], first: Sequence[str], *, strong: str, c: float) -> _Menu:
    """The strong model alone, or `Scored(first)` then the strong model."""
    missing = sorted({m for m in (*first, strong) for q in queries if m not in q})
    if missing or not first:
        raise ConfigError(
            f"a scored cascade needs outcomes of its first-stage models and {strong!r} for "
            f"every query; missing: {', '.join(missing) or 'no first-stage models given'}"
        )
    accuracy = {m: _mean([float(q[m].correct) for q in queries]) for m in first}
    cost = {m: _mean([q[m].cost_usd for q in queries]) for m in first}
    models = _weakest_first(dict.fromkeys(first), accuracy, cost)
    alone = Cascade((Stage((strong,)),))
    family = _scored(queries, models, strong=strong, c=c)
    return _Menu(((alone, *_replayed(alone, queries)),), () if family is None else (family,))


def _replayed(cascade: Cascade, queries: Sequence[Query]) -> tuple[float, float]:
    """(correct answers, USD) of `cascade` over `queries`."""
    runs = [replay(cascade, q) for q in queries]
    return float(sum(r.correct for r in runs)), sum(r.cost_usd for r in runs)


def _said(query: Query, models: Sequence[str]) -> list[Said]:
    return [Said(m, query[m].key, query[m].output_tokens) for m in models]


@dataclass(frozen=True)
class _ScoredFamily:
    """`Scored(models)` then the strong model, at the threshold an exchange rate implies.

    Escalating one query buys `P(strong right) − P(kept answer right)` correct answers for
    the strong model's cost; at λ correct answers per USD it pays when the kept answer's
    probability is below `strong accuracy − λ × strong mean cost` (both measured on the
    group). Deriving the threshold from λ, rather than picking the best one on the fitting
    data, is what holds up on held-out data.
    """

    models: tuple[str, ...]
    scorer: Logistic
    strong: str
    strong_accuracy: float
    strong_cost: float
    """Mean USD per query of the strong model on the group."""
    probabilities: tuple[float, ...]
    """Each query's best probability, highest first (-1: no final answer)."""
    kept_right: tuple[float, ...]
    """Prefix sums, in that order, of the kept answer being right (first k queries)."""
    strong_right: tuple[float, ...]
    """Suffix sums, in that order, of the strong model being right (queries k onwards)."""
    strong_usd: tuple[float, ...]
    """Suffix sums, in that order, of the strong model's cost."""
    stage_usd: float

    def at(self, lam: float) -> Option:
        threshold = self.strong_accuracy - lam * self.strong_cost
        accepted = sum(1 for p in self.probabilities if p >= 0 and p >= threshold)
        cascade = Cascade(
            (Stage(self.models, Scored(self.models, self.scorer, threshold)), Stage((self.strong,)))
        )
        right = self.kept_right[accepted] + self.strong_right[accepted]
        return cascade, right, self.stage_usd + self.strong_usd[accepted]


def _scored(
    queries: Sequence[Query], models: tuple[str, ...], *, strong: str, c: float
) -> _ScoredFamily | None:
    """Fit a scorer on every distinct answer of `models` to every query, each labelled by the
    correctness of the latest model giving it (the answer `Scored` would keep)."""
    rows: list[list[float]] = []
    labels: list[bool] = []
    for query in queries:
        said = _said(query, models)
        latest = {s.key: i for i, s in enumerate(said) if s.key is not None}
        for key, index in latest.items():
            rows.append(candidate_features(models, said, key))
            labels.append(query[models[index]].correct)
    if not rows:
        return None
    scorer = fit_logistic(rows, labels, c=c)
    probe = Scored(models, scorer, 0.0)
    best: list[tuple[float, bool, Outcome]] = []
    for query in queries:
        top = probe.rank(_said(query, models))
        chosen = models[-1] if top is None else models[top.index]
        best.append(
            (-1.0 if top is None else top.probability, query[chosen].correct, query[strong])
        )
    best.sort(key=lambda row: -row[0])
    kept, strong_right, strong_usd = [0.0], [0.0], [0.0]
    for _, right, _ in best:
        kept.append(kept[-1] + float(right))
    for _, _, outcome in reversed(best):
        strong_right.append(strong_right[-1] + float(outcome.correct))
        strong_usd.append(strong_usd[-1] + outcome.cost_usd)
    return _ScoredFamily(
        models=models,
        scorer=scorer,
        strong=strong,
        strong_accuracy=_mean([float(q[strong].correct) for q in queries]),
        strong_cost=_mean([q[strong].cost_usd for q in queries]),
        probabilities=tuple(row[0] for row in best),
        kept_right=tuple(kept),
        strong_right=tuple(reversed(strong_right)),
        strong_usd=tuple(reversed(strong_usd)),
        stage_usd=sum(q[m].cost_usd for q in queries for m in models),
    )


def _pick(table: Sequence[tuple[float, float]], lam: float) -> int:
    # Ties: the cheaper option, then the earlier (simpler) one.
    return max(range(len(table)), key=lambda i: (table[i][0] - lam * table[i][1], -table[i][1], -i))


def _rate(menus: Mapping[str, _Menu], budget: float) -> tuple[float, dict[str, Option]]:
    """The smallest λ whose picks fit in `budget` USD (bisection on a log scale)."""

    def picks(lam: float) -> tuple[dict[str, list[Option]], dict[str, int]]:
        offered = {group: menu.at(lam) for group, menu in menus.items()}
        return offered, {g: _pick([(r, u) for _, r, u in o], lam) for g, o in offered.items()}

    def spent(lam: float) -> float:
        offered, chosen = picks(lam)
        return sum(offered[g][i][2] for g, i in chosen.items())

    if spent(0.0) <= budget:
        lam = 0.0
    else:
        low, high = -6.0, 12.0  # log10 of λ, in correct answers per USD
        for _ in range(80):
            middle = (low + high) / 2
            if spent(10**middle) <= budget:
                high = middle
            else:
                low = middle
        lam = 10**high
    offered, chosen = picks(lam)
    tables = {g: [(r, u) for _, r, u in o] for g, o in offered.items()}
    if lam > 0:
        chosen = _spend_the_rest(tables, chosen, budget)
    return lam, {g: offered[g][i] for g, i in chosen.items()}


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
    first: Mapping[str, Sequence[str]] | None = None,
    c: float = 0.3,
) -> Fit:
    """Fit a cascade per group within `max_cost_ratio` of the strong model's cost.

    Args:
        groups: recorded queries per agent name (task type).
        strong: the model the cascades escalate to, and whose cost is the yardstick.
        max_cost_ratio: most mean cost allowed, as a fraction of the strong model's.
        pool: how many cheap models the cascades may use per group.
        cheap_ratio: a model is cheap on a group when its mean cost there is at most this
            fraction of the strong model's.
        first: for the groups it names, the cheap models of a learned first stage: the
            group's cascade is `Scored(first[group])` then the strong model, with the scorer
            fitted on the group and the threshold set by the shared exchange rate (or the
            strong model alone, if that does better). Other groups choose among the
            agreement cascades.
        c: the scorers' inverse L2 penalty (see `orchestra.routing.logistic`).

    Raises:
        ConfigError: no groups, an empty group, or a strong model with no outcomes.
    """
    if not groups or any(not queries for queries in groups.values()):
        raise ConfigError("fit_cascades needs at least one group, and queries in each")
    chosen_first = first or {}
    unknown = sorted(set(chosen_first) - set(groups))
    if unknown:
        raise ConfigError(
            f"first-stage models given for unknown groups {unknown}; groups: {sorted(groups)}"
        )
    menus = {
        g: _scored_menu(qs, chosen_first[g], strong=strong, c=c)
        if g in chosen_first
        else _options(qs, strong=strong, pool=pool, cheap_ratio=cheap_ratio)
        for g, qs in groups.items()
    }
    every = [q for qs in groups.values() for q in qs]
    strong_cost = sum(q[strong].cost_usd for q in every)
    lam, chosen = _rate(menus, max_cost_ratio * strong_cost)
    _, pooled = _rate(
        {"*": _options(every, strong=strong, pool=pool, cheap_ratio=cheap_ratio)},
        max_cost_ratio * strong_cost,
    )
    correct = sum(right for _, right, _ in chosen.values())
    cost = sum(usd for _, _, usd in chosen.values())
    return Fit(
        cascades={g: option[0] for g, option in chosen.items()},
        default=pooled["*"][0],
        accuracy=correct / len(every),
        cost_usd=cost / len(every),
        strong_accuracy=_mean([float(q[strong].correct) for q in every]),
        strong_cost_usd=strong_cost / len(every),
        lam=lam,
    )
