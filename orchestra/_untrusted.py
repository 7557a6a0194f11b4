"""Reading text that orchestra does not control: a boss's plan, a model's answer, tool arguments.

Such text can be anything a broken or hostile provider sends: megabytes, 100,000 nested
brackets, lone surrogates. `load_json` bounds its size before parsing and parses with
pydantic-core's JSON parser (strict JSON, nesting capped at about 200 levels inside the
parser, in Rust), so no answer can exhaust the interpreter's stack or hold the event loop.
"""

from __future__ import annotations

from typing import Any, overload

from pydantic_core import from_json

__all__ = ["MAX_JSON_CHARS", "bounded", "load_json", "valid_text"]

MAX_JSON_CHARS = 4_000_000
"""The longest JSON text orchestra parses from a model (about 4 MB): far above any plan, tool
call or structured answer, far below what could hold the event loop."""


def load_json(text: str, *, what: str, max_chars: int = MAX_JSON_CHARS) -> Any:
    """Parse untrusted JSON text, bounded in size and nesting.

    Example:
        >>> load_json('{"a": [1, 2]}', what="the answer")
        {'a': [1, 2]}
        >>> load_json("[" * 100_000, what="the answer")
        Traceback (most recent call last):
        ...
        ValueError: the answer is not valid JSON: recursion limit exceeded at line 1 column 202

    Raises:
        ValueError: the text is longer than `max_chars`, nested too deep, or not JSON; the
            message starts with `what`.
    """
    text = bounded(text, what=what, max_chars=max_chars)
    try:
        return from_json(text, cache_strings="keys")
    except ValueError as exc:
        raise ValueError(f"{what} is not valid JSON: {exc}") from None


def bounded(text: str, *, what: str, max_chars: int = MAX_JSON_CHARS) -> str:
    """`text` ready for a parser written in Rust: at most `max_chars` long, and any lone
    surrogate (which UTF-8 cannot hold) replaced by U+FFFD.

    Raises:
        ValueError: the text is longer than `max_chars`.
    """
    if len(text) > max_chars:
        raise ValueError(
            f"{what} is {len(text):,} characters long; orchestra reads at most {max_chars:,}"
        )
    return valid_text(text)


@overload
def valid_text(text: str) -> str: ...
@overload
def valid_text(text: None) -> None: ...
def valid_text(text: str | None) -> str | None:
    """`text` with every lone surrogate replaced by U+FFFD (None stays None).

    JSON lets a provider send `"\\ud800"`, which decodes to a code point no UTF-8 file,
    terminal, journal or HTTP request can hold; replacing it where text enters keeps a paid
    answer usable everywhere, as decoding with `errors="replace"` would have.

    Example:
        >>> valid_text("ok \\ud800 then") == "ok \\ufffd then"
        True
    """
    if text is None:
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Through UTF-16: a split pair is joined again, each lone half becomes one U+FFFD.
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text
