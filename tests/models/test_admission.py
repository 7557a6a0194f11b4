"""Limits: the sliding rate window, the budget, and per-model concurrency and rates."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel
import pytest

import orchestra as oc

if TYPE_CHECKING:
    from tests.conftest import InFlight
from orchestra.models.admission import ModelLimits, RateWindow
from orchestra.models.tokens import estimate_tokens
from orchestra.testing import FakeModel, fake_constellation

pytestmark = pytest.mark.anyio


class FakeClock:
    """A clock tests move by hand; `sleep` advances it instead of waiting."""

    def __init__(self) -> None:
        self.now = [0.0]
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now[-1]

    def at(self, t: float) -> None:
        self.now.append(t)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now.append(self.now[-1] + seconds)


# -- RateWindow -----------------------------------------------------------------------------


async def test_rpm_waits_until_oldest_request_leaves_window() -> None:
    """With rpm requests in the last minute, the next waits until the oldest is 60 s old."""
    clock = FakeClock()
    window = RateWindow(rpm=2, tpm=None, clock=clock)
    window.record(1)
    clock.at(10.0)
    assert window.wait_time(1) == 0.0
    window.record(1)
    clock.at(20.0)
    assert window.wait_time(1) == pytest.approx(40.0)
    clock.at(59.0)
    assert window.wait_time(1) == pytest.approx(1.0)


async def test_requests_expire_after_60_seconds() -> None:
    """A request 60 s old no longer counts against the limits."""
    clock = FakeClock()
    window = RateWindow(rpm=1, tpm=10, clock=clock)
    window.record(10)
    clock.at(59.999)
    assert window.wait_time(1) > 0
    clock.at(60.0)
    assert window.wait_time(10) == 0.0


async def test_rpm_wait_counts_from_the_right_request() -> None:
    """With rpm=2 and three requests in the window (a lowered limit), wait for the second."""
    clock = FakeClock()
    window = RateWindow(rpm=3, tpm=None, clock=clock)
    for t in (0.0, 5.0, 10.0):
        clock.at(t)
        window.record(1)
    window.rpm = 2
    clock.at(15.0)
    assert window.wait_time(1) == pytest.approx(5.0 + 60.0 - 15.0)


async def test_tpm_waits_until_enough_tokens_expire() -> None:
    """A request that would pass tpm waits until enough earlier tokens leave the window."""
    clock = FakeClock()
    window = RateWindow(rpm=None, tpm=100, clock=clock)
    window.record(60)
    clock.at(10.0)
    window.record(30)
    clock.at(20.0)
    assert window.wait_time(10) == 0.0
    assert window.wait_time(20) == pytest.approx(40.0)  # the 60 at t=0 must go
    assert window.wait_time(80) == pytest.approx(50.0)  # both must go


async def test_oversize_request_goes_alone() -> None:
    """A request larger than tpm is not refused forever: it goes once the window is empty."""
    clock = FakeClock()
    window = RateWindow(rpm=None, tpm=100, clock=clock)
    assert window.wait_time(500) == 0.0
    window.record(500)
    clock.at(1.0)
    assert window.wait_time(1) == pytest.approx(59.0)
    clock.at(60.0)
    assert window.wait_time(500) == 0.0


async def test_no_limits_never_wait() -> None:
    """Without rpm or tpm nothing waits."""
    window = RateWindow(rpm=None, tpm=None, clock=FakeClock())
    for _ in range(1000):
        window.record(10_000)
    assert window.wait_time(10_000) == 0.0


async def test_record_uses_the_clock_and_returns_entry() -> None:
    """record() stamps the entry with the clock; its tokens can be corrected later."""
    clock = FakeClock()
    clock.at(3.0)
    window = RateWindow(rpm=None, tpm=100, clock=clock)
    sent = window.record(5)
    assert (sent.at, sent.tokens) == (3.0, 5)
    sent.tokens = 100  # the provider's count
    assert window.wait_time(1) == pytest.approx(60.0)


async def test_estimate_tokens_is_a_quarter_of_characters() -> None:
    """estimate_tokens is about one token per four characters, at least one."""
    assert estimate_tokens("") == 1
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    assert estimate_tokens("x" * 400) == 100


# -- Budget ---------------------------------------------------------------------------------


async def test_budget_exceeded_names_the_limit() -> None:
    """exceeded() names max_usd or max_tokens once reached, else None."""
    budget = oc.Budget(max_usd=0.5, max_tokens=1000)
    assert budget.exceeded(cost_usd=0.49, tokens=999) is None
    assert budget.exceeded(cost_usd=0.5, tokens=0) == "max_usd"
    assert budget.exceeded(cost_usd=0.0, tokens=1000) == "max_tokens"
    assert budget.exceeded(cost_usd=1.0, tokens=10_000) == "max_usd"


async def test_unlimited_budget_is_never_exceeded() -> None:
    """A budget with no limits (max_seconds is a deadline, not spending) is never exceeded."""
    assert oc.Budget(max_seconds=1).exceeded(cost_usd=1e9, tokens=10**12) is None


@pytest.mark.parametrize("field", ["max_usd", "max_tokens", "max_seconds"])
async def test_budget_limits_must_be_positive(field: str) -> None:
    """Zero or negative limits are a ConfigError."""
    with pytest.raises(oc.ConfigError, match=field):
        oc.Budget(**{field: 0})


# -- ModelLimits ----------------------------------------------------------------------------


def _spec(**fields: object) -> oc.ModelSpec:
    return oc.ModelSpec(name="m", model="x/m", **fields)  # type: ignore[arg-type]


async def test_acquire_honours_rpm_with_injected_sleep() -> None:
    """The third request in a minute with rpm=2 sleeps (on the injected clock) for the window."""
    clock = FakeClock()
    limits = ModelLimits(clock=clock, sleep=clock.sleep)
    spec = _spec(rpm=2)
    stamps = []
    for _ in range(3):
        async with limits.acquire(spec, tokens=1) as sent:
            stamps.append(sent.at)
    assert clock.slept == [60.0]
    assert stamps == [0.0, 0.0, 60.0]


async def test_acquire_honours_tpm_with_injected_sleep() -> None:
    """Corrected token counts fill the tpm window; the next request waits for them to expire."""
    clock = FakeClock()
    limits = ModelLimits(clock=clock, sleep=clock.sleep)
    spec = _spec(tpm=1000)
    async with limits.acquire(spec, tokens=10) as sent:
        sent.tokens = 990  # what the provider reported
    clock.at(30.0)
    async with limits.acquire(spec, tokens=20) as sent:
        assert sent.at == 60.0
    assert clock.slept == [30.0]


async def test_swapped_rpm_applies_to_later_calls() -> None:
    """A spec swapped in with a new rpm changes the window of later calls."""
    clock = FakeClock()
    limits = ModelLimits(clock=clock, sleep=clock.sleep)
    async with limits.acquire(_spec(rpm=1), tokens=1):
        pass
    async with limits.acquire(_spec(rpm=5), tokens=1):
        pass
    assert clock.slept == []


async def _settle() -> None:
    """Let started tasks run until they hold a slot or wait for one (no real sleeping)."""
    for _ in range(10):
        await anyio.lowlevel.checkpoint()


async def _hold(limits: ModelLimits, spec: oc.ModelSpec, release: anyio.Event) -> None:
    async with limits.acquire(spec, tokens=1):
        await release.wait()


async def test_swapped_max_concurrency_changes_limiter() -> None:
    """A new max_concurrency on a swapped spec resizes the model's limiter."""
    limits = ModelLimits()
    for concurrency in (1, 3):
        release = anyio.Event()
        async with anyio.create_task_group() as group:
            for _ in range(4):
                group.start_soon(_hold, limits, _spec(max_concurrency=concurrency), release)
            await _settle()
            assert limits.in_use("m") == concurrency
            release.set()
        assert limits.in_use("m") == 0
    assert limits.in_use("unknown") == 0


async def test_raising_max_concurrency_releases_waiters() -> None:
    """Calls waiting under the old limit start once a spec with a higher limit is used."""
    limits = ModelLimits()
    release = anyio.Event()
    async with anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(_hold, limits, _spec(max_concurrency=1), release)
        await _settle()
        assert limits.in_use("m") == 1
        group.start_soon(_hold, limits, _spec(max_concurrency=4), release)
        await _settle()
        assert limits.in_use("m") == 4
        release.set()


async def test_max_concurrency_caps_calls_in_flight(fake: FakeModel, in_flight: InFlight) -> None:
    """max_concurrency=2 on a spec keeps at most two calls in flight across six ready tasks."""
    orch = oc.Orchestra(
        models=fake_constellation(fake, {"fast": {"max_concurrency": 2}}),
        agents=[oc.Agent(name="w", model="fast")],
    )
    plan = oc.Plan(tasks=[oc.Task(id=f"t{i}", agent="w", prompt="x") for i in range(6)])
    result = await orch.execute(plan)
    assert result.status == "succeeded"
    assert len(fake.calls) == 6
    assert in_flight.peak == 2
