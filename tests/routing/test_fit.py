"""Fitting cascades on recorded outcomes: replay semantics, the budget, cross-validation."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import orchestra as oc
from orchestra.checks import Agree, Vote
from orchestra.routing import Cascade, Outcome, Stage, cross_validate, fit_cascades, replay
from orchestra.routing.fit import Query
from orchestra.routing.logistic import Logistic
from orchestra.routing.scored import Scored
from orchestra.testing import RecordedAnswer, RecordedConstellation, RecordedQuery

CHEAP = ("a", "b", "c")
# Output tokens only, at $1 per 1M: a recorded cost of 1e-5 USD is 10 tokens, exactly.
PRICES = dict.fromkeys(("a", "b", "c", "strong"), (0.0, 1.0))
AGREE_THEN_STRONG = Cascade(
    (Stage(("a", "b"), Agree(2)), Stage(("c",), Agree(2)), Stage(("strong",), Vote()))
)


def outcome(key: str | None, correct: bool, cost: float = 1e-4) -> Outcome:
    """A recorded outcome; its output tokens are what its cost buys at PRICES."""
    return Outcome(key, correct, cost, round(cost * 1e6))


@st.composite
def queries(draw: st.DrawFn) -> dict[str, Outcome]:
    """A recorded query: each model answers one of three keys (or none); `1` is right."""
    query: dict[str, Outcome] = {}
    for model in (*CHEAP, "strong"):
        key = draw(st.sampled_from(["1", "2", "3", None]))
        cost = 1e-3 if model == "strong" else draw(st.sampled_from([1e-5, 2e-5, 5e-5]))
        query[model] = outcome(key, key == "1", cost)
    return query


def test_replay_accepts_agreement_and_escalates_otherwise() -> None:
    """Agreeing cheap answers stop the cascade; disagreement pays for the next stages."""
    agreed = {"a": outcome("1", True), "b": outcome("1", True), "c": outcome("2", False),
              "strong": outcome("1", True, 1e-3)}  # fmt: skip
    run = replay(AGREE_THEN_STRONG, agreed)
    assert (run.model, run.correct, run.cost_usd) == ("b", True, pytest.approx(2e-4))
    split = {**agreed, "b": outcome("2", False), "strong": outcome("3", False, 1e-3)}
    run = replay(AGREE_THEN_STRONG, split)
    assert (run.model, run.correct) == ("c", False)  # b and c agree at stage 2
    apart = {**split, "c": outcome("3", False)}
    assert replay(AGREE_THEN_STRONG, apart).model == "strong"


def test_replay_refuses_checks_it_cannot_replay() -> None:
    """Verify needs a live model: replaying it is a ConfigError, as is a query nobody answered."""
    with pytest.raises(oc.ConfigError, match="Agree, Vote and Scored"):
        replay(Cascade((Stage(("a",), oc.checks.Verify("b")),)), {"a": outcome("1", True)})
    with pytest.raises(oc.ConfigError, match="no model of the cascade"):
        replay(AGREE_THEN_STRONG, {"z": outcome("1", True)})


def recorded_of(rows: Sequence[Mapping[str, Outcome]]) -> RecordedConstellation:
    """A recorded constellation answering each row's keys, costs as tokens at PRICES."""
    built: list[RecordedQuery] = []
    for index, row in enumerate(rows):
        answers = {
            model: RecordedAnswer(
                json.dumps({"answer": o.key}) if o.key is not None else "Hmm.\nNo idea.",
                0,
                round(o.cost_usd * 1e6),
            )
            for model, o in row.items()
        }
        built.append(RecordedQuery(f"q{index}", "t", f"question {index}?", answers))
    return RecordedConstellation(built, prices=PRICES)


# A scorer trusting agreement and short answers; the threshold sits among its scores.
SCORED_THEN_STRONG = Cascade(
    (
        Stage(("a", "b"), Scored(("a", "b"), Logistic((2.0, 0.3, 0.3, -1.0, -0.5), 0.4,
                                                      (0.6, 0.5, 0.5, 1.5, 1.5), (0.3,) * 5), 0.6)),
        Stage(("strong",)),
    )
)  # fmt: skip


@pytest.mark.slow
@settings(max_examples=6, deadline=None)
@given(
    st.lists(queries(), min_size=6, max_size=6),
    st.sampled_from([AGREE_THEN_STRONG, SCORED_THEN_STRONG]),
)
def test_replay_matches_the_live_runner(rows: list[dict[str, Outcome]], cascade: Cascade) -> None:
    """Running a cascade through Orchestra keeps the same model, at the same cost, as replay
    (for a learned check too: the live answers carry the output tokens it reads)."""
    recorded = recorded_of(rows)
    orch = oc.Orchestra(
        models=recorded.constellation(),
        agents=[oc.Agent(name="t")],
        router=cascade,
    )
    plan = oc.Plan(tasks=[oc.Task(id=q.qid, agent="t", prompt=q.prompt) for q in recorded.queries])
    result = anyio.run(orch.execute, plan, backend="asyncio")
    for query, row in zip(recorded.queries, rows, strict=True):
        run = replay(cascade, row)
        node = result.nodes[query.qid]
        assert node.model == run.model
        assert node.cost_usd == pytest.approx(run.cost_usd)
    recorded.close()


def groups_of(rows: list[dict[str, Outcome]]) -> dict[str, list[Query]]:
    """Two groups (task types) from one list of queries."""
    return {"even": rows[::2] or rows, "odd": rows[1::2] or rows}


@settings(max_examples=8, deadline=None)
@given(st.lists(queries(), min_size=2, max_size=12), st.sampled_from([0.05, 0.3, 1.0]))
def test_fit_stays_within_the_budget(rows: list[dict[str, Outcome]], ratio: float) -> None:
    """When the cheapest cascades fit the budget, the fitted ones cost at most the budget."""
    fit = fit_cascades(groups_of(rows), strong="strong", max_cost_ratio=ratio, pool=3)
    cheapest = fit_cascades(groups_of(rows), strong="strong", max_cost_ratio=1e-9, pool=3)
    if cheapest.cost_usd <= ratio * fit.strong_cost_usd:
        assert fit.cost_usd <= ratio * fit.strong_cost_usd * (1 + 1e-9)


@settings(max_examples=12, deadline=None)
@given(st.lists(queries(), min_size=2, max_size=12))
def test_fit_with_the_strong_budget_is_at_least_as_accurate(rows: list[dict[str, Outcome]]) -> None:
    """With the strong model's whole budget, the fit is at least as accurate as the strong model
    on the data it was fitted on (it is one of the options)."""
    fit = fit_cascades(groups_of(rows), strong="strong", max_cost_ratio=1.0, pool=3)
    assert fit.accuracy >= fit.strong_accuracy - 1e-12


def test_fit_prefers_cheap_agreement_when_it_is_right() -> None:
    """When two cheap models are right whenever they agree, the fit asks them first."""
    right = {"a": outcome("1", True, 1e-5), "b": outcome("1", True, 1e-5),
             "c": outcome("2", False, 1e-5), "strong": outcome("1", True, 1e-3)}  # fmt: skip
    hard = {"a": outcome("2", False, 1e-5), "b": outcome("3", False, 1e-5),
            "c": outcome("4", False, 1e-5), "strong": outcome("1", True, 1e-3)}  # fmt: skip
    fit = fit_cascades({"t": [right] * 8 + [hard] * 2}, strong="strong", max_cost_ratio=0.5)
    cascade = fit.cascades["t"]
    assert set(cascade.stages[0].models) == {"a", "b"}
    assert cascade.stages[-1].models == ("strong",)
    assert fit.accuracy == 1.0 and fit.cost_usd < 0.5 * fit.strong_cost_usd


def test_fit_needs_groups_and_a_known_strong_model() -> None:
    """No groups, an empty group or an unknown strong model are ConfigErrors."""
    with pytest.raises(oc.ConfigError, match="at least one group"):
        fit_cascades({}, strong="strong")
    with pytest.raises(oc.ConfigError, match="at least one group"):
        fit_cascades({"t": []}, strong="strong")
    with pytest.raises(oc.ConfigError, match="no recorded outcomes"):
        fit_cascades({"t": [{"a": outcome("1", True)}]}, strong="strong")


def test_cross_validation_is_deterministic_and_sane() -> None:
    """Same seed, same figures; accuracies and ratios are fractions."""
    others = {"b": outcome("1", True, 2e-5), "c": outcome("2", False, 1e-5)}
    strong = {"strong": outcome("1", True, 1e-3)}
    rows = [{"a": outcome(k, k == "1", 1e-5), **others, **strong} for k in ("1", "2") * 10]
    first = cross_validate(groups_of(rows), strong="strong", repeats=2, seed=1)
    again = cross_validate(groups_of(rows), strong="strong", repeats=2, seed=1)
    assert first == again
    assert first.splits == 4
    assert 0 <= first.accuracy <= 1 and 0 < first.cost_ratio <= 1


# -- learned first stages --------------------------------------------------------------------


def learnable(count: int) -> list[dict[str, Outcome]]:
    """Queries where a and b agreeing means right, and disagreeing means the strong model is
    needed; long answers of b are wrong."""
    rows: list[dict[str, Outcome]] = []
    for index in range(count):
        easy = index % 3 != 0
        rows.append({
            "a": outcome("1" if easy else "2", easy, 1e-5),
            "b": outcome("1" if easy else "3", easy, 1e-5 if easy else 9e-5),
            "c": outcome("1", True, 5e-5),
            "strong": outcome("1", True, 1e-3),
        })  # fmt: skip
    return rows


def test_learned_first_stage_escalates_what_it_does_not_trust() -> None:
    """With `first`, the group's cascade is Scored(first) then the strong model; the scorer
    learns that disagreement is wrong, so exactly the hard third escalates."""
    rows = learnable(30)
    fit = fit_cascades({"t": rows}, strong="strong", first={"t": ("b", "a")}, max_cost_ratio=0.5)
    cascade = fit.cascades["t"]
    first, last = cascade.stages
    assert isinstance(first.check, Scored) and last.models == ("strong",)
    assert set(first.models) == {"a", "b"}
    runs = [replay(cascade, row) for row in rows]
    assert [r.model == "strong" for r in runs] == [i % 3 == 0 for i in range(30)]
    assert fit.accuracy == 1.0


@settings(max_examples=10, deadline=None)
@given(st.lists(queries(), min_size=4, max_size=14), st.sampled_from([0.1, 0.3, 1.0]))
def test_learned_fit_is_what_replay_gives_and_within_budget(
    rows: list[dict[str, Outcome]], ratio: float
) -> None:
    """The figures a learned fit reports are those of replaying its cascades; it spends at most
    the budget whenever its cheapest choice fits in it (a query no cheap model answered always
    escalates), and with the whole strong budget it is at least as accurate as the strong
    model."""
    groups = groups_of(rows)
    first = {"even": ("a", "b"), "odd": ("a", "b", "c")}
    fit = fit_cascades(groups, strong="strong", first=first, max_cost_ratio=ratio)
    runs = [replay(fit.cascades[g], q) for g, qs in groups.items() for q in qs]
    assert fit.accuracy == pytest.approx(sum(r.correct for r in runs) / len(runs))
    assert fit.cost_usd == pytest.approx(sum(r.cost_usd for r in runs) / len(runs))
    cheapest = fit_cascades(groups, strong="strong", first=first, max_cost_ratio=1e-9)
    if cheapest.cost_usd <= ratio * fit.strong_cost_usd:
        assert fit.cost_usd <= ratio * fit.strong_cost_usd * (1 + 1e-9)
    if ratio == 1.0:
        assert fit.accuracy >= fit.strong_accuracy - 1e-12


def test_learned_fit_refuses_bad_first_stages() -> None:
    """Unknown groups and models without outcomes are ConfigErrors naming them."""
    rows = learnable(6)
    with pytest.raises(oc.ConfigError, match="unknown groups"):
        fit_cascades({"t": rows}, strong="strong", first={"other": ("a",)})
    with pytest.raises(oc.ConfigError, match="missing: zzz"):
        fit_cascades({"t": rows}, strong="strong", first={"t": ("a", "zzz")})
    with pytest.raises(oc.ConfigError, match="no first-stage models"):
        fit_cascades({"t": rows}, strong="strong", first={"t": ()})
