"""Admission: the sliding rate window, priority queues, per-model and global caps, AIMD."""

from __future__ import annotations

import math

import anyio
import anyio.lowlevel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import orchestra as oc
from orchestra.models.admission import PLANNING, Admission, AdmissionState, RateWindow, Ticket
from orchestra.models.tokens import estimate_tokens

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


# -- AdmissionState: the pure core ------------------------------------------------------------


def _spec(**fields: object) -> oc.ModelSpec:
    return oc.ModelSpec(name=str(fields.pop("name", "m")), model="x/m", **fields)  # type: ignore[arg-type]


def test_rpm_holds_the_third_call_until_the_window_moves() -> None:
    """With rpm=2 the third call waits until the first leaves the 60 s window."""
    clock = FakeClock()
    state = AdmissionState(clock=clock)
    tickets = [state.enqueue(_spec(rpm=2), priority=1, tie="t", tokens=1) for _ in range(3)]
    assert state.admit() == tickets[:2]
    for ticket in tickets[:2]:
        state.release(ticket)
    assert state.admit() == [] and state.next_wake(tickets[2]) == 60.0
    clock.at(60.0)
    assert state.admit() == [tickets[2]]


def test_corrected_tokens_fill_the_tpm_window() -> None:
    """A call's tokens corrected to the provider's count hold later calls back."""
    clock = FakeClock()
    state = AdmissionState(clock=clock)
    first = state.enqueue(_spec(tpm=1000), priority=1, tie="a", tokens=10)
    assert state.admit() == [first] and first.sent is not None
    first.sent.tokens = 990
    state.release(first)
    clock.at(30.0)
    second = state.enqueue(_spec(tpm=1000), priority=1, tie="b", tokens=20)
    assert state.admit() == [] and state.next_wake(second) == 60.0


def test_a_swapped_spec_changes_the_limits_of_later_calls() -> None:
    """A spec swapped in with a higher rpm lets a waiting call go."""
    state = AdmissionState(clock=FakeClock())
    first = state.enqueue(_spec(rpm=1), priority=1, tie="a", tokens=1)
    assert state.admit() == [first]
    state.release(first)
    waiting = state.enqueue(_spec(rpm=1), priority=1, tie="b", tokens=1)
    assert state.admit() == []
    state.enqueue(_spec(rpm=5), priority=1, tie="c", tokens=1)
    assert waiting in state.admit()


def test_waiting_calls_go_by_priority_then_task_id() -> None:
    """Under a cap, the highest priority goes first; equal priorities go by task id."""
    state = AdmissionState(clock=FakeClock())
    spec = _spec(max_concurrency=1)
    holder = state.enqueue(spec, priority=0, tie="z", tokens=1)
    assert state.admit() == [holder]
    low = state.enqueue(spec, priority=1.0, tie="a", tokens=1)
    tie_b = state.enqueue(spec, priority=5.0, tie="b", tokens=1)
    tie_a = state.enqueue(spec, priority=5.0, tie="a", tokens=1)
    boss = state.enqueue(spec, priority=PLANNING, tie="(plan)", tokens=1)
    order: list[Ticket] = []
    for ticket in [holder, boss, tie_a, tie_b]:
        state.release(ticket)
        order += state.admit()
    assert order == [boss, tie_a, tie_b, low]


def test_the_global_cap_orders_calls_across_models() -> None:
    """With max_calls=1, the best waiting call of any model goes next."""
    state = AdmissionState(clock=FakeClock(), max_calls=1)
    first = state.enqueue(_spec(name="a"), priority=1, tie="x", tokens=1)
    assert state.admit() == [first]
    on_a = state.enqueue(_spec(name="a"), priority=2, tie="y", tokens=1)
    on_b = state.enqueue(_spec(name="b"), priority=9, tie="z", tokens=1)
    assert state.admit() == []
    state.release(first)
    assert state.admit() == [on_b]
    state.release(on_b)
    assert state.admit() == [on_a]


def test_a_429_pauses_and_halves_then_successes_restore() -> None:
    """A 429 pauses the model and halves its concurrency; successes add one back each."""
    clock = FakeClock()
    state = AdmissionState(clock=clock)
    spec = _spec(max_concurrency=8)
    tickets = [state.enqueue(spec, priority=1, tie=str(i), tokens=1) for i in range(8)]
    assert len(state.admit()) == 8
    state.rate_limited(tickets[0], pause=2.0)
    assert state.effective("m") == 4
    state.rate_limited(tickets[1], pause=2.0)  # same burst: sent before the decrease
    assert state.effective("m") == 4
    for ticket in tickets:
        state.release(ticket)
    waiting = state.enqueue(spec, priority=1, tie="w", tokens=1)
    assert state.admit() == [] and state.next_wake(waiting) == 2.0
    clock.at(2.0)
    assert state.admit() == [waiting]
    restored = [state.succeeded(waiting) for _ in range(4)]
    assert restored == [False, False, False, True]
    assert math.isinf(state.gates["m"].limit)


def test_a_cancelled_waiter_leaves_the_queue() -> None:
    """A queued call that gives up is skipped; it never holds a slot."""
    state = AdmissionState(clock=FakeClock())
    spec = _spec(max_concurrency=1)
    holder = state.enqueue(spec, priority=1, tie="a", tokens=1)
    state.admit()
    gone = state.enqueue(spec, priority=9, tie="b", tokens=1)
    kept = state.enqueue(spec, priority=1, tie="c", tokens=1)
    state.release(gone)
    state.release(holder)
    assert state.admit() == [kept]
    assert state.gates["m"].in_flight == 1


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["enqueue", "release", "429", "ok", "tick"]),
            st.integers(0, 2),
            st.floats(0, 10),
        ),
        max_size=60,
    ),
    caps=st.tuples(st.integers(1, 4), st.integers(1, 4), st.none() | st.integers(1, 5)),
)
def test_admission_never_exceeds_caps_and_drains(
    steps: list[tuple[str, int, float]], caps: tuple[int, int, int | None]
) -> None:
    """Any sequence of calls, answers, 429s and time: in flight never exceeds a model's
    effective concurrency or the global cap, each admitted call was the best waiting one of
    its model, and once everything is released and time passes, every call has gone."""
    clock = FakeClock()
    state = AdmissionState(clock=clock, max_calls=caps[2])
    specs = [_spec(name="a", max_concurrency=caps[0]), _spec(name="b", max_concurrency=caps[1])]
    specs.append(_spec(name="c", rpm=3))
    live: list[Ticket] = []
    queued: list[Ticket] = []
    for action, which, value in steps:
        if action == "enqueue":
            ticket = state.enqueue(specs[which], priority=value, tie=str(len(queued)), tokens=1)
            queued.append(ticket)
        elif action == "tick":
            clock.at(clock() + value)
        elif live:
            ticket = live.pop(which % len(live))
            if action == "429":
                state.rate_limited(ticket, pause=value)
            elif action == "ok":
                state.succeeded(ticket)
            state.release(ticket)
        admitted = state.admit()
        for ticket in admitted:
            waiting = [t for t in queued if t.model == ticket.model and not t.admitted]
            assert all(ticket.key <= t.key for t in waiting)
            queued.remove(ticket)
            live.append(ticket)
        for name in {t.model for t in admitted}:
            assert state.gates[name].in_flight <= state.effective(name)
        assert caps[2] is None or state.in_flight <= caps[2]
    for ticket in live:
        state.release(ticket)
    for _ in range(len(queued) + 1):
        clock.at(clock() + 61.0)
        for ticket in state.admit():
            state.release(ticket)
            queued.remove(ticket)
    assert queued == []


# -- Admission: the async queue --------------------------------------------------------------


async def _settle() -> None:
    """Let started tasks run until they hold a slot or wait for one (no real sleeping)."""
    for _ in range(10):
        await anyio.lowlevel.checkpoint()


async def _hold(
    admission: Admission, spec: oc.ModelSpec, release: anyio.Event, priority: float = 1.0
) -> None:
    async with admission.admit(spec, priority=priority, tie="t", tokens=1):
        await release.wait()


async def test_swapped_max_concurrency_changes_the_cap() -> None:
    """A new max_concurrency on a swapped spec resizes the model's cap."""
    admission = Admission()
    for concurrency in (1, 3):
        release = anyio.Event()
        async with anyio.create_task_group() as group:
            for _ in range(4):
                group.start_soon(_hold, admission, _spec(max_concurrency=concurrency), release)
            await _settle()
            assert admission.in_use("m") == concurrency
            release.set()
        assert admission.in_use("m") == 0
    assert admission.in_use("unknown") == 0


async def test_raising_max_concurrency_releases_waiters() -> None:
    """Calls waiting under the old cap start once a spec with a higher cap is used."""
    admission = Admission()
    release = anyio.Event()
    async with anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(_hold, admission, _spec(max_concurrency=1), release)
        await _settle()
        assert admission.in_use("m") == 1
        group.start_soon(_hold, admission, _spec(max_concurrency=4), release)
        await _settle()
        assert admission.in_use("m") == 4
        release.set()


async def test_waiters_enter_by_priority() -> None:
    """Tasks waiting for one slot enter highest priority first, whatever their arrival."""
    admission = Admission()
    spec = _spec(max_concurrency=1)
    entered: list[float] = []
    gate = anyio.Event()

    async def call(priority: float) -> None:
        async with admission.admit(spec, priority=priority, tie="t", tokens=1):
            entered.append(priority)
            await gate.wait()

    async with anyio.create_task_group() as group:
        group.start_soon(call, 0.0)
        await _settle()
        for priority in (1.0, 7.0, 3.0):
            group.start_soon(call, priority)
        await _settle()
        gate.set()
    assert entered == [0.0, 7.0, 3.0, 1.0]


async def test_a_cancelled_waiter_gives_its_turn_away() -> None:
    """Cancelling a queued call lets the next one in; no slot leaks."""
    admission = Admission()
    spec = _spec(max_concurrency=1)
    release = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(_hold, admission, spec, release)
        await _settle()
        with anyio.move_on_after(0):
            await _hold(admission, spec, release)
        release.set()
    assert admission.in_use("m") == 0
