"""The Ray backend's admission service, in this process: admission, the ledger, restarts."""

from __future__ import annotations

import anyio
import pytest

import orchestra as oc
from orchestra.execution.backends.ray_service import AdmissionService
from orchestra.models.budget import BudgetRefused

pytestmark = pytest.mark.anyio

SPEC = oc.ModelSpec(name="m", model="x/m", max_concurrency=2)
RUN = (("run 'r'", oc.Budget(max_usd=0.10)),)


async def _admit(service: AdmissionService, call: str, owner: str = "a/1") -> bool:
    return await service.admit(call, owner, SPEC, 1.0, call, 100)


async def test_a_models_concurrency_holds_over_every_caller() -> None:
    """Two calls of a model with max_concurrency=2 go at once; the third waits for a release."""
    service = AdmissionService()
    assert await _admit(service, "c1") and await _admit(service, "c2", owner="b/1")
    admitted = anyio.Event()

    async def third() -> None:
        await _admit(service, "c3")
        admitted.set()

    async with anyio.create_task_group() as group:
        group.start_soon(third)
        await anyio.wait_all_tasks_blocked()
        assert not admitted.is_set()
        assert service.stats()["in_flight"] == {"m": 2}
        await service.release("c1", tokens=50, answered=True)
    assert admitted.is_set()
    assert service.stats()["admitted"] == 3


async def test_a_call_released_first_never_takes_a_slot() -> None:
    """A release that arrives before its admit, or while the call waits, frees nothing it
    did not take: the admit answers False and the slot stays free."""
    service = AdmissionService()
    await service.release("early")
    assert not await _admit(service, "early")
    assert await _admit(service, "c1") and await _admit(service, "c2")
    answers: list[bool] = []

    async def waiting() -> None:
        answers.append(await _admit(service, "waiting"))

    async with anyio.create_task_group() as group:
        group.start_soon(waiting)
        await anyio.wait_all_tasks_blocked()
        await service.release("waiting")
    assert answers == [False]
    assert service.stats() | {"cpu_seconds": 0} == {
        "cpu_seconds": 0,
        "admitted": 2,
        "held": 2,
        "in_flight": {"m": 2},
        "accounts": 0,
    }


async def test_the_ledger_holds_a_runs_budget_over_every_caller() -> None:
    """Reservations from any caller share the run's account: a call that does not fit is
    refused, naming the run; a settled call counts what it cost, a released one nothing."""
    service = AdmissionService()
    for call in ("c1", "c2"):
        assert await _admit(service, call)
        service.hold(call, RUN, 0.04, 300)
    assert await service.admit("c3", "b/1", oc.ModelSpec(name="n", model="x/n"), 1.0, "c3", 9)
    with pytest.raises(BudgetRefused) as refused:
        service.hold("c3", RUN, 0.04, 300)
    assert refused.value.account == "run 'r'" and refused.value.limit == "max_usd"
    await service.release("c1", settled=(0.05, 320, False))
    await service.release("c2")
    account = service.ledger.account(RUN)
    assert (account.spent_usd, account.reserved_usd) == (0.05, 0.0)


async def test_a_restarted_actor_gives_back_its_earlier_lifes_calls() -> None:
    """When an actor's new process starts, the calls its dead one held are released and
    their reservations settled at the estimate; other actors' calls stay."""
    service = AdmissionService()
    assert await _admit(service, "c1", owner="actor-1/old")
    service.hold("c1", RUN, 0.03, 300)
    assert await _admit(service, "c2", owner="actor-2/x")
    assert await service.restarted("actor-1", "actor-1/new") == 1
    assert service.stats()["in_flight"] == {"m": 1}
    account = service.ledger.account(RUN)
    assert (account.spent_usd, account.reserved_usd, account.estimated) == (0.03, 0.0, True)


async def test_the_drivers_own_spending_counts_once_and_a_done_run_is_forgotten() -> None:
    """`base` charges what the run spent outside the service only once per amount; `forget`
    drops the run's accounts (its tasks' too)."""
    service = AdmissionService()
    task = (*RUN, ("task 'a'", oc.Budget(max_usd=0.05)))
    service.base(RUN, 0.02, 100)
    service.base(RUN, 0.02, 100)
    service.base(RUN, 0.03, 150)
    service.ledger.account(task)
    assert service.ledger.account(RUN).spent_usd == pytest.approx(0.03)
    service.forget("run 'r'")
    assert service.stats()["accounts"] == 0
