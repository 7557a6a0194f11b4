"""Shared test helpers: a constellation of fakes and a small team of agents."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

import orchestra as oc
from orchestra.models.loader import when_litellm_loaded
from orchestra.testing import FakeModel, FakeRequest, fake_constellation

# Property tests judge outcomes, never speed: a wall-clock deadline (hypothesis's default is
# 200 ms per example) or a slow-generation health check fails them on a loaded CI machine.
settings.register_profile("orchestra", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("orchestra")


def _keep_litellm_clients(litellm: Any) -> None:
    # litellm caches one HTTP client per event loop (200 at most) and closes an evicted one on
    # its own loop; each test's loop is gone by then, so past 200 tests the evicted clients'
    # sockets would be collected unclosed. A suite's worth fits.
    litellm.in_memory_llm_clients_cache.max_size_in_memory = 100_000


when_litellm_loaded(_keep_litellm_clients)


@pytest.fixture(scope="session", autouse=True)
def _warm_litellm() -> None:
    """Pay litellm's one-time import and first-call set-up before any test is timed."""
    import anyio

    warm = FakeModel()
    models = fake_constellation(warm)
    plan = oc.Plan(tasks=[oc.Task(id="warm", agent="assistant", prompt="hi")])
    anyio.run(oc.Orchestra(models=models).execute, plan, backend="asyncio")
    warm.close()


class InFlight:
    """A FakeModel handler that answers after a short wait and records the peak of calls in
    flight at once."""

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0

    async def answer(self, request: FakeRequest) -> str:
        import anyio

        self.running += 1
        self.peak = max(self.peak, self.running)
        await anyio.sleep(0.01)
        self.running -= 1
        return "x"


@pytest.fixture
def in_flight(fake: FakeModel) -> InFlight:
    """The fake answers through an InFlight counter (read `.peak` after the run)."""
    counter = InFlight()
    fake.handler = counter.answer
    return counter


@pytest.fixture
def team() -> list[oc.Agent]:
    """A researcher placed by the router and a writer pinned to `mid`."""
    return [
        oc.Agent(name="researcher", description="finds facts"),
        oc.Agent(name="writer", description="writes prose", model="mid"),
    ]


@pytest.fixture
def fake() -> Iterator[FakeModel]:
    """A FakeModel closed after the test."""
    model = FakeModel()
    yield model
    model.close()


@pytest.fixture
def orch(fake: FakeModel, team: list[oc.Agent]) -> oc.Orchestra:
    """An Orchestra on the fake constellation (boss, fast, mid) with the team."""
    return oc.Orchestra(models=fake_constellation(fake), agents=team, boss="boss")
