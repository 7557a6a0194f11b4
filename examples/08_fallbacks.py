"""Resilience: a failing provider does not sink the run.

Three research branches run on a primary model whose provider is in trouble: it answers 503
twice in a row. Each call is retried with backoff (transient errors only), then falls back to a
second provider; the model's circuit breaker opens after repeated failures, so later calls skip
it at once. A summary joins the branches. Every retry, fallback and breaker change is an
event; each node records which model answered and every attempt. Offline, on `FakeModel`s:

    python examples/08_fallbacks.py
"""

import orchestra as oc
from orchestra.events import BreakerChanged, FallbackUsed, RetryScheduled
from orchestra.testing import FakeFailure, FakeModel


def main() -> None:
    troubled = FakeModel(default=FakeFailure(503))  # every call to the primary fails
    healthy = FakeModel(handler=lambda request: f"answer to: {request.prompt[:40]}")
    models = [
        oc.ModelSpec(
            name="primary",
            model=troubled.model("llama-8b"),
            retry=oc.RetryPolicy(max_retries=1, backoff=0.05),
            breaker=oc.BreakerPolicy(failures=3, window=30, cooldown=60),
            fallbacks=["backup"],
        ),
        oc.ModelSpec(name="backup", model=healthy.model("llama-8b")),
    ]
    events: list[oc.Event] = []
    orch = oc.Orchestra(
        models=models, agents=[oc.Agent(name="w", model="primary")], on_event=events.append
    )
    plan = oc.Plan(
        tasks=(
            oc.Task(id="a", agent="w", prompt="Branch A on {topic}"),
            oc.Task(id="b", agent="w", prompt="Branch B on {topic}", after=("a",)),
            oc.Task(id="c", agent="w", prompt="Branch C on {topic}", after=("b",)),
            oc.Task(id="summary", agent="w", prompt="Sum up: {a} {b} {c}", after=("a", "b", "c")),
        )
    )
    result = orch.execute_sync(plan, inputs={"topic": "GPU supply"})
    print(f"status: {result.status}")
    for task_id, node in result.nodes.items():
        tried = " -> ".join(a.model + ("" if a.error is None else " x") for a in node.attempts)
        print(f"  {task_id:<8} answered by {node.model:<7} attempts: {tried}")
    for event in events:
        if isinstance(event, RetryScheduled):
            print(f"  retry    {event.task_id} on {event.model} in {event.wait:.2f} s")
        elif isinstance(event, FallbackUsed):
            print(f"  fallback {event.task_id}: {event.from_model} -> {event.to_model}")
        elif isinstance(event, BreakerChanged):
            print(f"  breaker  {event.model} is now {event.state}")
    print(f"breaker of primary: {orch.breakers.state('primary')}")


if __name__ == "__main__":
    main()
