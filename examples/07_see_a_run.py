"""See a run: stream its events, draw the live view, and write the HTML report.

Runs offline on the simulated constellation. `orch.stream(...)` hands over every event of the
run as it happens — here each model call, with the model it went to and why. The live view
(`orchestra.observe.live.LiveView`, what `orchestra run` shows) is a pure function of those
events, so replaying them draws the run's last frame: the DAG as a tree with each node's
status, model, attempt, time, tokens and cost. Finally `result.report(path, events=...)`
writes one self-contained HTML page: the DAG and its critical path, a timeline per model,
cost per model and per node, every routing decision, and the answer. Run it with:

    python examples/07_see_a_run.py
"""

import io
import tempfile
from pathlib import Path

import anyio
from rich.console import Console

import orchestra as oc
from orchestra.events import ModelCalled
from orchestra.observe.live import LiveView


async def watch(orch: oc.Orchestra, task: str) -> tuple[oc.RunResult, list[oc.Event]]:
    """Run `task`, printing each model call as it answers; return the result and events."""
    events: list[oc.Event] = []
    async with orch.stream(task) as stream:
        async for event in stream:
            events.append(event)
            if isinstance(event, ModelCalled):
                print(f"  {event.task_id:<11} -> {event.model:<5} {event.reason}")
    assert stream.result is not None  # the iteration raised the run's error otherwise
    return stream.result, events


def main() -> None:
    # time_scale=0.05 runs the simulated latencies twenty times faster than real time.
    orch = oc.simulated.orchestra(time_scale=0.05, budget=oc.Budget(max_usd=0.05))
    print("model calls, as they answer:")
    result, events = anyio.run(
        watch, orch, "Compare the unit economics of small and large models", backend="asyncio"
    )

    print("\nthe live view's last frame, replayed from the events:")
    view = LiveView(Console(file=io.StringIO()), budget=orch.budget)  # off-screen: fold only
    for event in events:
        view(event)
    Console(width=110).print(view)

    path = result.report(Path(tempfile.mkdtemp()) / "report.html", events=events)
    print(f"\nreport: {path} ({path.stat().st_size:,} bytes; open it in a browser)")
    print(f"{len(events)} events, {len(result.nodes)} nodes, ${result.cost_usd:.6f}")


if __name__ == "__main__":
    main()
