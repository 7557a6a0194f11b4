"""Final answers and their keys: what a reply concludes, in a form answers are compared by.

Vocabulary:

- A reply's **final answer** (`final_answer`) is what it states as its conclusion: the `answer`
  field of a JSON object (fenced or not, broken JSON included), a `\\boxed{...}`, or an
  `Answer: ...` line.
- Its **key** (`answer_key`) is that final answer normalised (`normalise_answer`), so that two
  models reaching the same result in different words compare equal. A short one-line reply
  that states no final answer ("Paris.") is its own final answer; a longer one has no key and
  agrees with nothing.

Normalising, by kind of answer: numbers lose currency signs, separators, trailing zeros and
units (`"$17,500.00"`, `"17500"` and `"17,500 dollars"` are `17500`; `"twelve"` is `12`);
Python literals are parsed (`[1,2]` is `[1, 2]`), and a quoted string is an exact value (case
and spacing kept: `'CW'` and `'cw'` differ); math loses `$...$`, `\\left`/`\\right` and
`\\text{}`; plain words lose case, punctuation and extra spacing (`"Paris"`, `"paris."` and
`" PARIS! "` are `paris`).
"""

from __future__ import annotations

import ast
import json
import math
import re
import warnings
from typing import Any, cast

__all__ = ["answer_key", "final_answer", "json_object", "normalise_answer"]

_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\n(.*?)```", re.DOTALL)
# `"answer": "..."` (a JSON string with escapes) or `"answer": 42` (a bare value).
_ANSWER_FIELD = re.compile(r'"answer"\s*:\s*("(?:[^"\\]|\\.)*"|[^,}\n]+)', re.DOTALL)
_ANSWER_LINE = re.compile(r"(?im)^[^\n]*?\banswer(?:\s+is)?\s*[:=][ \t]*(.+?)\s*$")
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[-+]?\.\d+")
_UNITS = re.compile(r"\s*(?:dollars?|cents?|units?|%|percent)$", re.IGNORECASE)


def _boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}`, braces balanced."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, begin = 0, start + len("\\boxed{")
    for index in range(begin, len(text)):
        char = text[index]
        if char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return text[begin:index]
            depth -= 1
    return None


# LaTeX in JSON strings is often written with single backslashes: `\frac` would decode as a
# form feed and "rac", `\sqrt` not at all. Escaped pairs (`\\`) are kept; a backslash is
# doubled when the escape is invalid JSON, or is a control character no answer means (`\f`,
# `\b`), or starts a common LaTeX command (`\neq`, `\times`, `\right`...).
_LONE_BACKSLASH = re.compile(
    r"\\\\|\\(?=[^\"\\/bfnrtu]|[fb][A-Za-z]|u(?![0-9A-Fa-f]{4})"
    r"|n(?:eq|e\b|abla|ot|u\b|i\b)|t(?:imes|heta|ext|an|au|o\b|op|frac)"
    r"|r(?:ight|ho|angle|ceil|floor))"
)


def _repair_escapes(block: str) -> str:
    return _LONE_BACKSLASH.sub(lambda m: m.group(0) if len(m.group(0)) == 2 else "\\\\", block)


def _json_answer(block: str) -> str | None:
    try:
        # strict=False: models often put raw newlines inside JSON strings.
        value: Any = json.loads(_repair_escapes(block), strict=False)
        if not isinstance(value, dict):
            return None
        fields = cast(dict[str, Any], value)
        if "answer" not in fields:
            return None
        found = fields["answer"]
        return found if isinstance(found, str) else json.dumps(found)
    except (ValueError, RecursionError):  # a hostile answer nests past the parser's stack
        return None


def json_object(text: str) -> dict[str, Any] | None:
    """The reply's JSON object: the whole reply, or its last fenced block that is one (None:
    neither is).

    Example:
        >>> json_object('Here:\\n```json\\n{"total": 12}\\n```')
        {'total': 12}
    """
    stripped = text.strip()
    for block in (stripped, *reversed(_FENCE.findall(text))):
        if not block.strip().startswith("{"):
            continue
        try:
            value: Any = json.loads(block)
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict):
            return cast(dict[str, Any], value)
    return None


def _field_answer(text: str) -> str | None:
    matches = _ANSWER_FIELD.findall(text)
    if not matches:
        return None
    raw = str(matches[-1]).strip()
    if raw.startswith('"'):
        try:
            return str(json.loads(raw, strict=False))
        except (ValueError, RecursionError):
            # Invalid JSON escapes (LaTeX such as `\(`) are common: keep the text as written.
            return raw[1:-1]
    return raw


def final_answer(text: str) -> str | None:
    """The final answer stated in a reply, or None when it states none.

    Looks, in order, for a JSON object with an `answer` field (in a fenced block, or the whole
    reply), an `"answer": ...` field in broken JSON, a `\\boxed{...}`, and an `Answer: ...`
    line.

    Example:
        >>> final_answer('```json\\n{"reasoning": "3 * 60 * 3", "answer": "540"}\\n```')
        '540'
        >>> final_answer("So the result is \\\\boxed{\\\\frac{1}{2}}.")
        '\\\\frac{1}{2}'
        >>> final_answer("I am not sure.") is None
        True
    """
    stated = _stated(text)
    return None if stated is None else stated[0]


def _stated(text: str) -> tuple[str, bool] | None:
    """The final answer, and whether it is structured (a JSON field or a boxed value)."""
    for block in reversed(_FENCE.findall(text)):
        found = _json_answer(block)
        if found is not None:
            return found, True
    stripped = text.strip()
    if stripped.startswith("{"):
        found = _json_answer(stripped)
        if found is not None:
            return found, True
    for find in (_field_answer, _boxed):
        found = find(text)
        if found is not None:
            return found, True
    lines = _ANSWER_LINE.findall(text)
    return (str(lines[-1]), False) if lines else None


# A number, a space, then unit words ("540 meters", "10 miles per hour"): each word at
# least two letters, so algebra ("4x", "3 x") is not mistaken for a quantity.
_QUANTITY = re.compile(r"([-+]?[\d,.]*\d)\s+(?:(?!pi\b)[A-Za-z]{2,}\.?(?:\s+|$))+")


# Units written against the number ("5km", "12lbs"): only unambiguous ones, so that algebra
# ("4x") and suffixes ("1co") are left alone.
_ATTACHED = re.compile(r"([-+]?[\d,.]*\d)(?:km|cm|mm|kg|mg|lbs?|oz|ml|mph|kph|hrs?|mins?|secs?)")


def _number(text: str) -> str | None:
    core = _UNITS.sub("", text.strip().lstrip("$€£").strip())
    core = re.sub(r"(?<=\d)\.$", "", core)  # a sentence's full stop: "42."
    quantity = _QUANTITY.fullmatch(core + " ") or _ATTACHED.fullmatch(core)
    if quantity is not None and not _NUMBER.fullmatch(core):
        core = quantity.group(1).strip()
    if not _NUMBER.fullmatch(core):
        return None
    value = float(core.replace(",", ""))
    if math.isfinite(value) and value.is_integer():
        return str(int(value))
    return repr(value)


def _literal(text: str) -> str | None:
    if not text or text[0] not in "'\"[({-+.0123456789TFN":
        return None  # not a Python literal: skip the parser (and its warnings)
    with warnings.catch_warnings():
        # literal_eval warns (SyntaxWarning) on odd escapes; a failed parse is the answer here.
        warnings.simplefilter("ignore")
        try:
            value: Any = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return None
    if isinstance(value, str):
        return value  # spacing inside a string literal is part of the answer
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return _spaces(repr(value))


def _spaces(text: str) -> str:
    # Spacing carries no meaning next to symbols ("x + 1" is "x+1"), but does between words.
    text = re.sub(r"\s+", " ", text.strip())
    return re.sub(r"\s*([^\w\s])\s*", r"\1", text)


# Words and sentence punctuation only (at least one letter): an answer in plain words.
_PROSE = re.compile(r"[\w\s.,;:!?'’\"&]*[^\W\d_][\w\s.,;:!?'’\"&]*")
_ONES = {
    word: value
    for value, word in enumerate((
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
        "eighteen", "nineteen",
    ))
}  # fmt: skip
_TENS = {
    word: 10 * value
    for value, word in enumerate(
        ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"), 2
    )
}


def _spoken_number(words: str) -> str | None:
    """`"twelve"` → `"12"`, `"forty two apples"` → `"42"`: a number below a hundred in words,
    then unit words, like `"42 apples"` (None: not such a number)."""
    parts = words.split()
    if not parts or not all(len(p) > 1 or p in _ONES for p in parts):
        return None
    if parts[0] in _ONES:
        value, used = _ONES[parts[0]], 1
    elif parts[0] in _TENS:
        value, used = _TENS[parts[0]], 1
        if len(parts) > 1 and 0 < _ONES.get(parts[1], 0) < 10:
            value, used = value + _ONES[parts[1]], 2
    else:
        return None
    units = parts[used:]
    return str(value) if all(unit.isalpha() for unit in units) else None


def _plain(text: str) -> str:
    """Plain words compared as words: case, punctuation and extra spacing dropped."""
    words = text.casefold()
    # Full stops and apostrophes inside words vanish ("U.S.A.", "don't"), decimal points stay.
    words = re.sub(r"(?<!\d)[.'’]|[.'’](?!\d)", "", words)
    words = " ".join(re.sub(r"[^\w.]+", " ", words).split())
    return _spoken_number(words) or words


_LATEX = (
    ("\\dfrac", "\\frac"),
    ("\\tfrac", "\\frac"),
    ("\\left", ""),
    ("\\right", ""),
    ("\\!", ""),
    ("\\,", ""),
    ("\\;", ""),
    ("^\\circ", ""),
    ("^{\\circ}", ""),
)


def normalise_answer(answer: str, *, words: bool = False) -> str:
    """A canonical form of a final answer, for comparing answers (not for display).

    Numbers lose currency signs, thousands separators, trailing zeros and units
    (`"$17,500.00"`, `"17,500 dollars"` → `"17500"`; `"540 meters"`, `"540km"` → `"540"`);
    Python literals are parsed and strings unquoted (`"'abc'"` → `"abc"`; case and spacing
    inside a quoted string are kept: `'CW'` and `'cw'` are different outputs); math loses
    `$...$`, `\\boxed{}`, `\\text{}` and `\\left`/`\\right`; spacing next to symbols is
    dropped.

    With `words`, an answer in plain words (letters, digits, spaces and sentence punctuation)
    is compared as words: case, punctuation and extra spacing go, and a number in words is
    the number (`"Paris."` → `"paris"`, `"Forty-two apples"` → `"42"`). Without it, words keep
    their case (identifiers and code outputs are case-sensitive).

    Example:
        >>> normalise_answer("$17,500.00"), normalise_answer("'abc'"), normalise_answer("$x + 1$")
        ('17500', 'abc', 'x+1')
        >>> normalise_answer(" Paris! ", words=True), normalise_answer("Forty-two", words=True)
        ('paris', '42')
    """
    text = answer.strip().replace("\u2212", "-")  # a typeset minus sign
    if len(text) > 1 and text.startswith("$") and text.endswith("$") and text.count("$") == 2:
        text = text[1:-1].strip()
    boxed = _boxed(text)
    if boxed is not None and text.startswith("\\boxed{") and text.endswith("}"):
        text = boxed.strip()
    number = _number(text)
    if number is not None:
        return number
    literal = _literal(text)
    if literal is not None:
        return literal
    # A hyphen between letters joins words ("twenty-one"); elsewhere it is algebra ("x-1").
    worded = re.sub(r"(?<=[^\W\d_])-(?=[^\W\d_])", " ", text)
    if words and _PROSE.fullmatch(worded):
        return _plain(worded)
    for old, new in _LATEX:
        text = text.replace(old, new)
    text = re.sub(r"\\(?:text|mathrm|textbf)\{([^{}]*)\}", r"\1", text)
    text = _spaces(text)
    return _number(text) or text  # `10\text{ cm}` is the quantity `10 cm`


# A reply this short, on one line, with no stated final answer is its own answer ("Paris.").
_SHORT_REPLY = 80


def answer_key(text: str) -> str | None:
    """The key answers are compared by: the normalised final answer (None: none stated).

    A structured answer (a JSON `answer` field, a boxed value) is compared as written, up to
    number formats and spacing; a JSON object with no `answer` field (an output type's
    instance) is its own answer, compared as data (key order and spacing do not matter); an
    answer in plain words — an `Answer: ...` line, or a short one-line reply stating no final
    answer, which is its own answer — is compared as words (`normalise_answer(...,
    words=True)`): case and punctuation do not matter.

    Example:
        >>> answer_key('{"answer": "$12.00"}') == answer_key('The answer is: 12')
        True
        >>> answer_key("Paris.") == answer_key("paris") == answer_key("Answer: PARIS")
        True
    """
    stated = _stated(text)
    data = None if stated is not None else json_object(text)
    if data is not None:
        # Structured output (an output type's object) is its own answer, compared as data.
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if stated is None:
        reply = text.strip()
        if not reply or "\n" in reply or len(reply) > _SHORT_REPLY:
            return None
        stated = reply, False
    found, structured = stated
    return normalise_answer(found, words=not structured)
