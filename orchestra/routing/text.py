"""Hashed TF-IDF features of prompts, for routers that read the prompt (pure Python).

A prompt becomes a sparse vector: its lower-cased words and word pairs are hashed (CRC-32, the
same in every process) into `buckets` columns; each column's weight is `1 + log(count)` times
its inverse document frequency `1 + log((1 + n) / (1 + df))`, learned on the prompts the
features are fitted on; the vector is scaled to unit length, so the dot product of two vectors
is their cosine similarity. Nothing is downloaded and nothing outside the standard library is
needed: good enough to tell kinds of prompts apart (arithmetic stories from code from algebra),
which is what the cluster and threshold routers built on it use.
"""

from __future__ import annotations

import itertools
import math
import operator
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat

__all__ = ["SparseVector", "TfIdf", "cosine"]

SparseVector = Mapping[int, float]
"""Column → weight; absent columns are 0."""

_WORD = re.compile(r"[a-z0-9_]+|[^\sa-z0-9_]")


def _terms(text: str) -> list[str]:
    words = _WORD.findall(text.lower())
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


def cosine(one: SparseVector, other: SparseVector) -> float:
    """The dot product of two unit vectors: their cosine similarity."""
    if len(one) > len(other):
        one, other = other, one
    # map() keeps the loop in C: routers compare every prompt with every centre or example.
    return sum(map(operator.mul, one.values(), map(other.get, one.keys(), repeat(0.0))))


@dataclass(frozen=True)
class TfIdf:
    """Hashed TF-IDF vectors of texts (see the module docstring).

    Example:
        >>> texts = ["6 * 7 apples?", "def f(x): return x", "2 + 2 apples?", "def g(y): pass"]
        >>> features = TfIdf.fit(texts)
        >>> sums, code = features.vector("3 * 4 apples?"), features.vector("def h(z): return z")
        >>> cosine(sums, features.vector(texts[2])) > cosine(sums, code)
        True
    """

    idf: Mapping[int, float]
    """Inverse document frequency of the columns seen when fitting."""
    unseen: float
    """The weight of a column no fitted text had."""
    buckets: int

    @classmethod
    def fit(cls, texts: Iterable[str], *, buckets: int = 1 << 16, max_share: float = 0.5) -> TfIdf:
        """Learn the inverse document frequencies of `texts`.

        Args:
            texts: the texts to learn from.
            buckets: how many hashed columns.
            max_share: columns found in more than this share of the texts are dropped — the
                boilerplate every prompt shares says nothing about any of them.

        Raises:
            ValueError: `buckets` is less than 1.
        """
        if buckets < 1:
            raise ValueError(f"TfIdf needs at least one bucket, not {buckets}")
        frequency: Counter[int] = Counter()
        count = 0
        for text in texts:
            count += 1
            frequency.update({_column(term, buckets) for term in _terms(text)})
        idf = {
            c: 1 + math.log((1 + count) / (1 + df)) if df <= max_share * count else 0.0
            for c, df in frequency.items()
        }
        return cls(idf, 1 + math.log(1 + count), buckets)

    def vector(self, text: str) -> dict[int, float]:
        """The unit-length TF-IDF vector of `text` (empty when it has no terms)."""
        counts = Counter(_column(term, self.buckets) for term in _terms(text))
        weights = {c: (1 + math.log(n)) * self.idf.get(c, self.unseen) for c, n in counts.items()}
        weights = {c: w for c, w in weights.items() if w}
        norm = math.sqrt(sum(w * w for w in weights.values()))
        return {c: w / norm for c, w in weights.items()} if norm else {}

    def vectors(self, texts: Sequence[str]) -> list[dict[int, float]]:
        """`vector` of each text, in order."""
        return [self.vector(text) for text in texts]


def _column(term: str, buckets: int) -> int:
    return zlib.crc32(term.encode("utf-8")) % buckets
