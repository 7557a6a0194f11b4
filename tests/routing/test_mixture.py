"""Mixture-of-agents: proposers answer at once, an aggregator writes the node's answer."""

from __future__ import annotations

import json

import pytest

import orchestra as oc
from orchestra.checks import Aggregate, Answer, CheckContext, Vote
from orchestra.events import CheckFailed, Escalated, ModelCalled
from orchestra.routing import Cascade, Mixture, Stage
from orchestra.testing import FakeFailure, FakeModel, FakeReply, FakeRequest, fake_constellation

pytestmark = pytest.mark.anyio

PROFILES = {
    "a": {"input_cost": 0.1, "output_cost": 0.1, "quality": 0.6},
    "b": {"input_cost": 0.2, "output_cost": 0.2, "quality": 0.7},
    "agg": {"input_cost": 1.0, "output_cost": 2.0, "quality": 0.8},
    "strong": {"input_cost": 5.0, "output_cost": 15.0, "quality": 0.9},
}
PLAN = oc.Plan(tasks=[oc.Task(id="q", agent="solver", prompt="What is 6 * 7?")])


def fake(aggregator: str | FakeFailure = "final: 42") -> FakeModel:
    """Proposers answer with their name; the aggregator replies `aggregator`."""

    def answer(request: FakeRequest) -> FakeReply | FakeFailure:
        if request.model == "agg":
            if isinstance(aggregator, FakeFailure):
                return aggregator
            return FakeReply(aggregator, input_tokens=100, output_tokens=10)
        text = json.dumps({"answer": "42" if request.model != "a" else "41"})
        return FakeReply(f"{request.model} says {text}", input_tokens=10, output_tokens=10)

    return FakeModel(handler=answer, fail_first=0)


async def run(model: FakeModel, policy: oc.RoutingPolicy) -> tuple[oc.NodeResult, list[oc.Event]]:
    """Run PLAN under `policy`; the node's result and the events."""
    events: list[oc.Event] = []
    orch = oc.Orchestra(
        models=fake_constellation(model, PROFILES),
        agents=[oc.Agent(name="solver")],
        router=policy,
        on_event=events.append,
    )
    result = await orch.execute(PLAN)
    return result.nodes["q"], events


async def test_mixture_aggregates_every_proposal_and_pays_for_all() -> None:
    """Both proposers answer, the aggregator sees both, its reply is the node's output."""
    model = fake()
    node, events = await run(model, Mixture(("a", "b"), aggregator="agg"))
    assert node.output == "final: 42"
    assert node.model == "agg"
    assert node.usage.calls == 3
    costs = (10 * 0.1 + 10 * 0.1 + 10 * 0.2 + 10 * 0.2 + 100 * 1.0 + 10 * 2.0) / 1e6
    assert node.cost_usd == pytest.approx(costs)
    assert (
        node.route == "mixture: a, b propose, agg aggregates; aggregator 'agg' combined 2 answers"
    )
    shown = model.calls_for("agg")[0].prompt
    assert "What is 6 * 7?" in shown and "a says" in shown and "b says" in shown
    called = {e.model for e in events if isinstance(e, ModelCalled)}
    assert called == {"a", "b", "agg"}


async def test_a_failing_aggregator_keeps_the_plurality_guess() -> None:
    """When the aggregator fails, the check rejects; alone, the node keeps the vote's pick."""
    node, events = await run(fake(FakeFailure(400)), Mixture(("a", "b"), aggregator="agg"))
    assert node.ok and node.model == "b"
    assert node.route is not None and "aggregator 'agg' failed" in node.route
    assert any(isinstance(e, CheckFailed) for e in events)


async def test_in_a_cascade_a_failing_aggregator_escalates() -> None:
    """As a cascade stage, an aggregator's failure escalates to the next stage."""
    cascade = Cascade((Stage(("a", "b"), Aggregate("agg")), Stage(("strong",), Vote())))
    node, events = await run(fake(FakeFailure(400)), cascade)
    assert node.model == "strong"
    assert any(isinstance(e, Escalated) for e in events)


async def test_aggregator_writing_nothing_is_a_rejection() -> None:
    """An empty aggregation is not accepted."""
    answers = (Answer("a", "x"),)

    async def ask(model: str, prompt: str) -> str:
        return "  "

    verdict = await Aggregate("agg").judge(answers, CheckContext("p", ask))
    assert not verdict.accepted and verdict.answer == answers[0]


async def test_aggregator_prompt_is_filled_once() -> None:
    """A prompt quoting '{answers}' is not expanded again; failed answers are left out."""
    seen: list[str] = []

    async def ask(model: str, prompt: str) -> str:
        seen.append(prompt)
        return "ok"

    answers = (Answer("a", "one"), Answer("b", None, error="down"))
    verdict = await Aggregate("agg").judge(answers, CheckContext("say {answers}", ask))
    assert verdict.accepted and verdict.answer is not None and verdict.answer.model == "agg"
    assert "say {answers}" in seen[0] and "### Answer 1\none" in seen[0]
    assert "### Answer 2" not in seen[0]


async def test_aggregate_round_trips_through_cascade_files() -> None:
    """A cascade with an aggregate stage saves and loads."""
    cascade = Cascade((Stage(("a", "b"), Aggregate("agg")),))
    data = cascade.to_dict()
    assert data["stages"][0]["check"] == {"kind": "aggregate", "model": "agg"}
    assert Cascade.from_dict(data) == cascade


async def test_mixture_without_candidates_is_config_error() -> None:
    """A mixture whose proposers are all unknown fails like a bad Fixed."""
    request = oc.RouteRequest(
        PLAN.tasks[0], oc.Agent(name="solver"), "p", tuple(fake_constellation(FakeModel()))
    )
    with pytest.raises(oc.ConfigError, match="no proposer of the mixture"):
        Mixture(("x",), aggregator="agg").choose(request)
    with pytest.raises(oc.ConfigError, match="non-empty list"):
        Mixture("ab", aggregator="agg")
