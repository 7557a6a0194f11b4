"""Cascades: stage choice, escalation through Orchestra, checks' verdicts, and their files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel

import orchestra as oc
from orchestra.checks import Agree, Answer, Schema, Verify, Vote
from orchestra.events import CheckFailed, Escalated
from orchestra.routing import Cascade, Stage
from orchestra.testing import FakeFailure, FakeModel, FakeReply, FakeRequest, fake_constellation

pytestmark = pytest.mark.anyio

PROFILES = {
    "a": {"input_cost": 0.1, "output_cost": 0.1, "quality": 0.6},
    "b": {"input_cost": 0.2, "output_cost": 0.2, "quality": 0.7},
    "c": {"input_cost": 0.3, "output_cost": 0.3, "quality": 0.7},
    "strong": {"input_cost": 5.0, "output_cost": 15.0, "quality": 0.9},
}
AGREE_THEN_STRONG = Cascade((Stage(("a", "b"), Agree(2)), Stage(("strong",), Vote())))
PLAN = oc.Plan(tasks=[oc.Task(id="q", agent="solver", prompt="What is 6 * 7?")])


def spec(name: str) -> oc.ModelSpec:
    """A spec of PROFILES (never called)."""
    return oc.ModelSpec(name=name, model=f"x/{name}", **PROFILES[name])  # type: ignore[arg-type]


def request(*answers: Answer, **fields: object) -> oc.RouteRequest:
    """A request over every spec of PROFILES, with the node's answers so far."""
    return oc.RouteRequest(
        oc.Task(id="q", agent="solver", prompt="p"),
        oc.Agent(name="solver"),
        "p",
        tuple(spec(n) for n in PROFILES),
        answers=answers,
        **fields,  # type: ignore[arg-type]
    )


def said(model: str, text: str | None = "42") -> Answer:
    """An answer of `model`."""
    return Answer(model=model, text=text)


def replies(answers: dict[str, str | FakeFailure]) -> FakeModel:
    """A fake answering each model with its text (JSON answer field) or failure."""

    def answer(request: FakeRequest) -> FakeReply | FakeFailure:
        reply = answers[request.model]
        if isinstance(reply, FakeFailure):
            return reply
        return FakeReply(json.dumps({"reasoning": "...", "answer": reply}), output_tokens=10)

    return FakeModel(handler=answer)


def orchestra(fake: FakeModel, router: oc.RoutingPolicy) -> tuple[oc.Orchestra, list[oc.Event]]:
    """An Orchestra on PROFILES answering through `fake`, recording its events."""
    events: list[oc.Event] = []
    orch = oc.Orchestra(
        models=fake_constellation(fake, PROFILES),
        agents=[oc.Agent(name="solver")],
        router=router,
        on_event=events.append,
    )
    return orch, events


# -- choosing stages -------------------------------------------------------------------------


async def test_first_request_asks_the_first_stage_with_its_check() -> None:
    """The first request names the first stage's models, its check, and that more may follow."""
    decision = AGREE_THEN_STRONG.choose(request())
    assert decision.models == ("a", "b")
    assert isinstance(decision.check, Agree)
    assert decision.escalate
    assert decision.reason == "cascade stage 1/2: a, b"


async def test_escalation_asks_the_next_stage_and_is_the_last_word() -> None:
    """With the first stage's answers in, the next stage is named and cannot escalate."""
    decision = AGREE_THEN_STRONG.choose(request(said("a"), said("b", "41"), stage=1))
    assert decision.models == ("strong",)
    assert isinstance(decision.check, Vote)
    assert not decision.escalate


async def test_unavailable_models_are_skipped_and_said() -> None:
    """A model whose circuit is open is not asked; a stage with none left is skipped."""
    three = Cascade((Stage(("a", "b"), Agree(2)), Stage(("c",), Agree(2)), Stage(("strong",))))
    partly = three.choose(request(unavailable=frozenset({"a"})))
    assert partly.models == ("b",)
    assert "skipped a" in partly.reason
    skipped = three.choose(request(said("b"), unavailable=frozenset({"a", "c"})))
    assert skipped.models == ("strong",)


async def test_over_budget_models_are_skipped() -> None:
    """A stage whose models the budget left cannot pay for is skipped for a cheaper one."""
    pricey_first = Cascade((Stage(("strong",), Agree(1)), Stage(("a",))))
    assert pricey_first.choose(request(budget_left_usd=1e-6)).models == ("a",)


async def test_everything_asked_returns_nothing_new() -> None:
    """When every model has answered, the cascade says there is nothing left to ask."""
    decision = AGREE_THEN_STRONG.choose(request(said("a"), said("b"), said("strong")))
    assert decision.reason == "cascade: nothing left to ask"
    assert not decision.escalate


async def test_no_cascade_model_is_a_candidate_is_config_error() -> None:
    """A cascade naming no candidate of the agent fails like a bad Fixed."""
    with pytest.raises(oc.ConfigError, match="no model of the cascade"):
        Cascade((Stage(("nowhere",)),)).choose(request())


async def test_stage_and_cascade_refuse_empty_and_bare_strings() -> None:
    """A stage needs a sequence of names; a cascade needs a stage."""
    with pytest.raises(oc.ConfigError, match="at least one model"):
        Stage(())
    with pytest.raises(oc.ConfigError, match="sequence of names"):
        Stage("abc")  # type: ignore[arg-type]
    with pytest.raises(oc.ConfigError, match="at least one stage"):
        Cascade(())


# -- through Orchestra -----------------------------------------------------------------------


async def test_agreement_accepts_without_escalating() -> None:
    """Two cheap models agreeing: two calls, the answer kept, the route says why."""
    fake = replies({"a": "42", "b": "42.00", "strong": "42"})
    orch, events = orchestra(fake, AGREE_THEN_STRONG)
    result = await orch.execute(PLAN)
    node = result.nodes["q"]
    assert sorted(c.model for c in fake.calls) == ["a", "b"]
    assert node.model == "b"  # the group's latest answer (the stage lists weakest first)
    assert node.usage.calls == 2
    assert node.route == "cascade stage 1/2: a, b; 2 of 2 answers agree on '42'"
    assert not [e for e in events if isinstance(e, (CheckFailed, Escalated))]
    fake.close()


async def test_disagreement_escalates_to_the_strong_model() -> None:
    """Disagreeing cheap models escalate: the strong model answers, events say so."""
    fake = replies({"a": "41", "b": "42", "strong": "43"})
    orch, events = orchestra(fake, AGREE_THEN_STRONG)
    result = await orch.execute(PLAN)
    node = result.nodes["q"]
    assert [c.model for c in fake.calls][-1] == "strong"
    assert node.model == "strong"
    assert node.usage.calls == 3
    assert set(node.usage.by_model) == {"a", "b", "strong"}
    failed = [e for e in events if isinstance(e, CheckFailed)]
    escalated = [e for e in events if isinstance(e, Escalated)]
    assert [(e.stage, e.task_id) for e in failed] == [(0, "q")]
    assert [(e.stage, e.models) for e in escalated] == [(1, ("strong",))]
    assert node.route is not None and "cascade stage 2/2: strong" in node.route
    assert oc.events.EVENTS.validate_json(oc.events.EVENTS.dump_json(failed[0]))
    fake.close()


async def test_strong_model_agreeing_with_one_cheap_answer_wins_the_vote() -> None:
    """The final vote counts every answer: the strong model's group wins."""
    fake = replies({"a": "41", "b": "42", "strong": "41"})
    orch, _ = orchestra(fake, AGREE_THEN_STRONG)
    node = (await orch.execute(PLAN)).nodes["q"]
    assert node.model == "strong"
    assert "vote: 2 of 3" in (node.route or "")
    fake.close()


async def test_a_failing_member_is_an_answer_not_a_failed_node() -> None:
    """A cheap model that fails counts as no answer: the node escalates and succeeds."""
    fake = replies({"a": FakeFailure(400), "b": "42", "strong": "42"})
    orch, _ = orchestra(fake, AGREE_THEN_STRONG)
    node = (await orch.execute(PLAN)).nodes["q"]
    assert node.ok and node.model == "strong"
    fake.close()


SINGLE_THEN_STRONG = Cascade((Stage(("a",)), Stage(("strong",))))


def no_retries(fake: FakeModel, events: list[oc.Event], **a_fields: object) -> oc.Orchestra:
    """An Orchestra on PROFILES that does not retry (a scripted failure fails at once)."""
    profiles = {name: {**fields, "retry": {"max_retries": 0}} for name, fields in PROFILES.items()}
    profiles["a"] |= a_fields
    return oc.Orchestra(
        models=fake_constellation(fake, profiles), agents=[oc.Agent(name="solver")],
        router=SINGLE_THEN_STRONG, on_event=events.append,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("reply", "a_fields", "why"),
    [
        (FakeFailure(400), {}, "bad request"),
        (FakeFailure(503), {}, "server error"),
        (FakeReply(""), {}, "empty content"),
        (FakeReply("   "), {}, "empty content"),
        (FakeReply('{"answer": "42", "reas', finish_reason="length"), {}, "cut off"),
        pytest.param(
            FakeReply('{"answer": "42"}', latency=30.0),
            {"timeout": 0.05},
            "timed out",
            marks=pytest.mark.slow,
        ),
    ],
)
async def test_a_failing_unchecked_stage_escalates(
    reply: FakeReply | FakeFailure, a_fields: dict[str, object], why: str
) -> None:
    """A stage with no check whose model errs, times out, answers empty or is cut off escalates
    to the next stage instead of failing the node; the route says why."""

    def answer(request: FakeRequest) -> FakeReply | FakeFailure:
        return reply if request.model == "a" else FakeReply('{"answer": "42"}')

    fake = FakeModel(handler=answer)
    events: list[oc.Event] = []
    orch = no_retries(fake, events, **a_fields)
    node = (await orch.execute(PLAN)).nodes["q"]
    assert node.ok and node.model == "strong"
    assert why in (node.route or "") and "cascade stage 2/2: strong" in (node.route or "")
    assert [e.stage for e in events if isinstance(e, CheckFailed)] == [0]
    assert [e.models for e in events if isinstance(e, Escalated)] == [("strong",)]
    fake.close()


async def test_cut_off_answers_escalate_are_paid_and_are_the_last_resort() -> None:
    """Answers cut off at the output limit agree with nothing, so the cascade escalates; their
    cost is the node's; when every answer is cut off, the latest is kept and the route says so."""

    def answer(request: FakeRequest) -> FakeReply:
        cut = request.model != "strong" or strong_cut
        return FakeReply(
            '{"answer": "42"}', output_tokens=50, finish_reason="length" if cut else None
        )

    strong_cut = False
    fake = FakeModel(handler=answer)
    orch, events = orchestra(fake, AGREE_THEN_STRONG)
    node = (await orch.execute(PLAN)).nodes["q"]
    assert node.model == "strong"
    assert node.usage.by_model["a"].cost_usd > 0 and node.usage.by_model["b"].cost_usd > 0
    assert "no answer states a final answer" in (node.route or "")
    strong_cut = True
    node = (await orch.execute(PLAN)).nodes["q"]
    assert node.ok and node.model == "strong" and node.output == '{"answer": "42"}'
    assert (node.route or "").endswith("no usable answer; kept strong's (cut off at its output "
                                       "token limit (finish_reason 'length'))")  # fmt: skip
    assert len([e for e in events if isinstance(e, Escalated)]) == 2
    fake.close()


async def test_a_hedged_stage_the_budget_refuses_keeps_what_was_spent() -> None:
    """When the run's budget cannot fit a hedged later stage, the run stops with
    BudgetExceeded and its usage keeps what the earlier stage's answers cost."""
    fake = FakeModel(
        handler=lambda r: FakeReply(f"from {r.model}", input_tokens=10, output_tokens=5)
    )
    hedge = oc.HedgePolicy(after=0.01)
    specs = [
        oc.ModelSpec(
            name=name,
            model=fake.model(name),
            input_cost=price,
            output_cost=price,
            hedge=hedge if name == "strong" else None,
            litellm_params={"max_tokens": 40},
        )
        for name, price in (("a", 1.0), ("b", 1.0), ("strong", 1000.0))
    ]
    orch = oc.Orchestra(
        models=specs,
        agents=[oc.Agent(name="solver")],
        router=AGREE_THEN_STRONG,
        journal=None,
    )
    try:
        with pytest.raises(oc.BudgetExceeded) as stopped:
            await orch.execute(PLAN, budget=oc.Budget(max_usd=0.001))
    finally:
        fake.close()
    usage = stopped.value.result.usage
    assert sorted(usage.by_model) == ["a", "b"]
    assert usage.total_tokens == 30
    assert [c.model for c in fake.calls if c.model == "strong"] == []


async def test_a_failing_last_stage_keeps_the_earlier_best_guess() -> None:
    """When the strong model fails after a rejection, the cheap stage's best guess is kept."""
    fake = replies({"a": "41", "b": "42", "strong": FakeFailure(400)})
    orch, _ = orchestra(fake, Cascade((Stage(("a", "b"), Agree(2)), Stage(("strong",)))))
    node = (await orch.execute(PLAN)).nodes["q"]
    assert node.ok and node.model == "b"
    assert "strong failed: " in (node.route or "")
    fake.close()


class Invoice(BaseModel):
    """An output type for the schema tests."""

    total: float
    currency: str


async def test_answers_failing_the_output_schema_escalate() -> None:
    """A stage whose answer is not a valid Invoice escalates; a valid one is kept; when none is
    valid, the latest is kept and the route says why."""
    valid = '{"total": 12.5, "currency": "EUR"}'
    fake = replies({"a": "unused", "b": "unused", "strong": "unused"})
    texts = {"a": '{"total": "n/a", "currency": "EUR"}', "strong": valid}
    fake.handler = lambda request: FakeReply(texts[request.model])
    cascade = Cascade((Stage(("a",), Schema(Invoice)), Stage(("strong",), Schema(Invoice))))
    orch, events = orchestra(fake, cascade)
    node = (await orch.execute(PLAN)).nodes["q"]
    assert node.model == "strong" and node.output == valid
    assert "no answer is a valid Invoice (a: total: Input should be a valid number" in (
        node.route or ""
    )
    assert [e.stage for e in events if isinstance(e, CheckFailed)] == [0]
    texts["strong"] = "I would rather not."
    node = (await orch.execute(PLAN)).nodes["q"]
    assert node.model == "strong" and node.output == "I would rather not."
    assert (node.route or "").endswith(
        "no usable answer; kept strong's (not a valid Invoice: it holds no JSON object)"
    )
    fake.close()


async def test_every_model_failing_fails_the_node() -> None:
    """When no model of any stage answers, the node fails with a ModelError naming them."""
    failure = FakeFailure(400)
    fake = replies({"a": failure, "b": failure, "strong": failure})
    orch, _ = orchestra(fake, AGREE_THEN_STRONG)
    with pytest.raises(oc.NodeFailed, match="no model answered") as info:
        await orch.execute(PLAN)
    assert isinstance(info.value.__cause__, oc.ModelError)
    fake.close()


async def test_last_stage_rejection_keeps_the_best_guess() -> None:
    """A cascade whose only stage rejects keeps the check's best guess."""
    fake = replies({"a": "1", "b": "2", "strong": "3"})
    orch, events = orchestra(fake, Cascade((Stage(("a", "b"), Agree(2)),)))
    node = (await orch.execute(PLAN)).nodes["q"]
    assert node.ok and node.model == "b"
    assert (node.route or "").endswith("kept the best guess")
    assert [e.kind for e in events if isinstance(e, CheckFailed)] == ["check_failed"]
    fake.close()


async def test_verify_accepts_on_yes_and_escalates_on_no() -> None:
    """Verify asks its model about the latest answer; NO escalates, and the call is counted."""
    verdicts = iter(["NO, 6 * 7 is 42", "YES"])

    def answer(request: FakeRequest) -> FakeReply:
        if request.model == "c":
            assert "Proposed answer" in request.prompt
            return FakeReply(next(verdicts), output_tokens=3)
        return FakeReply('{"answer": "41"}' if request.model == "a" else '{"answer": "42"}')

    fake = FakeModel(handler=answer)
    cascade = Cascade((Stage(("a",), Verify("c")), Stage(("b",), Verify("c"))))
    orch, _ = orchestra(fake, cascade)
    node = (await orch.execute(PLAN)).nodes["q"]
    assert node.model == "b"
    assert [c.model for c in fake.calls] == ["a", "c", "b", "c"]
    assert node.usage.by_model["c"].calls == 2
    assert "verifier 'c' says NO" in (node.route or "")
    fake.close()


async def test_verify_with_unknown_model_rejects() -> None:
    """A verifier that is not in the constellation rejects (the cascade keeps its guess)."""
    fake = replies({"a": "42", "b": "42", "strong": "42"})
    orch, _ = orchestra(fake, Cascade((Stage(("a",), Verify("ghost")),)))
    node = (await orch.execute(PLAN)).nodes["q"]
    assert node.ok and "unknown model 'ghost'" in (node.route or "")
    fake.close()


async def test_single_model_decisions_keep_the_plain_path() -> None:
    """A one-model decision without a check runs as before: one call, route is the reason."""
    fake = replies({"a": "42", "b": "42", "strong": "42"})
    orch, _ = orchestra(fake, oc.routing.Fixed("a"))
    node = (await orch.execute(PLAN)).nodes["q"]
    assert node.usage.calls == 1 and node.route == "fixed policy"
    fake.close()


# -- files -----------------------------------------------------------------------------------


async def test_cascades_round_trip_through_a_file(tmp_path: Path) -> None:
    """dump_cascades writes what load_cascades reads back, default included."""
    verify = Cascade((Stage(("a",), Verify("c")), Stage(("strong",))))
    path = tmp_path / "cascades.json"
    oc.routing.dump_cascades({"solver": AGREE_THEN_STRONG}, path, default=verify, about="test")
    policy = oc.routing.load_cascades(path)
    assert policy.policies == {"solver": AGREE_THEN_STRONG}
    assert policy.default == verify


async def test_custom_checks_cannot_be_saved() -> None:
    """A check with a custom key has no file form: saving it is a ConfigError."""
    custom = Cascade((Stage(("a", "b"), Agree(2, key=str.strip)),))
    with pytest.raises(oc.ConfigError, match="cannot save check"):
        custom.to_dict()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "non-empty 'stages'"),
        ({"stages": ["x"]}, "stage 1 must be an object"),
        ({"stages": [{"models": "a"}]}, "needs 'models'"),
        ({"stages": [{"models": ["a"], "check": {"kind": "guess"}}]}, "unknown check kind"),
        ({"stages": [{"models": ["a"], "check": {"kind": "verify"}}]}, "bad verify check"),
        ({"stages": [{"models": ["a"], "check": 3}]}, "must be an object or null"),
    ],
)
async def test_bad_cascade_data_is_config_error(data: dict[str, object], message: str) -> None:
    """Malformed cascade data is a ConfigError saying what is wrong."""
    with pytest.raises(oc.ConfigError, match=message):
        Cascade.from_dict(data)


async def test_load_cascades_errors_name_the_problem(tmp_path: Path) -> None:
    """Unknown presets list the bundled ones; unreadable or malformed files are ConfigErrors."""
    with pytest.raises(oc.ConfigError, match="bundled: zeroeval"):
        oc.routing.load_cascades("nonesuch")
    with pytest.raises(oc.ConfigError, match="cannot read"):
        oc.routing.load_cascades(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(oc.ConfigError, match="not valid JSON"):
        oc.routing.load_cascades(tmp_path / "bad.json")
    (tmp_path / "empty.json").write_text("{}", encoding="utf-8")
    with pytest.raises(oc.ConfigError, match="'agents'"):
        oc.routing.load_cascades(tmp_path / "empty.json")


async def test_bundled_preset_names_a_cascade_per_task_type() -> None:
    """The zeroeval preset has a cascade per query type and a default, all escalating to gpt-4o
    at most."""
    policy = oc.routing.load_cascades("zeroeval")
    assert sorted(policy.policies) == ["crux", "gsm", "math-l5"]
    assert isinstance(policy.default, Cascade)
    for cascade in policy.policies.values():
        assert isinstance(cascade, Cascade)
        assert "o1-mini-2024-09-12" not in {m for st in cascade.stages for m in st.models}
