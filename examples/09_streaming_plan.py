"""Streaming plans: tasks start while the boss is still writing the plan.

The simulated boss (a gpt-4o-class model decoding at 90 tokens/s) streams its JSON plan; each
task is dispatched the moment it and its dependencies are known — LLMCompiler's key idea — so
the first workers run long before the plan is complete. The events show when each task was
dispatched relative to the moment the whole plan was ready. Offline:

    python examples/09_streaming_plan.py
"""

import orchestra as oc
from orchestra.events import NodeStarted


def main() -> None:
    events: list[oc.Event] = []
    orch = oc.simulated.orchestra(time_scale=0.3, on_event=events.append)
    result = orch.run_sync("Compare the unit economics of small and large models")
    start = events[0].at
    ready = next(e for e in events if e.kind == "plan_ready").at
    print(f"the whole plan was ready after {(ready - start).total_seconds():.2f} s")
    for event in events:
        if isinstance(event, NodeStarted):
            when = (event.at - start).total_seconds()
            before = "before" if event.at < ready else "after"
            print(f"  {event.task_id:<11} dispatched at {when:.2f} s ({before} the plan was done)")
    print(f"status: {result.status} in {result.seconds:.2f} s, ${result.cost_usd:.5f}")


if __name__ == "__main__":
    main()
