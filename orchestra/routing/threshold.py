"""A two-model threshold router (after RouteLLM, Ong et al. 2024): weak model unless the prompt
looks like one the strong model is needed for.

A logistic classifier over the prompt's hashed TF-IDF features (`orchestra.routing.text`)
estimates the probability that the strong model is needed — that it answers right where the
weak one does not — and the router sends the prompt to the strong model when that probability
is at least `threshold`. Fitting learns the classifier on recorded outcomes (stochastic
gradient descent with an L2 penalty, pure Python) and sets the threshold from a cost budget:
the strong model takes the prompts with the highest probabilities, as many as the budget pays
for. Two classifiers are fitted, each on half of the data, and the threshold is read from the
probabilities each gives the other half; the router averages the two. Read from a classifier
scoring the data it was fitted on, the threshold would sit among memorised, overconfident
probabilities, and the share of new prompts sent to the strong model would drift off budget.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from orchestra.errors import ConfigError
from orchestra.routing.base import RouteDecision, RouteRequest
from orchestra.routing.fit import Query
from orchestra.routing.text import SparseVector, TfIdf

__all__ = ["Classifier", "ThresholdRouter", "fit_threshold_router"]


@dataclass(frozen=True)
class Classifier:
    """A logistic classifier over sparse features."""

    weights: Mapping[int, float]
    bias: float

    def probability(self, vector: SparseVector) -> float:
        """The modelled probability of the positive class for `vector`."""
        score = self.bias + sum(self.weights.get(c, 0.0) * w for c, w in vector.items())
        return 1 / (1 + math.exp(-max(-30.0, min(30.0, score))))


@dataclass(frozen=True)
class ThresholdRouter:
    """Send a prompt to `strong` when the classifier says it is needed, else to `weak`.

    Build one with `fit_threshold_router`.
    """

    weak: str
    strong: str
    features: TfIdf
    classifiers: tuple[Classifier, ...]
    """Averaged: each fitted on a part of the data."""
    threshold: float
    """Least probability that the strong model is needed for it to be asked."""

    def needed(self, prompt: str) -> float:
        """The probability that `prompt` needs the strong model."""
        vector = self.features.vector(prompt)
        return sum(c.probability(vector) for c in self.classifiers) / len(self.classifiers)

    def choose(self, request: RouteRequest) -> RouteDecision:
        """The strong model at or above the threshold, else the weak one (the other one when
        the chosen one is not usable).

        Raises:
            ConfigError: neither model is a candidate for the agent.
        """
        known = {s.name for s in request.candidates}
        usable = {s.name for s in request.usable()}
        probability = self.needed(request.prompt)
        pick, other = (self.strong, self.weak)
        if probability < self.threshold:
            pick, other = other, pick
        if pick not in usable and other in usable:
            pick = other
        if pick not in known:
            raise ConfigError(
                f"neither {self.weak!r} nor {self.strong!r} is a candidate for agent "
                f"{request.agent.name!r}; check the constellation and the agent's tags"
            )
        side = ">=" if probability >= self.threshold else "<"
        reason = f"P({self.strong} needed) {probability:.2f} {side} threshold {self.threshold:.2f}"
        return RouteDecision(pick, reason)


def fit_threshold_router(
    prompts: Sequence[str],
    queries: Sequence[Query],
    *,
    weak: str,
    strong: str,
    max_cost_ratio: float = 0.25,
    c: float = 1.0,
    epochs: int = 10,
    seed: int = 0,
) -> ThresholdRouter:
    """Fit the classifier on recorded outcomes and the threshold on a budget.

    Args:
        prompts: the recorded prompts.
        queries: each prompt's recorded outcome per model (same order).
        weak, strong: the two models.
        max_cost_ratio: the mean cost allowed, as a fraction of the strong model's.
        c: inverse strength of the L2 penalty (larger: a closer fit).
        epochs: passes of stochastic gradient descent over the data.
        seed: seeds the halves and the order of the passes.

    Raises:
        ConfigError: no prompts, lengths differ, or a model has no outcome for some query.
    """
    if not prompts or len(prompts) != len(queries):
        raise ConfigError(
            f"fit_threshold_router needs prompts and their outcomes, as many of each "
            f"(got {len(prompts)} prompts, {len(queries)} outcomes)"
        )
    if any(weak not in q or strong not in q for q in queries):
        raise ConfigError(f"every query needs outcomes of {weak!r} and {strong!r}")
    features = TfIdf.fit(prompts)
    vectors = features.vectors(prompts)
    labels = [q[strong].correct and not q[weak].correct for q in queries]
    rng = random.Random(seed)
    order = list(range(len(vectors)))
    rng.shuffle(order)
    halves = (order[::2], order[1::2])
    held: dict[int, float] = {}
    classifiers: list[Classifier] = []
    for fit_on, score in (halves, halves[::-1]):
        part = _sgd([vectors[i] for i in fit_on], [labels[i] for i in fit_on], c, epochs, rng)
        held |= {i: part.probability(vectors[i]) for i in score}
        classifiers.append(part)
    budget = max_cost_ratio * sum(q[strong].cost_usd for q in queries)
    spent = sum(q[weak].cost_usd for q in queries)
    threshold = math.inf
    for index in sorted(held, key=lambda i: -held[i]):
        extra = queries[index][strong].cost_usd - queries[index][weak].cost_usd
        if spent + extra > budget:
            break
        spent += extra
        threshold = held[index]
    return ThresholdRouter(weak, strong, features, tuple(classifiers), threshold)


def _sgd(
    vectors: Sequence[SparseVector], labels: Sequence[bool], c: float, epochs: int,
    rng: random.Random,
) -> Classifier:  # fmt: skip
    """L2-penalised logistic regression by stochastic gradient descent (AdaGrad steps)."""
    weights: dict[int, float] = {}
    squares: dict[int, float] = {}
    bias, bias_square = 0.0, 0.0
    penalty = 1 / (c * max(len(vectors), 1))
    order = list(range(len(vectors)))
    for _ in range(epochs):
        rng.shuffle(order)
        for index in order:
            vector = vectors[index]
            score = bias + sum(weights.get(col, 0.0) * w for col, w in vector.items())
            error = 1 / (1 + math.exp(-max(-30.0, min(30.0, score)))) - float(labels[index])
            for column, weight in vector.items():
                gradient = error * weight + penalty * weights.get(column, 0.0)
                squares[column] = squares.get(column, 0.0) + gradient * gradient
                weights[column] = weights.get(column, 0.0) - 0.5 * gradient / math.sqrt(
                    squares[column]
                )
            bias_square += error * error
            bias -= 0.5 * error / math.sqrt(bias_square) if bias_square else 0.0
    return Classifier(weights, bias)
