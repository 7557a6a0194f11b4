"""The learned check: candidates scored, threshold, escalation through Orchestra, its file form."""

from __future__ import annotations

import json
import math

import pytest

import orchestra as oc
from orchestra.checks import Answer
from orchestra.events import CheckFailed
from orchestra.routing import Cascade, Scored, Stage, dump_cascades, load_cascades
from orchestra.routing.logistic import Logistic
from orchestra.routing.scored import Said, candidate_features
from orchestra.testing import FakeModel, FakeReply, FakeRequest, fake_constellation

pytestmark = pytest.mark.anyio

PAIR = ("a", "b")
# Raw features: support, gives a, gives b, log1p(tokens of a), log1p(tokens of b).
# Trusts agreement (+), b more than a (+), and distrusts b's long answers (−).
SCORER = Logistic((4.0, 0.0, 1.0, 0.0, -1.0), 0.0, (0.0,) * 5, (1.0,) * 5)
PROFILES = {
    "a": {"input_cost": 0.1, "output_cost": 0.1},
    "b": {"input_cost": 0.2, "output_cost": 0.2},
    "strong": {"input_cost": 5.0, "output_cost": 15.0},
}
PLAN = oc.Plan(tasks=[oc.Task(id="q", agent="solver", prompt="What is 6 * 7?")])


def answer(model: str, text: str | None, tokens: int = 10) -> Answer:
    """An answer of `model` stating `text` as its final answer (None: the call failed)."""
    body = None if text is None else json.dumps({"answer": text})
    return Answer(model=model, text=body, output_tokens=tokens)


def test_features_follow_the_model_order() -> None:
    """Support, who gives the candidate, and the log of their output tokens."""
    said = [Said("b", "42", 9), Said("a", "42", 0), Said("x", "42", 5)]
    assert candidate_features(PAIR, said, "42") == [1.0, 1.0, 1.0, 0.0, math.log1p(9)]
    assert candidate_features(PAIR, said, "7") == [0.0, 0.0, 0.0, 0.0, 0.0]


def test_the_most_trusted_candidate_is_kept_and_the_threshold_decides() -> None:
    """Agreement scores high and is accepted; apart, b's short answer beats a's; a threshold
    above its score rejects it, keeping it as the best guess, and the reason says so."""
    check = Scored(PAIR, SCORER, threshold=0.92)
    agreed = check.decide([answer("a", "42"), answer("b", "42.0")])
    assert agreed.accepted and agreed.answer is not None and agreed.answer.model == "b"
    assert "2 of 2 agree" in agreed.reason
    apart = check.decide([answer("a", "41"), answer("b", "42", tokens=1)])
    assert not apart.accepted and apart.answer is not None and apart.answer.model == "b"
    assert "'42'" in apart.reason and "threshold 0.92" in apart.reason
    long_b = Scored(PAIR, SCORER, threshold=0.0).decide(
        [answer("a", "41"), answer("b", "42", tokens=5000)]
    )
    assert long_b.answer is not None and long_b.answer.model == "a"


def test_nothing_to_score_is_rejected() -> None:
    """Failed calls, answers with no final answer and models outside the check give nothing."""
    check = Scored(PAIR, SCORER, threshold=0.0)
    verdict = check.decide([answer("a", None), Answer("b", "Hmm.\nNo idea."), answer("other", "1")])
    assert not verdict.accepted and "no answer of the scored models" in verdict.reason


def test_a_scorer_of_the_wrong_width_is_refused() -> None:
    """The scorer must read 1 + 2 × models features."""
    with pytest.raises(oc.ConfigError, match="needs a scorer of 7 features, got 5"):
        Scored(("a", "b", "c"), SCORER, threshold=0.5)
    with pytest.raises(oc.ConfigError, match="at least one model"):
        Scored((), SCORER, threshold=0.5)


def test_scored_cascades_round_trip_through_files(tmp_path: object) -> None:
    """A Scored stage saves and loads with its scorer and threshold; bad data is a ConfigError."""
    cascade = Cascade((Stage(PAIR, Scored(PAIR, SCORER, 0.7)), Stage(("strong",))))
    assert Cascade.from_dict(cascade.to_dict()) == cascade
    path = f"{tmp_path}/learned.json"
    dump_cascades({"solver": cascade}, path)
    assert load_cascades(path).policies["solver"] == cascade
    broken = cascade.to_dict()
    del broken["stages"][0]["check"]["scorer"]
    with pytest.raises(oc.ConfigError, match="'models', 'scorer', 'threshold'"):
        Cascade.from_dict(broken)


def test_the_bundled_preset_is_learned() -> None:
    """The zeroeval preset's known tasks start with a Scored stage and end with gpt-4o."""
    policy = load_cascades("zeroeval")
    for name in ("gsm", "crux", "math-l5"):
        cascade = policy.policies[name]
        assert isinstance(cascade, Cascade)
        assert isinstance(cascade.stages[0].check, Scored)
        assert cascade.stages[-1].models == ("gpt-4o-2024-08-06",)


def replies(texts: dict[str, tuple[str, int]]) -> FakeModel:
    """A fake answering each model with (final answer, output tokens)."""

    def reply(request: FakeRequest) -> FakeReply:
        text, tokens = texts[request.model]
        return FakeReply(json.dumps({"answer": text}), output_tokens=tokens)

    return FakeModel(handler=reply)


async def run(fake: FakeModel) -> tuple[oc.NodeResult, list[oc.Event]]:
    """PLAN through a Scored(a, b) → strong cascade on `fake`."""
    events: list[oc.Event] = []
    orch = oc.Orchestra(
        models=fake_constellation(fake, PROFILES),
        agents=[oc.Agent(name="solver")],
        router=Cascade((Stage(PAIR, Scored(PAIR, SCORER, threshold=0.92)), Stage(("strong",)))),
        on_event=events.append,
    )
    result = await orch.execute(PLAN)
    return result.nodes["q"], events


async def test_trusted_answers_stop_at_the_cheap_stage() -> None:
    """Agreeing short answers: two calls, the route gives the score."""
    fake = replies({"a": ("42", 10), "b": ("42", 10), "strong": ("42", 10)})
    node, events = await run(fake)
    assert sorted(c.model for c in fake.calls) == ["a", "b"]
    assert node.route is not None and "scored '42'" in node.route
    assert not [e for e in events if isinstance(e, CheckFailed)]
    fake.close()


async def test_untrusted_answers_escalate_and_every_stage_is_paid() -> None:
    """Disagreeing answers, b's after a long reasoning (which the scorer distrusts): the strong
    model answers, and the node's cost is the sum of all three calls."""
    fake = replies({"a": ("41", 10), "b": ("42", 4000), "strong": ("43", 10)})
    node, events = await run(fake)
    assert node.model == "strong" and node.usage.calls == 3
    assert node.cost_usd == pytest.approx(sum(u.cost_usd for u in node.usage.by_model.values()))
    assert set(node.usage.by_model) == {"a", "b", "strong"}
    failed = [e for e in events if isinstance(e, CheckFailed)]
    assert len(failed) == 1 and "threshold 0.92" in failed[0].reason
    fake.close()
