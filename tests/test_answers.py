"""Final answers and their keys: extraction, normalisation of numbers, literals, math and words."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestra.answers import answer_key, final_answer, normalise_answer

# -- final answers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('```json\n{"reasoning": "6 * 7", "answer": "42"}\n```', "42"),
        ('{"reasoning": "r", "answer": 42}', "42"),
        ('Sure.\n```json\n{"reasoning": "a\nb", "answer": "x"}\n```', "x"),  # raw newline
        ('{"reasoning": "\\(x\\)", "answer": "\\frac{1}{2}"}', "\\frac{1}{2}"),  # LaTeX escapes
        ('{"answer": "-\\\\frac{33}{20}"}', "-\\frac{33}{20}"),  # properly escaped LaTeX
        ('"reasoning": "broken json, "answer": "7"', "7"),
        ("We get \\boxed{\\frac{3}{4}} in the end.", "\\frac{3}{4}"),
        ("Reasoning...\nFinal answer: 12 apples", "12 apples"),
        ("I cannot tell.", None),
        ('```json\n{"reasoning": "no answer field"}\n```', None),
    ],
)
def test_final_answer_finds_the_stated_answer(text: str, expected: str | None) -> None:
    """The answer field of fenced, bare or broken JSON, a boxed value or an Answer: line."""
    assert final_answer(text) == expected


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("$17,500", "17500.00"),
        ("5.0", "5"),
        ("12 dollars", "12"),
        ("'abc'", "abc"),
        ("''", ""),
        ("$x + 1$", "x+1"),
        ("\\dfrac{1}{2}", "\\frac{1}{2}"),
        ("\\boxed{\\left(1, 2\\right)}", "(1,2)"),
        ("[1,2, 3]", "[1, 2, 3]"),
        ("10\\text{ cm}", "10 cm"),
    ],
)
def test_equivalent_answers_share_a_key(one: str, other: str) -> None:
    """Formatting differences (currency, separators, quotes, LaTeX, spacing) vanish."""
    assert normalise_answer(one) == normalise_answer(other)


@pytest.mark.parametrize(
    ("one", "other"),
    [("'CW'", "'cw'"), ("'  a'", "'a'"), ("1.5", "15"), ("[1, 2]", "[2, 1]"), ("x+1", "x-1")],
)
def test_different_answers_keep_different_keys(one: str, other: str) -> None:
    """Case, spacing inside string literals, order and signs are meaningful."""
    assert normalise_answer(one) != normalise_answer(other)


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_number_formats_share_a_key(number: int) -> None:
    """An integer written plainly, with separators, a currency sign or decimals: one key."""
    forms = [f"{number}", f"{number:,}", f"{number}.00", f'"{number}"']
    if number >= 0:
        forms.append(f"${number:,}")
    keys = {answer_key(json.dumps({"answer": form})) for form in forms}
    assert keys == {str(number)}


@given(st.text(max_size=40))
def test_normalising_never_raises_and_is_stable(text: str) -> None:
    """Any text normalises without error, and a key normalises to itself... or to a fixpoint."""
    once = normalise_answer(text)
    twice = normalise_answer(once)
    assert normalise_answer(twice) == twice


@pytest.mark.parametrize(
    ("answer", "key"),
    [
        ("540 meters", "540"),
        ("10 miles per hour", "10"),
        ("3,140 kilometers", "3140"),
        ("€77", "77"),
        ("4x", "4x"),
        ("3 x", "3 x"),
        ("12 pi", "12 pi"),
        ("1co", "1co"),
    ],
)
def test_quantities_lose_their_units_but_algebra_and_strings_do_not(answer: str, key: str) -> None:
    """A number, a space and unit words is the number; `4x`, `12 pi` and `1co` stay as they are."""
    assert normalise_answer(answer) == key


# -- plain answers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Paris", "paris."),
        ("  The Eiffel   Tower! ", "the eiffel tower"),
        ("Answer: New York", '"new york"'),
        ("U.S.A.", "usa"),
        ("twelve", "12"),
        ("Forty-two apples.", "Answer: 42"),
        ("\u221242", "-42"),
        ("5km", "5 km"),
        ("$42.", "42"),
    ],
)
def test_plain_replies_agree_when_they_say_the_same(one: str, other: str) -> None:
    """Short plain replies and Answer: lines are compared as words and numbers."""
    assert answer_key(one) == answer_key(other) is not None


def test_structured_answers_keep_their_case_and_long_prose_has_no_key() -> None:
    """A JSON answer field is an exact value (code outputs are case-sensitive); a long or
    multi-line reply stating no final answer has no key."""
    assert answer_key('{"answer": "BFS"}') != answer_key('{"answer": "bfs"}')
    assert answer_key("I think so.\nBut I am not sure.") is None
    assert answer_key("word " * 30) is None
    assert answer_key("   ") is None


def test_a_json_object_with_no_answer_field_is_compared_as_data() -> None:
    """An output type's object is its own answer: key order and spacing do not matter."""
    one = answer_key('{"city": "Paris", "population": 2100000}')
    assert one == answer_key('```json\n{ "population": 2100000,\n  "city": "Paris" }\n```')
    assert one != answer_key('{"city": "Paris", "population": 2100001}')
    assert answer_key('{"reasoning": "r", "answer": "7"}') == "7"


ONES = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
    "eighteen", "nineteen",
]  # fmt: skip
TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
# Words that are not numbers ("ten apples" is 10, like "10 apples") nor an Answer: frame.
WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=8).filter(
    lambda w: w not in {"is", "answer", *ONES, *TENS}
)
PHRASES = st.lists(WORDS, min_size=1, max_size=4).map(" ".join)


def case_of(phrase: str, style: int) -> str:
    """The phrase in one of four casings."""
    return (phrase, phrase.upper(), phrase.title(), phrase.capitalize())[style]


@given(PHRASES, st.integers(0, 3), st.sampled_from(["", ".", "!", "?", "..."]),
       st.sampled_from(["", " ", "  "]), st.sampled_from(["{}", "Answer: {}", "{}\n"]))  # fmt: skip
def test_a_plain_answer_keeps_its_key_whatever_its_case_punctuation_and_spacing(
    phrase: str, style: int, stop: str, pad: str, frame: str
) -> None:
    """Case, a closing punctuation mark, extra spaces and an Answer: frame do not change a
    plain answer's key (property test)."""
    spaced = phrase.replace(" ", " " + pad)
    variant = frame.format(pad + case_of(spaced, style) + stop + pad)
    assert answer_key(variant) == answer_key(phrase) is not None


@given(PHRASES, PHRASES)
def test_different_plain_answers_keep_different_keys(one: str, other: str) -> None:
    """Two phrases that differ in their words never share a key (property test)."""
    if one.split() != other.split():
        assert answer_key(one) != answer_key(other)


FRAMES = st.sampled_from(["{}", "${}", "{} dollars", "Answer: {}", "{}.", "Answer: {} units"])


@given(st.integers(-(10**9), 10**9), st.integers(0, 99), st.booleans(), FRAMES)
def test_a_number_keeps_its_key_in_any_format(
    whole: int, cents: int, commas: bool, frame: str
) -> None:
    """A number with or without separators, trailing zeros, a currency sign, a unit, a full
    stop or a typeset minus has one key, in a plain reply as in a JSON answer (property)."""
    expected = repr(float(f"{whole}.{cents:02d}")) if cents else str(whole)
    digits = f"{abs(whole):,}" if commas else str(abs(whole))
    written = ("\u2212" if whole < 0 and commas else "-" if whole < 0 else "") + digits
    written += f".{cents:02d}0" if cents else ""
    text = frame.format(written)
    assert answer_key(text) == expected
    assert answer_key(json.dumps({"answer": text.removeprefix("Answer: ")})) == expected


@given(st.integers(0, 99))
def test_numbers_in_words_are_numbers(number: int) -> None:
    """A number below a hundred written in words is that number (property test)."""
    if number < 20:
        words = ONES[number]
    else:
        words = TENS[number // 10 - 2] + (f"-{ONES[number % 10]}" if number % 10 else "")
    assert answer_key(words.capitalize() + ".") == str(number)


def test_a_hostile_answer_states_no_key_without_crashing() -> None:
    """An answer nested past the JSON parser's stack is read as text, never a RecursionError."""
    deep = "```json\n" + '{"answer":' * 50_000 + "\n```"
    stated = final_answer(deep)  # raised RecursionError out of the check
    assert stated is None or isinstance(stated, str)
