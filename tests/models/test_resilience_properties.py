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
    """At most retries+1 failing requests per model, besides the 429s waited out (each
    request waits out at most `rate_limit_waits` of them); success names a chain model;
    failure lists every request."""
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
        attempts = cause.attempts
        assert all(a.error for a in attempts)
    else:
        node = result.nodes["t"]
        assert node.model in names
        attempts = node.attempts
        assert attempts[-1].error is None and attempts[-1].model == node.model
    finally:
        fake.close()
    assert len(attempts) == len(fake.calls)
    waits = policy.rate_limit_waits
    for name in names:
        mine = [a for a in attempts if a.model == name]
        # A 429 past the last wait is a failed attempt like any other.
        failing = [a for a in mine if a.status_code != 429 or a.error is None]
        assert len(failing) <= retries + 1
        assert len(mine) <= (retries + 1) * (waits + 1)


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
