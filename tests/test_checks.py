"""Checks and balances: plurality, and the Agree / Vote / Verify / Aggregate verdicts."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from orchestra.checks import (
    Aggregate,
    Agree,
    Answer,
    CheckContext,
    Schema,
    Verify,
    Vote,
    plurality,
)
from orchestra.errors import ModelError

pytestmark = pytest.mark.anyio


def said(model: str, text: str | None) -> Answer:
    """An answer of `model` stating `text` as its JSON answer (None: the call failed)."""
    return Answer(model=model, text=None if text is None else json.dumps({"answer": text}))


async def no_model(model: str, prompt: str) -> str:
    """An `ask` for checks that must not call models."""
    raise AssertionError("this check must not call a model")


CONTEXT = CheckContext(prompt="What is 6 * 7?", ask=no_model)


# -- plurality -------------------------------------------------------------------------------


@settings(max_examples=50)
@given(st.lists(st.one_of(st.none(), st.sampled_from("abc")), max_size=8))
def test_plurality_is_a_largest_group_ties_to_the_latest(keys: list[str | None]) -> None:
    """The group returned is a largest one, and the latest among the largest."""
    top = plurality(keys)
    present = [k for k in keys if k is not None]
    if not present:
        assert top is None
        return
    assert top is not None
    index, size = top
    counts = {k: present.count(k) for k in present}
    assert size == max(counts.values()) == counts[keys[index]]  # type: ignore[index]
    largest = [i for i, k in enumerate(keys) if k is not None and counts[k] == size]
    assert index == max(largest)


# -- the checks ------------------------------------------------------------------------------


async def test_agree_accepts_a_large_enough_group() -> None:
    """Agree(2) accepts two equal keys, keeping the group's latest answer."""
    answers = [said("a", "42"), said("b", "41"), said("c", "42.0")]
    verdict = await Agree(2).judge(answers, CONTEXT)
    assert verdict.accepted and verdict.answer is answers[2]
    assert verdict.reason == "2 of 3 answers agree on '42'"


async def test_agree_rejects_with_a_best_guess() -> None:
    """Without agreement the verdict is a rejection whose best guess is the latest answer."""
    answers = [said("a", "1"), said("b", "2")]
    verdict = await Agree(2).judge(answers, CONTEXT)
    assert not verdict.accepted and verdict.answer is answers[1]
    assert "fewer than 2 answers agree ('1', '2')" in verdict.reason


async def test_agree_ignores_failed_and_unstated_answers() -> None:
    """Failed calls and replies with no final answer agree with nothing."""
    answers = [said("a", None), Answer(model="b", text="Hmm.\nNo idea."), said("c", "3")]
    assert not (await Agree(2).judge(answers, CONTEXT)).accepted
    none_stated = await Agree(1).judge(answers[:2], CONTEXT)
    assert not none_stated.accepted and none_stated.answer is answers[1]


async def test_flawed_answers_count_as_no_answer_for_every_check() -> None:
    """An answer cut off or off-schema (text kept, error set) is not `ok`: no check counts,
    keeps, verifies or aggregates it."""
    cut = Answer(model="a", text=json.dumps({"answer": "42"}), error="cut off")
    fine = said("b", "41")
    assert not cut.ok and fine.ok
    assert not (await Agree(2).judge([cut, said("c", "42")], CONTEXT)).accepted
    assert (await Vote().judge([fine, cut], CONTEXT)).answer is fine
    assert not (await Vote().judge([cut], CONTEXT)).accepted
    shown: list[str] = []

    async def ask(model: str, prompt: str) -> str:
        shown.append(prompt)
        return "YES"

    assert (await Verify("judge").judge([fine, cut], CheckContext("p", ask))).answer is fine
    await Aggregate("judge").judge([fine, cut], CheckContext("p", ask))
    assert all('"42"' not in prompt for prompt in shown) and len(shown) == 2


class Point(BaseModel):
    """An output type for the Schema tests."""

    x: int
    y: int


async def test_schema_sets_invalid_answers_aside_before_its_inner_check() -> None:
    """Only valid Points count: Agree(2) over one valid and one invalid answer rejects, over
    two valid ones accepts; failed calls stay failed."""
    good = Answer(model="a", text='{"x": 1, "y": 2}')
    bad = Answer(model="b", text='```json\n{"x": 1}\n```')
    failed = Answer(model="c", text=None, error="500")
    check = Schema(Point, then=Agree(2))
    rejected = await check.judge([good, bad, failed], CONTEXT)
    assert not rejected.accepted and "fewer than 2 answers agree" in rejected.reason
    again = Answer(model="d", text='```json\n{"y": 2, "x": 1}\n```')
    assert (await check.judge([good, bad, again], CONTEXT)).accepted
    screened = Schema(Point).screen([good, bad, failed])
    assert screened[0] is good and screened[2] is failed
    assert screened[1].error == "not a valid Point: y: Field required"
    assert not (await check.judge([bad, failed], CONTEXT)).accepted


def test_agree_needs_a_positive_bar() -> None:
    """Agree(0) makes no sense and is refused."""
    with pytest.raises(ValueError, match="min_agree"):
        Agree(0)


async def test_vote_keeps_the_plurality_or_the_latest() -> None:
    """Vote accepts the largest group; on ties the latest; with no keys the latest answer."""
    answers = [said("a", "1"), said("b", "2"), said("c", "2")]
    assert (await Vote().judge(answers, CONTEXT)).answer is answers[2]
    tie = [said("a", "1"), said("b", "2")]
    assert (await Vote().judge(tie, CONTEXT)).answer is tie[1]
    vague = [Answer(model="a", text="hmm"), Answer(model="b", text=None)]
    verdict = await Vote().judge(vague, CONTEXT)
    assert verdict.accepted and verdict.answer is vague[0]
    failed = await Vote().judge([Answer(model="a", text=None, error="500")], CONTEXT)
    assert not failed.accepted and failed.answer is None


async def test_verify_reads_the_verifiers_first_line() -> None:
    """Verify asks its model with the prompt and answer filled in; YES accepts."""
    asked: list[tuple[str, str]] = []

    async def ask(model: str, prompt: str) -> str:
        asked.append((model, prompt))
        return "yes — 6 * 7 = 42" if len(asked) == 1 else "No. It is 42."

    context = CheckContext(prompt="What is 6 * 7?", ask=ask)
    answers = [said("a", "42")]
    accepted = await Verify("judge").judge(answers, context)
    assert accepted.accepted and accepted.answer is answers[0]
    assert asked[0][0] == "judge" and "What is 6 * 7?" in asked[0][1]
    assert answers[0].text is not None and answers[0].text in asked[0][1]
    rejected = await Verify("judge").judge(answers, context)
    assert not rejected.accepted and "says NO" in rejected.reason


async def test_verify_failing_verifier_rejects() -> None:
    """A verifier call that fails is a rejection (the answer stays the best guess)."""

    async def broken(model: str, prompt: str) -> str:
        raise ModelError("model 'judge': server error", model="judge", status_code=500)

    verdict = await Verify("judge").judge([said("a", "1")], CheckContext("p", broken))
    assert not verdict.accepted and "failed" in verdict.reason
    assert not (await Verify("judge").judge([], CheckContext("p", broken))).accepted
