"""Shared test helpers: a constellation of fakes and a small team of agents."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import orchestra as oc
from orchestra.testing import FakeModel, fake_constellation


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
