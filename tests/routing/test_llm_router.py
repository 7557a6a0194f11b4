"""LLMRouter: a small model picks the node's model, paid by the node; bad answers fall back."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import orchestra as oc
from orchestra.events import ModelCalled
from orchestra.routing import LLMRouter
from orchestra.routing.llm import parse_choice
from orchestra.testing import FakeFailure, FakeModel, FakeReply, FakeRequest, fake_constellation

pytestmark = pytest.mark.anyio

PROFILES = {
    "router": {"input_cost": 0.05, "output_cost": 0.08, "quality": 0.5},
    "fast": {"input_cost": 0.1, "output_cost": 0.1, "quality": 0.6},
    "strong": {"input_cost": 5.0, "output_cost": 15.0, "quality": 0.9, "tags": {"math"}},
}
PLAN = oc.Plan(tasks=[oc.Task(id="q", agent="solver", prompt="Prove Fermat's last theorem.")])


def fake(router_reply: str | FakeFailure) -> FakeModel:
    """The router model replies `router_reply`; every other model says which it is."""

    def answer(request: FakeRequest) -> FakeReply | FakeFailure:
        if request.model == "router":
            if isinstance(router_reply, FakeFailure):
                return router_reply
            return FakeReply(router_reply, input_tokens=200, output_tokens=20)
        return FakeReply(f"answer of {request.model}", input_tokens=10, output_tokens=10)

    return FakeModel(handler=answer, fail_first=0)


async def run(
    model: FakeModel, policy: oc.RoutingPolicy
) -> tuple[oc.NodeResult, list[oc.Event], list[FakeRequest]]:
    """Run PLAN under `policy`; the node's result, the events and the calls made."""
    events: list[oc.Event] = []
    orch = oc.Orchestra(
        models=fake_constellation(model, PROFILES),
        agents=[oc.Agent(name="solver")],
        router=policy,
        on_event=events.append,
    )
    result = await orch.execute(PLAN)
    return result.nodes["q"], events, list(model.calls)


async def test_the_routers_pick_answers_and_its_reason_is_recorded() -> None:
    """The router's choice answers the node; its reason is on the result and in the events."""
    reply = 'Here you go:\n```json\n{"model": "strong", "reason": "a hard proof"}\n```'
    node, events, calls = await run(fake(reply), LLMRouter("router"))
    assert node.model == "strong"
    assert node.output == "answer of strong"
    assert node.route == "router 'router' chose strong: a hard proof"
    called = [e for e in events if isinstance(e, ModelCalled)]
    assert [(e.model, e.reason) for e in called] == [
        ("router", "routing: choosing a model"),
        ("strong", "router 'router' chose strong: a hard proof"),
    ]
    shown = calls[0].prompt
    assert "Prove Fermat" in shown and "- strong: quality 0.90" in shown and "tags: math" in shown


async def test_the_router_calls_cost_is_in_the_nodes_usage() -> None:
    """The node pays for the router's call and the chosen model's."""
    node, _, _ = await run(fake('{"model": "fast", "reason": "easy"}'), LLMRouter("router"))
    router = PROFILES["router"]
    fast = PROFILES["fast"]
    expected = (200 * router["input_cost"] + 20 * router["output_cost"]) / 1e6 + (
        10 * fast["input_cost"] + 10 * fast["output_cost"]
    ) / 1e6
    assert node.usage.calls == 2
    assert node.cost_usd == pytest.approx(expected)


async def test_a_garbage_answer_falls_back_and_says_so() -> None:
    """A reply naming no candidate goes to the fallback (default Cheapest); the reason says why."""
    node, _, _ = await run(fake("I think gpt-9 would be best"), LLMRouter("router"))
    assert node.model == "router"  # the cheapest candidate
    assert node.route is not None
    assert node.route.startswith("router 'router' named no usable model")
    assert "fallback: cheapest with quality >= 0.0" in node.route
    assert node.usage.calls == 2


async def test_a_failing_router_falls_back_to_the_configured_policy() -> None:
    """A router call that fails leaves the choice to `fallback`, and the node still runs."""
    policy = LLMRouter("router", fallback=oc.routing.Fixed("fast"))
    node, _, _ = await run(fake(FakeFailure(400)), policy)
    assert node.ok and node.model == "fast"
    assert node.route is not None
    assert (
        node.route.startswith("router 'router' failed") and "fallback: fixed policy" in node.route
    )


async def test_inside_per_agent_the_router_is_still_awaited() -> None:
    """PerAgent passes the async path through to an LLMRouter it holds."""
    policy = oc.routing.PerAgent({"solver": LLMRouter("router")})
    node, _, _ = await run(fake('{"model": "strong"}'), policy)
    assert node.model == "strong"
    assert node.route == "router 'router' chose strong: no reason"


async def test_choose_without_a_model_call_uses_the_fallback() -> None:
    """Synchronous `choose` cannot ask the router: it returns the fallback's pick, said so."""
    request = oc.RouteRequest(
        PLAN.tasks[0],
        oc.Agent(name="solver"),
        "p",
        tuple(fake_constellation(FakeModel(), PROFILES)),
    )
    decision = LLMRouter("router").choose(request)
    assert decision.model == "router"
    assert decision.reason.startswith("router 'router' not asked")


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"model": "fast", "reason": "simple  arithmetic"}', ("fast", "simple arithmetic")),
        ('{"reasoning": "x", "model": "Strong"} trailing words', ("strong", "")),
        ('{"model": "fast", "reason": "uses \\q" and no brace', ("fast", "uses \\q")),
        ("  `strong`. ", ("strong", "")),
        ('{"name": "fast"}', ("fast", "")),
        ('{"model": 3}', (None, "")),
        ("", (None, "")),
    ],
)
async def test_parse_choice_is_tolerant(reply: str, expected: tuple[str | None, str]) -> None:
    """Fenced, bare, trailing-text, broken and name-only replies all parse; others give None."""
    assert parse_choice(reply, ["fast", "strong"]) == expected


NAMES = st.lists(
    st.text(alphabet="abcdefgh-0123456789.", min_size=1, max_size=12), min_size=1, max_size=5
)


@settings(max_examples=60, deadline=None)
@given(names=NAMES, data=st.data())
def test_parse_choice_finds_the_named_model_in_any_wrapping(
    names: list[str], data: st.DataObject
) -> None:
    """A JSON choice wrapped in any prose is found; a parse never names a non-candidate."""
    name = data.draw(st.sampled_from(names))
    before = data.draw(st.text(alphabet="abc xyz:\n", max_size=30))
    after = data.draw(st.text(max_size=30))
    reply = f"{before}{json.dumps({'model': name.upper(), 'reason': 'r'})}{after}"
    picked, _ = parse_choice(reply, names)
    assert picked is not None and picked.casefold() == name.casefold()
    noise = data.draw(st.text(max_size=60))
    assert parse_choice(noise, names)[0] in (None, *names)


def test_a_hostile_reply_names_no_model_quickly() -> None:
    """100,000 nested objects or brackets name no model (never a RecursionError); only the
    start of a runaway reply is read."""
    from orchestra.routing.llm import parse_choice

    for reply in ('{"a":' * 50_000, "{" * 100_000, "[" * 100_000):
        assert parse_choice(reply, ["fast"]) == (None, "")
    assert parse_choice('{"model": "fast"}' + " " * 100_000, ["fast"]) == ("fast", "")
