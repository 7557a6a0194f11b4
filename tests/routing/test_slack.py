"""Slack: node timings on the estimated schedule, and SlackAware's choices."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import orchestra as oc
from orchestra.priority import NodeTiming, critical_path_priorities, node_timings
from orchestra.testing.strategies import dag_shapes

pytestmark = pytest.mark.anyio

FAST = oc.ModelSpec(name="fast", model="x/f", input_cost=0.1, output_cost=0.1, quality=0.6,
                    ttft=0.1, decode_tps=1800)  # fmt: skip
SLOW = oc.ModelSpec(name="slow", model="x/s", input_cost=0.05, output_cost=0.08, quality=0.6,
                    ttft=0.15, decode_tps=750)  # fmt: skip
WEAK = oc.ModelSpec(name="weak", model="x/w", input_cost=0.01, output_cost=0.01, quality=0.3,
                    ttft=0.5, decode_tps=100)  # fmt: skip


def request(timing: NodeTiming | None) -> oc.RouteRequest:
    """A request over FAST, SLOW and WEAK at a place on the schedule."""
    return oc.RouteRequest(
        oc.Task(id="t", agent="a", prompt="p"), oc.Agent(name="a"), "p", (FAST, SLOW, WEAK),
        timing=timing,
    )  # fmt: skip


@settings(max_examples=25)
@given(
    dag_shapes(max_nodes=10),
    st.lists(st.floats(min_value=0.1, max_value=5.0), min_size=10, max_size=10),
)
def test_stretching_each_node_by_its_stretch_keeps_the_makespan(
    shape: dict[str, tuple[str, ...]], durations: list[float]
) -> None:
    """Slowing every node by its own stretch lengthens no path past the makespan."""
    deps = {node: set(parents) for node, parents in shape.items()}
    weights = {node: durations[i] for i, node in enumerate(shape)}
    timings = node_timings(deps, weights)
    makespan = max(critical_path_priorities(deps, weights).values())
    stretched = {node: weights[node] * timings[node].stretch for node in deps}
    assert max(critical_path_priorities(deps, stretched).values()) <= makespan * (1 + 1e-9)
    assert all(t.slack >= 0 and t.stretch >= 1 for t in timings.values())
    assert any(t.critical for t in timings.values())


def test_node_timings_of_a_chain_and_a_side_branch() -> None:
    """A chain is critical; a short side branch has the difference as slack."""
    deps: dict[str, set[str]] = {"a": set(), "b": {"a"}, "c": {"b"}, "side": set()}
    timings = node_timings(deps, {"a": 1, "b": 1, "c": 1, "side": 1})
    assert [timings[n].critical for n in "abc"] == [True, True, True]
    assert (timings["side"].slack, timings["side"].stretch) == (2.0, 3.0)


def test_without_timing_the_fastest_model_is_chosen() -> None:
    """Outside the scheduler SlackAware plays safe: the fastest good-enough model."""
    decision = oc.routing.SlackAware(min_quality=0.5).choose(request(None))
    assert decision == oc.RouteDecision("fast", "no schedule information: fastest model")


def test_critical_nodes_get_the_fastest_model() -> None:
    """On the critical path (stretch 1) only the fastest model fits."""
    decision = oc.routing.SlackAware(min_quality=0.5).choose(request(NodeTiming(1, 4, 4)))
    assert decision.model == "fast"
    assert decision.reason == "on the critical path: fastest model"


def test_slack_buys_the_cheapest_model_that_fits() -> None:
    """With enough stretch the cheaper, slower model fits; quality bars still hold."""
    policy = oc.routing.SlackAware(min_quality=0.5)
    decision = policy.choose(request(NodeTiming(1, 1, 4)))
    assert decision.model == "slow"
    assert decision.reason.startswith("slack 3.00s")
    assert oc.routing.SlackAware(min_quality=0.5).choose(request(NodeTiming(1, 3.5, 4))).model == (
        "fast"
    )  # stretch 1.14: not enough for the slow model
    assert oc.routing.SlackAware().choose(request(NodeTiming(1, 0.1, 40))).model == "weak"
    assert oc.routing.SlackAware(min_quality=0.99).choose(request(None)).model == "fast"


def test_safety_must_be_a_fraction() -> None:
    """A safety outside (0, 1] is refused."""
    with pytest.raises(ValueError, match="safety"):
        oc.routing.SlackAware(safety=0)


@dataclass
class Spy:
    """Records what each node's route request knew, and routes to `fast`."""

    seen: dict[str, oc.RouteRequest] = field(default_factory=dict[str, oc.RouteRequest])

    def choose(self, request: oc.RouteRequest) -> oc.RouteDecision:
        self.seen[request.task.id] = request
        return oc.RouteDecision("fast", "spy")


CHAIN_AND_SIDE = oc.Plan(
    tasks=[
        oc.Task(id="a", agent="researcher", prompt="a"),
        oc.Task(id="b", agent="researcher", prompt="b {a}", after=["a"]),
        oc.Task(id="c", agent="researcher", prompt="c {b}", after=["b"]),
        oc.Task(id="side", agent="researcher", prompt="s"),
    ]
)


async def test_the_scheduler_hands_timing_and_budget_to_the_router() -> None:
    """Each request carries the node's timing, the budget left and the open circuits."""
    spy = Spy()
    orch = oc.Orchestra(
        models=oc.simulated.constellation(time_scale=0.0),
        agents=[oc.Agent(name="researcher")],
        router=spy,
        budget=oc.Budget(max_usd=1.0),
        max_parallel=1,
    )
    await orch.execute(CHAIN_AND_SIDE)
    assert [spy.seen[n].critical for n in ("a", "b", "c")] == [True, True, True]
    side = spy.seen["side"]
    assert not side.critical and side.slack is not None and side.slack > 0
    assert side.timing is not None and side.timing.stretch == pytest.approx(3.0, rel=0.01)
    left = [spy.seen[n].budget_left_usd for n in ("a", "b", "c")]
    assert left[0] == 1.0 and all(usd is not None and usd < 1.0 for usd in left[1:])
    assert side.unavailable == frozenset()


async def test_slack_aware_places_the_side_branch_on_the_cheap_model() -> None:
    """Through Orchestra: the chain runs on the fastest model, the side branch on the cheapest."""
    orch = oc.Orchestra(
        models=oc.simulated.constellation(time_scale=0.0),
        agents=[oc.Agent(name="researcher")],
        router=oc.routing.SlackAware(min_quality=0.6),
    )
    result = await orch.execute(CHAIN_AND_SIDE)
    assert {n: result.nodes[n].model for n in ("a", "b", "c", "side")} == {
        "a": "fast-wafer", "b": "fast-wafer", "c": "fast-wafer", "side": "fast",
    }  # fmt: skip
    assert (result.nodes["side"].route or "").startswith("slack ")
