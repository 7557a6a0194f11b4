"""Budgets and failures: a run that stops early keeps every node that finished.

First a USD budget: three drafts in a chain on an expensive model; the budget is checked as
nodes finish, so the run stops dispatching once it is spent and raises `oc.BudgetExceeded`,
whose `.result` holds the finished drafts. Then a failure: one of three parallel branches runs
on a model whose key is rejected (HTTP 401); `oc.NodeFailed` names the task, and its siblings'
results are kept. Models are `FakeModel`s, so it runs offline. Run it with:

    python examples/05_budgets_and_failures.py
"""

import orchestra as oc
from orchestra.testing import FakeModel, FakeReply, fake_constellation

WRITER = oc.Agent(name="writer", description="writes drafts", model="boss")


def budget_stop() -> None:
    # Each draft reports 20,000 output tokens: $0.20 at the boss's $10 per 1M output tokens.
    fake = FakeModel(responses={"writer": FakeReply(content="a long draft", output_tokens=20_000)})
    orch = oc.Orchestra(models=fake_constellation(fake), agents=[WRITER])
    plan = oc.Plan(
        tasks=(
            oc.Task(id="draft1", agent="writer", prompt="Draft a memo on {topic}"),
            oc.Task(id="draft2", agent="writer", prompt="Improve:\n{draft1}", after=("draft1",)),
            oc.Task(id="draft3", agent="writer", prompt="Polish:\n{draft2}", after=("draft2",)),
        )
    )
    try:
        orch.execute_sync(plan, inputs={"topic": "GPU costs"}, budget=oc.Budget(max_usd=0.30))
    except oc.BudgetExceeded as exc:
        print(f"BudgetExceeded ({exc.limit}): {exc}")
        kept = ", ".join(exc.result.nodes)
        print(f"  status={exc.result.status}; kept: {kept}; spent ${exc.result.cost_usd:.2f}")


def node_failure() -> None:
    good = FakeModel(responses={"north": "120 units", "west": "95 units"}, latency=0.05)
    bad = FakeModel(fail_first=1_000, fail_status=401)  # every call is rejected
    models = [
        oc.ModelSpec(name="cloud", model=good.model("cloud"), input_cost=0.05, output_cost=0.08),
        oc.ModelSpec(name="local", model=bad.model("local")),
    ]
    orch = oc.Orchestra(models=models)
    plan = oc.Plan(
        tasks=(
            oc.Task(id="north", agent="assistant", prompt="Sales in the north", model="cloud"),
            oc.Task(id="south", agent="assistant", prompt="Sales in the south", model="local"),
            oc.Task(id="west", agent="assistant", prompt="Sales in the west", model="cloud"),
            oc.Task(
                id="summary",
                agent="assistant",
                prompt="Summarise:\n{north}\n{south}\n{west}",
                after=("north", "south", "west"),
            ),
        )
    )
    try:
        orch.execute_sync(plan)
    except oc.NodeFailed as exc:
        print(f"\nNodeFailed: task {exc.task_id!r}, status={exc.result.status}")
        cause = exc.__cause__
        if isinstance(cause, oc.ModelError):
            print(f"  cause: ModelError from {cause.model!r}, HTTP {cause.status_code}")
        for task_id, node in exc.result.nodes.items():
            print(f"  {task_id:<6} ok={node.ok!s:<5} output={node.output!r}")
        print(f"  never ran: {[t.id for t in plan.tasks if t.id not in exc.result.nodes]}")


def main() -> None:
    budget_stop()
    node_failure()


if __name__ == "__main__":
    main()
