"""Hedging: when a call is slower than usual, race a second one and keep the first answer.

A spec with `hedge=oc.HedgePolicy(after=0.2, model="backup")` starts a second call on `backup`
once its own call has taken 0.2 s; whichever answers first is the node's answer, the other is
cancelled, and what the loser cost is counted. Here the primary provider has a slow spell (its
second call takes 3 s): that node is answered by the hedge, the others by the primary.
`after=None` hedges at the model's observed p95 latency instead. Offline, on `FakeModel`s:

    python examples/17_hedging.py
"""

import orchestra as oc
from orchestra.events import HedgeStarted, HedgeWon
from orchestra.testing import FakeModel, FakeReply, FakeRequest


def main() -> None:
    def primary_answer(request: FakeRequest) -> FakeReply:
        slow = request.task_id == "b"  # a slow spell on one call
        return FakeReply(f"primary on {request.task_id}", latency=3.0 if slow else 0.01)

    primary = FakeModel(handler=primary_answer)
    backup = FakeModel(handler=lambda r: FakeReply(f"backup on {r.task_id}", latency=0.05))
    models = [
        oc.ModelSpec(
            name="primary",
            model=primary.model("llama-8b"),
            input_cost=0.05,
            output_cost=0.08,
            hedge=oc.HedgePolicy(after=0.2, model="backup"),
        ),
        oc.ModelSpec(
            name="backup", model=backup.model("llama-8b"), input_cost=0.1, output_cost=0.1
        ),
    ]
    events: list[oc.Event] = []
    orch = oc.Orchestra(
        models=models,
        agents=[oc.Agent(name="researcher", model="primary")],
        on_event=events.append,
        journal=None,
    )
    plan = oc.Plan(tasks=[oc.Task(id=t, agent="researcher", prompt=f"Part {t}") for t in "abc"])
    result = orch.execute_sync(plan)
    for task_id, node in sorted(result.nodes.items()):
        print(f"{task_id}: {node.output:<16} in {node.seconds:.2f}s, ${node.cost_usd:.8f}")
    for event in events:
        if isinstance(event, HedgeStarted):
            print(f"hedge started for {event.task_id}: {event.model} -> {event.hedge_model}")
        elif isinstance(event, HedgeWon):
            cost = f"the loser's cost ${event.loser_cost_usd:.8f} counted"
            print(f"{event.winner} won for {event.task_id} on {event.model}; {cost}")
    print(f"run took {result.seconds:.2f}s instead of 3s")


if __name__ == "__main__":
    main()
