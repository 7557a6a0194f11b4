"""What a resumed run starts from: the stored plan, and the nodes that need not run again.

- The plan is the last one recorded (after any replan); the boss is never asked again for a
  run whose plan was recorded.
- A node of the plan with a recorded result is seeded (`Scheduler.seed`): it does not run, its
  output feeds its dependents. So is a failed node a later replan planned around.
- Every other node of the plan runs: those in flight when the run stopped (their dispatch
  is recorded as `started` or `cancelled`), those that failed (and were not replanned around),
  and those never started.
- Recorded results of nodes outside the plan (a map task's items) are replayed when the same
  task is dispatched again, without a model call.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from typing import Any

from orchestra.models.budget import Budget
from orchestra.plan import Plan, Task, dependencies_first
from orchestra.results import NodeResult, Usage

__all__ = ["StoredRun", "load_run", "seed_order"]


@dataclass(frozen=True)
class StoredRun:
    """A run as the journal holds it, ready to resume."""

    run_id: str
    status: str
    task: str | None
    inputs: dict[str, str]
    """The run's inputs, as the text that entered the prompts."""
    budget: Budget
    plan: Plan | None
    """The last plan recorded (None: the run stopped while the boss was planning)."""
    seed_tasks: tuple[Task, ...] = ()
    """Tasks that need not run again, dependencies first."""
    results: dict[str, NodeResult] = field(default_factory=dict[str, NodeResult])
    """Their results."""
    replay: dict[str, tuple[Task, NodeResult]] = field(
        default_factory=dict[str, tuple[Task, NodeResult]]
    )
    """Recorded results of tasks outside the plan, by id, with the task that produced them."""
    planning: Usage = field(default_factory=Usage)
    """What the boss's planning calls cost."""
    spent: Usage = field(default_factory=Usage)
    """Everything recorded as spent: the boss's calls and every recorded node result."""
    replans: int = 0
    attempts: dict[str, int] = field(default_factory=dict[str, int])
    """How many times each node was dispatched so far."""
    sessions: int = 1


def seed_order(
    plan: Plan, results: Mapping[str, NodeResult], replaced: Set[str]
) -> tuple[list[Task], dict[str, NodeResult]]:
    """The tasks to seed, dependencies first, and their results.

    A task is seeded when it has a recorded result (or failed and was replanned around) and
    every task it depends on is seeded too.
    """
    seeded: dict[str, NodeResult] = {}
    order: list[Task] = []
    for task in dependencies_first(plan.tasks):
        result = results.get(task.id)
        usable = result is not None and (result.ok or task.id in replaced)
        if usable and result is not None and all(d in seeded for d in task.after):
            seeded[task.id] = result
            order.append(task)
    return order, seeded


def load_run(conn: sqlite3.Connection, run_id: str) -> StoredRun | None:
    """The run `run_id` as recorded (None if the journal holds no such run)."""
    row = conn.execute(
        "SELECT status, task, inputs, budget, planning, sessions FROM runs WHERE run_id = ?",
        (run_id,),
    ).fetchone()
    if row is None:
        return None
    status, task, inputs, budget, planning, sessions = row
    plans = conn.execute(
        "SELECT plan, reason, failed_task FROM plans WHERE run_id = ? ORDER BY seq", (run_id,)
    ).fetchall()
    plan = Plan.model_validate_json(plans[-1][0]) if plans else None
    replaced = {str(failed) for _, reason, failed in plans if reason == "replan" and failed}
    boss = Usage.model_validate_json(planning)
    spent = boss
    latest: dict[str, NodeResult] = {}
    done: dict[str, tuple[Task | None, NodeResult]] = {}
    attempts: dict[str, int] = {}
    rows = conn.execute(
        "SELECT task_id, attempt, status, task, result FROM nodes WHERE run_id = ? "
        "ORDER BY attempt",
        (run_id,),
    ).fetchall()
    for task_id, attempt, node_status, task_json, result_json in rows:
        attempts[task_id] = max(attempts.get(task_id, 0), int(attempt))
        if result_json is None:
            continue
        result = NodeResult.model_validate_json(result_json)
        spent = spent + result.usage
        latest[task_id] = result
        if node_status == "succeeded":
            done[task_id] = (Task.model_validate_json(task_json) if task_json else None, result)
    seed_tasks: list[Task] = []
    seeded: dict[str, NodeResult] = {}
    if plan is not None:
        # A node's last dispatch decides: a failure after an earlier success cannot happen
        # (recorded nodes never run again), so `latest` is the success when there is one.
        usable = {t: r for t, r in latest.items() if r.ok or t in replaced}
        usable.update({t: r for t, (_, r) in done.items()})
        seed_tasks, seeded = seed_order(plan, usable, replaced)
    replay = {
        task_id: (task_spec, result)
        for task_id, (task_spec, result) in done.items()
        if task_id not in seeded and task_spec is not None
    }
    stored_inputs: dict[str, Any] = json.loads(inputs)
    return StoredRun(
        run_id=run_id,
        status=str(status),
        task=task,
        inputs={name: str(value) for name, value in stored_inputs.items()},
        budget=Budget.model_validate_json(budget),
        plan=plan,
        planning=boss,
        seed_tasks=tuple(seed_tasks),
        results=seeded,
        replay=replay,
        spent=spent,
        replans=sum(1 for _, reason, _ in plans if reason == "replan"),
        attempts=attempts,
        sessions=int(sessions),
    )
