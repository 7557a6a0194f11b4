"""A scripted run's events with fixed timestamps: the same input for every viewer's tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from orchestra import events as ev

T0 = datetime(2026, 11, 23, 9, 0, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    """The time `seconds` after the scripted run started."""
    return T0 + timedelta(seconds=seconds)


@pytest.fixture(name="at")
def at_fixture() -> Callable[[float], datetime]:
    """`at(seconds)`: the time that long after the scripted run started."""
    return at


@pytest.fixture
def scripted() -> list[ev.Event]:
    """A boss-planned run: two parallel researchers (one retried after a 429), then a writer."""
    r = "r1"
    return [
        ev.RunStarted(run_id=r, at=at(0), task="Compare GPUs"),
        ev.ModelCalled(
            run_id=r, at=at(1), task_id="(plan)", model="boss", reason="boss",
            input_tokens=500, output_tokens=200, cost_usd=0.00325, seconds=1.0,
        ),
        ev.PlanReady(
            run_id=r, at=at(1), task_ids=("facts", "prices", "memo"),
            edges=(("facts", "memo"), ("prices", "memo")),
        ),
        ev.NodeStarted(run_id=r, at=at(1), task_id="facts", agent="researcher"),
        ev.NodeRouted(
            run_id=r, at=at(1), task_id="facts", model="fast",
            reason="cheapest with quality >= 0.5", candidates=("fast", "mid"),
        ),
        ev.NodeStarted(run_id=r, at=at(1), task_id="prices", agent="researcher"),
        ev.NodeRouted(
            run_id=r, at=at(1), task_id="prices", model="fast",
            reason="cheapest with quality >= 0.5", candidates=("fast", "mid"),
        ),
        ev.ModelCalled(
            run_id=r, at=at(1.1), task_id="prices", model="fast",
            reason="cheapest with quality >= 0.5", seconds=0.1,
            error="model 'fast': rate limited", error_type="429",
        ),
        ev.RetryScheduled(
            run_id=r, at=at(1.1), task_id="prices", model="fast", attempt=1, wait=0.5,
            error="rate limited",
        ),
        ev.ModelCalled(
            run_id=r, at=at(1.5), task_id="facts", model="fast",
            reason="cheapest with quality >= 0.5", input_tokens=100, output_tokens=50,
            cost_usd=0.000009, seconds=0.5,
        ),
        ev.NodeFinished(
            run_id=r, at=at(1.5), task_id="facts", model="fast", cost_usd=0.000009, seconds=0.5
        ),
        ev.ModelCalled(
            run_id=r, at=at(2), task_id="prices", model="fast",
            reason="cheapest with quality >= 0.5", input_tokens=100, output_tokens=80,
            cost_usd=0.000011, seconds=0.4,
        ),
        ev.NodeFinished(
            run_id=r, at=at(2), task_id="prices", model="fast", cost_usd=0.000011, seconds=1.0
        ),
        ev.NodeStarted(run_id=r, at=at(2), task_id="memo", agent="writer"),
        ev.NodeRouted(
            run_id=r, at=at(2), task_id="memo", model="mid", reason="pinned by agent 'writer'"
        ),
        ev.ModelCalled(
            run_id=r, at=at(3), task_id="memo", model="mid", reason="pinned by agent 'writer'",
            input_tokens=300, output_tokens=200, cost_usd=0.000335, seconds=1.0,
        ),
        ev.NodeFinished(
            run_id=r, at=at(3), task_id="memo", model="mid", cost_usd=0.000335, seconds=1.0
        ),
        ev.RunFinished(run_id=r, at=at(3), status="succeeded", cost_usd=0.003605, seconds=3.0),
    ]  # fmt: skip
