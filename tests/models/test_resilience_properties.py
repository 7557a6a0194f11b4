"""Property: over random failure scripts and policies, request counts stay within the policy's
bound, and a node either answers from a model of its chain or fails listing every attempt."""

from __future__ import annotations

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import orchestra as oc
from orchestra.testing import FakeFailure, FakeModel, FakeReply

OUTCOMES = st.sampled_from(
    [
        FakeReply("ok"),
        FakeReply(""),  # empty content: transient
        FakeFailure(429),
        FakeFailure(500),
        FakeFailure(503),
        FakeFailure(400),
        FakeFailure(401),
        FakeFailure(context_overflow=True),
    ]
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scripts=st.lists(st.lists(OUTCOMES, min_size=1, max_size=6), min_size=1, max_size=3),
    retries=st.integers(0, 3),
)
def test_request_counts_and_outcomes_are_bounded(
    scripts: list[list[FakeReply | FakeFailure]], retries: int
) -> None:
    """At most retries+1 requests per model; success names a chain model; failure lists all."""
    names = [f"m{i}" for i in range(len(scripts))]
    fake = FakeModel(responses=dict(zip(names, scripts, strict=True)))
    policy = oc.RetryPolicy(max_retries=retries, backoff=0.0, jitter=0.0)
    specs = [
        oc.ModelSpec(
            name=name,
            model=fake.model(name),
            retry=policy,
            max_context=1000 * (i + 1),
            fallbacks=names[i + 1 :],
            breaker=oc.BreakerPolicy(failures=1000),
        )
        for i, name in enumerate(names)
    ]
    orch = oc.Orchestra(models=specs, agents=[oc.Agent(name="w", model="m0")])
    plan = oc.Plan(tasks=[oc.Task(id="t", agent="w", prompt="x")])
    try:
        result = anyio.run(orch.execute, plan, backend="asyncio")
    except oc.NodeFailed as failed:
        cause = failed.__cause__
        assert isinstance(cause, oc.ModelError)
        assert len(cause.attempts) == len(fake.calls)
        assert all(a.error for a in cause.attempts)
    else:
        node = result.nodes["t"]
        assert node.model in names
        assert node.attempts[-1].error is None and node.attempts[-1].model == node.model
        assert len(node.attempts) == len(fake.calls)
    finally:
        fake.close()
    for name in names:
        assert len(fake.calls_for(name)) <= retries + 1
    assert len(fake.calls) <= (retries + 1) * len(names)


@pytest.mark.anyio
async def test_breaker_state_machine_with_a_fake_clock() -> None:
    """closed -> open after N failures in the window -> half-open after the cool-down (one
    probe) -> closed on success, or open again on failure."""
    from orchestra.models.breaker import CircuitBreaker

    now = [0.0]
    breaker = CircuitBreaker(oc.BreakerPolicy(failures=2, window=10, cooldown=5), lambda: now[0])
    breaker.failure()
    now[0] = 11.0  # the first failure left the window
    breaker.failure()
    assert breaker.state == "closed"
    breaker.failure()
    assert breaker.state == "open" and not breaker.allow()
    now[0] = 16.5
    assert breaker.peek() == "half_open"
    assert breaker.allow() and not breaker.allow()  # exactly one probe
    breaker.failure()
    assert breaker.state == "open"
    now[0] = 22.0
    assert breaker.allow()
    breaker.success()
    assert breaker.state == "closed" and breaker.allow()
