"""Hashed TF-IDF features: unit vectors, cosine similarity, boilerplate dropped."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestra.routing.text import TfIdf, cosine

TEXTS = [
    "Please answer. What is 6 * 7 apples?",
    "Please answer. def f(x): return x + 1",
    "Please answer. What is 2 + 2 apples?",
    "Please answer. def g(items): return sorted(items)",
]


def test_similar_texts_are_closer_than_different_ones() -> None:
    """Arithmetic questions are nearer each other than code; a text is at cosine 1 from itself."""
    features = TfIdf.fit(TEXTS)
    sums, code = features.vector("What is 3 * 4 apples?"), features.vector("def h(y): return y")
    assert cosine(sums, features.vector(TEXTS[0])) > cosine(sums, features.vector(TEXTS[1]))
    assert cosine(code, features.vector(TEXTS[3])) > cosine(code, features.vector(TEXTS[2]))
    assert math.isclose(cosine(sums, sums), 1.0)


def test_boilerplate_every_text_shares_is_dropped() -> None:
    """A word found in more than max_share of the fitted texts weighs nothing."""
    features = TfIdf.fit(TEXTS)
    assert features.vector("Please answer.") == {}
    assert features.vector("") == {}
    assert TfIdf.fit(TEXTS, max_share=1.0).vector("Please answer.") != {}


@settings(max_examples=40)
@given(st.lists(st.text(max_size=60), min_size=1, max_size=6), st.text(max_size=60),
       st.text(max_size=60))  # fmt: skip
def test_vectors_are_unit_length_and_cosine_is_symmetric(
    corpus: list[str], one: str, other: str
) -> None:
    """Every non-empty vector has length 1; cosine is symmetric and within [0, 1] (property)."""
    features = TfIdf.fit(corpus, buckets=64)
    a, b = features.vector(one), features.vector(other)
    for vector in (a, b):
        assert not vector or math.isclose(sum(w * w for w in vector.values()), 1.0)
    assert math.isclose(cosine(a, b), cosine(b, a), abs_tol=1e-12)
    assert -1e-9 <= cosine(a, b) <= 1 + 1e-9
