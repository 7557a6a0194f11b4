"""Routing policies, and how Orchestra narrows and checks their choices."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

import orchestra as oc
from orchestra.testing import FakeModel, fake_constellation

pytestmark = pytest.mark.anyio

TASK = oc.Task(id="t", agent="a", prompt="p")
AGENT = oc.Agent(name="a")


def spec(name: str, *, price: float, quality: float, **fields: object) -> oc.ModelSpec:
    """A spec costing `price` per 1M tokens in and out."""
    return oc.ModelSpec(
        name=name,
        model=f"x/{name}",
        input_cost=price,
        output_cost=price,
        quality=quality,
        **fields,  # type: ignore[arg-type]
    )


CHEAP = spec("cheap", price=0.05, quality=0.4)
MID = spec("mid", price=0.6, quality=0.75)
STRONG = spec("strong", price=5.0, quality=0.9)


def request(*candidates: oc.ModelSpec) -> oc.RouteRequest:
    return oc.RouteRequest(TASK, AGENT, "p", candidates)


# -- the policies on their own --------------------------------------------------------------


async def test_fixed_picks_its_model() -> None:
    """Fixed always answers its model, with the reason `fixed policy`."""
    decision = oc.routing.Fixed("mid").choose(request(CHEAP, MID, STRONG))
    assert decision == oc.RouteDecision("mid", "fixed policy")


async def test_fixed_non_candidate_is_config_error() -> None:
    """Fixed on a model the agent may not use is a ConfigError listing the candidates."""
    with pytest.raises(oc.ConfigError, match=r"Fixed\('strong'\) cannot run agent 'a'.*cheap, mid"):
        oc.routing.Fixed("strong").choose(request(CHEAP, MID))


async def test_cheapest_picks_cheapest_above_the_bar() -> None:
    """Cheapest skips models under min_quality and takes the cheapest of the rest."""
    decision = oc.routing.Cheapest(min_quality=0.5).choose(request(STRONG, CHEAP, MID))
    assert decision.model == "mid"
    assert decision.reason == "cheapest with quality >= 0.5 (quality 0.75)"


async def test_cheapest_without_bar_takes_cheapest() -> None:
    """With the default bar of 0, the cheapest model wins whatever its quality."""
    assert oc.routing.Cheapest().choose(request(STRONG, MID, CHEAP)).model == "cheap"


async def test_cheapest_weights_input_price_three_to_one() -> None:
    """Price compares 3 x input + output: a cheap-input model beats a cheap-output one."""
    reader = oc.ModelSpec(name="reader", model="x/r", input_cost=0.1, output_cost=1.0)
    writer = oc.ModelSpec(name="writer", model="x/w", input_cost=0.5, output_cost=0.1)
    assert oc.routing.Cheapest().choose(request(writer, reader)).model == "reader"


async def test_cheapest_tie_goes_to_higher_quality() -> None:
    """Between equally priced models, the stronger one is chosen."""
    weak = spec("weak", price=1.0, quality=0.6)
    strong = spec("strong2", price=1.0, quality=0.8)
    assert oc.routing.Cheapest().choose(request(weak, strong)).model == "strong2"


async def test_cheapest_none_above_bar_takes_strongest_and_says_so() -> None:
    """When no model reaches the bar, the strongest is used and the reason explains it."""
    decision = oc.routing.Cheapest(min_quality=0.95).choose(request(CHEAP, STRONG, MID))
    assert decision.model == "strong"
    assert decision.reason == "no model reaches quality 0.95; strongest is 0.9"


async def test_cheapest_skips_models_whose_circuit_is_open() -> None:
    """A model with an open breaker is passed over; if every model is, it is used anyway."""
    skipping = oc.RouteRequest(TASK, AGENT, "p", (CHEAP, MID), unavailable=frozenset({"cheap"}))
    assert oc.routing.Cheapest().choose(skipping).model == "mid"
    all_down = oc.RouteRequest(TASK, AGENT, "p", (CHEAP,), unavailable=frozenset({"cheap"}))
    assert oc.routing.Cheapest().choose(all_down).model == "cheap"


async def test_cheapest_skips_models_the_budget_cannot_pay_for() -> None:
    """With a budget left, models whose predicted cost exceeds it are left out."""
    costly = spec("costly", price=1000.0, quality=0.9)
    left = 2 * oc.routing.estimate.predicted_cost(MID, "p")
    tight = oc.RouteRequest(TASK, AGENT, "p", (costly, MID), budget_left_usd=left)
    assert oc.routing.Cheapest(min_quality=0.7).choose(tight).model == "mid"
    broke = oc.RouteRequest(TASK, AGENT, "p", (costly, MID), budget_left_usd=0.0)
    assert broke.usable() == (MID,)  # none fits: the cheapest is kept


async def test_per_agent_uses_the_agents_policy_else_default() -> None:
    """PerAgent asks the policy named by the agent, and the default for other agents."""
    policy = oc.routing.PerAgent({"a": oc.routing.Fixed("strong")}, default=oc.routing.Fixed("mid"))
    assert policy.choose(request(CHEAP, MID, STRONG)).model == "strong"
    other = oc.RouteRequest(TASK, oc.Agent(name="b"), "p", (CHEAP, MID, STRONG))
    assert policy.choose(other).model == "mid"
    assert oc.routing.PerAgent({}).choose(other).model == "cheap"


# -- through Orchestra ----------------------------------------------------------------------

PROFILES = {
    "fast": {"input_cost": 0.05, "output_cost": 0.08, "quality": 0.6},
    "coder": {"input_cost": 3.0, "output_cost": 15.0, "quality": 0.85, "tags": {"code"}},
    "boss": {"input_cost": 2.5, "output_cost": 10.0, "quality": 0.9, "tags": {"planning"}},
}
ONE_TASK = oc.Plan(tasks=[oc.Task(id="t", agent="a", prompt="p")])


def _orch(
    fake: FakeModel, agent: oc.Agent, **options: object
) -> tuple[oc.Orchestra, list[oc.Event]]:
    events: list[oc.Event] = []
    orch = oc.Orchestra(
        models=fake_constellation(fake, PROFILES),
        agents=[agent],
        on_event=events.append,
        **options,  # type: ignore[arg-type]
    )
    return orch, events


def _reasons(events: list[oc.Event]) -> list[tuple[str, str]]:
    return [(e.model, e.reason) for e in events if e.kind == "model_called"]


async def test_route_reason_reaches_model_called_events(fake: FakeModel) -> None:
    """The router's choice and reason are in the model_called event and the node result."""
    orch, events = _orch(fake, oc.Agent(name="a"), router=oc.routing.Cheapest(min_quality=0.5))
    result = await orch.execute(ONE_TASK)
    assert result.nodes["t"].model == "fast"
    assert _reasons(events) == [("fast", "cheapest with quality >= 0.5 (quality 0.6)")]


async def test_agent_tags_narrow_the_candidates(fake: FakeModel) -> None:
    """An agent tagged `code` lands on the only model tagged `code`, however pricey."""
    orch, events = _orch(fake, oc.Agent(name="a", tags=frozenset({"code"})))
    result = await orch.execute(ONE_TASK)
    assert result.nodes["t"].model == "coder"
    assert [c.model for c in fake.calls] == ["coder"]
    assert _reasons(events)[0][0] == "coder"


async def test_no_model_with_agent_tags_fails_node_with_config_error(fake: FakeModel) -> None:
    """An agent whose tags no model has fails its node with a ConfigError; nothing is called."""
    orch, _ = _orch(fake, oc.Agent(name="a", tags=frozenset({"code", "vision"})))
    with pytest.raises(oc.NodeFailed, match="no model has all of agent 'a'") as info:
        await orch.execute(ONE_TASK)
    assert isinstance(info.value.__cause__, oc.ConfigError)
    assert fake.calls == []


async def test_fixed_on_a_tag_excluded_model_fails_node(fake: FakeModel) -> None:
    """Fixed on a model outside the agent's tagged candidates fails the node with ConfigError."""
    orch, _ = _orch(
        fake, oc.Agent(name="a", tags=frozenset({"code"})), router=oc.routing.Fixed("fast")
    )
    with pytest.raises(oc.NodeFailed) as info:
        await orch.execute(ONE_TASK)
    assert isinstance(info.value.__cause__, oc.ConfigError)
    assert fake.calls == []


@dataclass(frozen=True)
class Rogue:
    """A policy that answers a model it was not offered."""

    model: str

    def choose(self, request: oc.RouteRequest) -> oc.RouteDecision:
        return oc.RouteDecision(self.model, "rogue")


@pytest.mark.parametrize(("tags", "model"), [((), "nowhere"), (("code",), "fast")])
async def test_router_returning_non_candidate_fails_node(
    fake: FakeModel, tags: tuple[str, ...], model: str
) -> None:
    """A policy choosing an unknown or tag-excluded model fails the node with a ConfigError."""
    orch, _ = _orch(fake, oc.Agent(name="a", tags=frozenset(tags)), router=Rogue(model))
    with pytest.raises(oc.NodeFailed, match="not a candidate") as info:
        await orch.execute(ONE_TASK)
    assert isinstance(info.value.__cause__, oc.ConfigError)
    assert info.value.task_id == "t"
    assert fake.calls == []


async def test_policy_sees_tag_filtered_candidates_in_order(fake: FakeModel) -> None:
    """The policy is offered only the models having the agent's tags, in constellation order."""
    seen: list[tuple[str, ...]] = []

    @dataclass(frozen=True)
    class Spy:
        def choose(self, request: oc.RouteRequest) -> oc.RouteDecision:
            seen.append(tuple(s.name for s in request.candidates))
            assert request.prompt == "p"
            assert request.agent.name == "a"
            return oc.RouteDecision(request.candidates[-1].name, "last")

    orch, _ = _orch(fake, oc.Agent(name="a"), router=Spy())
    await orch.execute(ONE_TASK)
    assert seen == [("fast", "coder", "boss")]


async def test_pins_bypass_the_router_with_their_reason(fake: FakeModel) -> None:
    """A task's or agent's pinned model skips the router; the reason says who pinned it."""
    orch, events = _orch(fake, oc.Agent(name="a", model="boss"), router=Rogue("nowhere"))
    plan = oc.Plan(
        tasks=[
            oc.Task(id="t", agent="a", prompt="p"),
            oc.Task(id="u", agent="a", prompt="p", model="coder"),
        ]
    )
    result = await orch.execute(plan)
    assert (result.nodes["t"].model, result.nodes["u"].model) == ("boss", "coder")
    assert sorted(_reasons(events)) == [
        ("boss", "pinned by agent 'a'"),
        ("coder", "pinned by the task"),
    ]
