"""Budgets by reservation: limits, nesting, reservations, settlement and refusals."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import orchestra as oc
from orchestra.models.budget import Account, BudgetRefused


def test_budget_exceeded_names_the_limit() -> None:
    """exceeded() names max_usd or max_tokens once reached, else None."""
    budget = oc.Budget(max_usd=0.5, max_tokens=1000)
    assert budget.exceeded(cost_usd=0.49, tokens=999) is None
    assert budget.exceeded(cost_usd=0.5, tokens=0) == "max_usd"
    assert budget.exceeded(cost_usd=0.0, tokens=1000) == "max_tokens"
    assert budget.exceeded(cost_usd=1.0, tokens=10_000) == "max_usd"


def test_unlimited_budget_is_never_exceeded() -> None:
    """A budget with no limits (max_seconds is a deadline, not spending) is never exceeded."""
    assert oc.Budget(max_seconds=1).exceeded(cost_usd=1e9, tokens=10**12) is None


@pytest.mark.parametrize("field", ["max_usd", "max_tokens", "max_seconds"])
def test_budget_limits_must_be_positive(field: str) -> None:
    """Zero or negative limits are a ConfigError."""
    with pytest.raises(oc.ConfigError, match=field):
        oc.Budget(**{field: 0})


def test_within_takes_the_tighter_limit_of_each() -> None:
    """A budget held inside another keeps the smaller of each limit."""
    inner = oc.Budget(max_usd=2.0, max_seconds=10).within(oc.Budget(max_usd=1.0, max_tokens=50))
    assert (inner.max_usd, inner.max_tokens, inner.max_seconds) == (1.0, 50, 10)


def test_a_reservation_is_held_in_every_enclosing_account() -> None:
    """Reserving in a task's account holds the amount in the run's too; settling replaces it."""
    run = Account("run r", oc.Budget(max_usd=1.0))
    task = run.child("task a", oc.Budget(max_usd=0.5))
    held = task.reserve(usd=0.4, tokens=10)
    assert run.reserved_usd == task.reserved_usd == 0.4
    held.settle(usd=0.1, tokens=12)
    assert (run.spent_usd, run.reserved_usd, run.spent_tokens) == (0.1, 0.0, 12)
    held.settle(usd=5.0, tokens=1)  # a second settle changes nothing
    assert run.spent_usd == 0.1


def test_a_call_that_does_not_fit_is_refused_and_holds_nothing() -> None:
    """The innermost account that cannot fit the call names itself; nothing is held."""
    run = Account("run r", oc.Budget(max_usd=1.0))
    task = run.child("task a", None)
    task.reserve(usd=0.9, tokens=0)
    with pytest.raises(BudgetRefused, match="run r") as info:
        task.reserve(usd=0.2, tokens=0)
    assert (info.value.limit, info.value.account) == ("max_usd", "run r")
    assert run.reserved_usd == pytest.approx(0.9)


def test_token_budgets_count_the_reserved_output() -> None:
    """max_tokens refuses a call whose estimated input and output do not fit."""
    run = Account("run r", oc.Budget(max_tokens=100))
    run.reserve(usd=0.0, tokens=60)
    with pytest.raises(BudgetRefused) as info:
        run.reserve(usd=0.0, tokens=41)
    assert info.value.limit == "max_tokens"


def test_release_gives_the_estimate_back() -> None:
    """A call that was never answered costs nothing."""
    run = Account("run r", oc.Budget(max_usd=1.0))
    run.reserve(usd=0.7, tokens=0).release()
    run.reserve(usd=0.9, tokens=0)
    assert run.left_usd() == pytest.approx(0.1)


@settings(max_examples=200, deadline=None)
@given(
    limit=st.floats(0.01, 10),
    calls=st.lists(
        st.tuples(st.floats(0, 2), st.floats(0, 3), st.booleans()), min_size=1, max_size=40
    ),
)
def test_spending_never_passes_the_limit_by_more_than_estimation_error(
    limit: float, calls: list[tuple[float, float, bool]]
) -> None:
    """However many calls are held at once, what is spent stays within the limit plus what
    the settled calls cost beyond their estimates."""
    run = Account("run r", oc.Budget(max_usd=limit))
    held = []
    error = 0.0
    for estimate, real, settle_now in calls:
        with contextlib.suppress(BudgetRefused):
            held.append((run.reserve(usd=estimate, tokens=0), real))
        if settle_now and held:
            reservation, cost = held.pop(0)
            reservation.settle(usd=cost, tokens=0)
            error += max(0.0, cost - reservation.usd)
        assert run.spent_usd + run.reserved_usd <= limit + error + 1e-9
    for reservation, cost in held:
        reservation.settle(usd=cost, tokens=0)
        error += max(0.0, cost - reservation.usd)
    assert run.spent_usd <= limit + error + 1e-9
