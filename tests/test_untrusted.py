"""Untrusted text: JSON bounded in size and nesting, text made valid where it enters."""

from __future__ import annotations

import pytest

from orchestra._untrusted import MAX_JSON_CHARS, bounded, load_json, valid_text


def test_deep_nesting_is_a_value_error_not_a_recursion_error() -> None:
    """100,000 nested brackets fail as a ValueError saying so, never a RecursionError."""
    for text in ("[" * 100_000, "[" * 100_000 + "]" * 100_000, '{"a":' * 50_000):
        with pytest.raises(ValueError, match="the answer is not valid JSON: recursion limit"):
            load_json(text, what="the answer")


def test_long_text_is_refused_before_parsing() -> None:
    """Text over the bound is refused by its length, with the figures."""
    with pytest.raises(ValueError, match=r"is 11 characters long; orchestra reads at most 10"):
        load_json('"123456789"', what="it", max_chars=10)
    with pytest.raises(ValueError, match="reads at most"):
        bounded("x" * (MAX_JSON_CHARS + 1), what="it")


def test_ordinary_json_parses_as_python() -> None:
    """Plain JSON comes back as Python values, unicode included."""
    assert load_json('{"a": [1, 2.5, null, "é😀"]}', what="x") == {"a": [1, 2.5, None, "é😀"]}


def test_lone_surrogates_become_replacement_characters() -> None:
    """A lone surrogate (UTF-8 cannot hold it) becomes U+FFFD; a split pair is joined again."""
    assert valid_text("a\ud800b") == "a\ufffdb"
    assert valid_text("\ud83d\ude00") == "😀"
    assert valid_text(None) is None
    assert load_json('["a\ud800"]', what="x") == ["a\ufffd"]
    with pytest.raises(ValueError, match="not valid JSON"):
        load_json('"\\ud800"', what="x")  # an escaped lone surrogate is not valid JSON
