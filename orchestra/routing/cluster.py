"""A cluster router (after "The Avengers", Zhang et al. 2025): similar prompts, same model.

Fitting: the recorded prompts become hashed TF-IDF vectors (`orchestra.routing.text`), grouped
into `clusters` by spherical k-means (cosine similarity; k-means++ seeding from an injected
random generator, so a seed gives the same clusters). In each cluster every model's accuracy
and mean cost are measured on the recorded outcomes, and the cluster's model is the cheapest
whose accuracy is within `epsilon` of the cluster's best. Routing: a new prompt goes to its
nearest cluster's model (the next in that cluster's order when it is not usable: circuit
open, over budget).

It reads only the prompt, so it is one call per node — no agreement check, no escalation.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from orchestra.errors import ConfigError
from orchestra.routing.base import RouteDecision, RouteRequest
from orchestra.routing.fit import Query
from orchestra.routing.text import SparseVector, TfIdf, cosine

__all__ = ["ClusterRouter", "fit_cluster_router"]


@dataclass(frozen=True)
class ClusterRouter:
    """Route a prompt to the model chosen for its nearest cluster (see the module docstring).

    Build one with `fit_cluster_router`.
    """

    features: TfIdf
    centroids: tuple[SparseVector, ...]
    """Each cluster's centre (unit length)."""
    choices: tuple[tuple[str, ...], ...]
    """Each cluster's models in order of preference: the chosen one first."""
    epsilon: float

    def cluster(self, prompt: str) -> int:
        """The index of the cluster nearest to `prompt`."""
        vector = self.features.vector(prompt)
        return max(
            range(len(self.centroids)), key=lambda i: (cosine(vector, self.centroids[i]), -i)
        )

    def choose(self, request: RouteRequest) -> RouteDecision:
        """The nearest cluster's model, or the next usable one in its order.

        Raises:
            ConfigError: no model of the cluster's order is a candidate for the agent.
        """
        index = self.cluster(request.prompt)
        usable = {s.name for s in request.usable()}
        known = {s.name for s in request.candidates}
        order = self.choices[index]
        model = next((m for m in order if m in usable), None) or next(
            (m for m in order if m in known), None
        )
        if model is None:
            raise ConfigError(
                f"no model of cluster {index + 1} ({', '.join(order)}) is a candidate for "
                f"agent {request.agent.name!r}; check the constellation and the agent's tags"
            )
        skipped = "" if model == order[0] else f" ({order[0]} is not usable)"
        reason = (
            f"cluster {index + 1}/{len(self.centroids)}: {model}, the cheapest within "
            f"{self.epsilon:.0%} of the best there{skipped}"
        )
        return RouteDecision(model, reason)


def fit_cluster_router(
    prompts: Sequence[str],
    queries: Sequence[Query],
    *,
    clusters: int = 8,
    epsilon: float = 0.02,
    seed: int = 0,
    iterations: int = 20,
) -> ClusterRouter:
    """Cluster the recorded prompts and choose a model per cluster.

    Args:
        prompts: the recorded prompts.
        queries: each prompt's recorded outcome per model (same order).
        clusters: how many clusters (fewer if there are fewer distinct prompts).
        epsilon: accuracy a cluster's model may give up against the cluster's best, for a
            lower cost (0.02: two points).
        seed: seeds the k-means++ start.
        iterations: at most this many k-means rounds.

    Raises:
        ConfigError: no prompts, or prompts and queries of different lengths.
    """
    if not prompts or len(prompts) != len(queries):
        raise ConfigError(
            f"fit_cluster_router needs prompts and their outcomes, as many of each "
            f"(got {len(prompts)} prompts, {len(queries)} outcomes)"
        )
    features = TfIdf.fit(prompts)
    vectors = features.vectors(prompts)
    centroids = _kmeans(vectors, clusters, random.Random(seed), iterations)
    members: list[list[Query]] = [[] for _ in centroids]
    for vector, query in zip(vectors, queries, strict=True):
        nearest = max(range(len(centroids)), key=lambda i: (cosine(vector, centroids[i]), -i))
        members[nearest].append(query)
    overall = _order(queries, epsilon)
    choices = tuple(_order(group, epsilon) if group else overall for group in members)
    return ClusterRouter(features, tuple(centroids), choices, epsilon)


def _order(queries: Sequence[Query], epsilon: float) -> tuple[str, ...]:
    """The models by preference: within `epsilon` of the best accuracy, cheapest first; then
    the rest, most accurate first."""
    models = sorted({m for q in queries for m in q})
    accuracy: dict[str, float] = {}
    cost: dict[str, float] = {}
    for model in models:
        seen = [q[model] for q in queries if model in q]
        accuracy[model] = sum(o.correct for o in seen) / len(seen)
        cost[model] = sum(o.cost_usd for o in seen) / len(seen)
    best = max(accuracy.values())
    near = sorted((m for m in models if accuracy[m] >= best - epsilon), key=lambda m: (cost[m], m))
    rest = sorted((m for m in models if m not in near), key=lambda m: (-accuracy[m], cost[m], m))
    return (*near, *rest)


def _kmeans(
    vectors: Sequence[SparseVector], clusters: int, rng: random.Random, iterations: int
) -> list[SparseVector]:
    """Spherical k-means: unit centroids, cosine similarity, k-means++ seeding."""
    distinct = list({tuple(sorted(v.items())): v for v in vectors if v}.values())
    if not distinct:
        return [{}]
    centroids: list[SparseVector] = [distinct[rng.randrange(len(distinct))]]
    while len(centroids) < min(clusters, len(distinct)):
        far = [max(0.0, 1 - max(cosine(v, c) for c in centroids)) for v in distinct]
        total = sum(far)
        if total <= 0:
            break
        pick, acc = rng.random() * total, 0.0
        for vector, weight in zip(distinct, far, strict=True):
            acc += weight
            if acc >= pick and weight > 0:
                centroids.append(vector)
                break
    assignment: list[int] = []
    for _ in range(iterations):
        latest = [
            max(range(len(centroids)), key=lambda i, v=v: (cosine(v, centroids[i]), -i))
            for v in vectors
        ]
        if latest == assignment:
            break
        assignment = latest
        centroids = [
            _centre([v for v, a in zip(vectors, assignment, strict=True) if a == i]) or c
            for i, c in enumerate(centroids)
        ]
    return centroids


def _centre(vectors: Sequence[SparseVector]) -> dict[int, float]:
    total: dict[int, float] = {}
    for vector in vectors:
        for column, weight in vector.items():
            total[column] = total.get(column, 0.0) + weight
    norm = sum(w * w for w in total.values()) ** 0.5
    return {c: w / norm for c, w in total.items()} if norm else {}
