"""Replanning: a node fails for good, the boss plans only the work that is left.

The boss's first plan routes the analysis through a model whose provider rejects it (HTTP 400:
retries cannot fix that). Instead of failing the run, orchestra shows the boss what finished
(with its outputs), what failed and why; the boss answers with new tasks only, which reuse the
finished research. Nothing that finished runs again. The boss is scripted with `FakeModel`, so
this runs offline:

    python examples/10_replan.py
"""

import json

import orchestra as oc
from orchestra.events import Replanned
from orchestra.testing import FakeFailure, FakeModel, fake_constellation

FIRST = {
    "tasks": [
        {"id": "research", "agent": "researcher", "prompt": "Facts on {topic}"},
        {
            "id": "analysis",
            "agent": "analyst",
            "prompt": "Analyse: {research}",
            "after": ["research"],
        },
        {
            "id": "report",
            "agent": "writer",
            "prompt": "Report on: {analysis}",
            "after": ["analysis"],
        },
    ],
    "output": "report",
}
SECOND = {
    "tasks": [
        {
            "id": "analysis2",
            "agent": "writer",
            "prompt": "Analyse briefly: {research}",
            "after": ["research"],
        },
        {
            "id": "report2",
            "agent": "writer",
            "prompt": "Report on: {analysis2}",
            "after": ["analysis2"],
        },
    ],
    "output": "report2",
}


def main() -> None:
    fake = FakeModel(
        responses={
            "plan": [json.dumps(FIRST), json.dumps(SECOND)],
            "analysis": FakeFailure(400),  # the analyst's provider rejects the request
        },
        handler=lambda request: f"<{request.task_id} output>",
    )
    events: list[oc.Event] = []
    orch = oc.Orchestra(
        models=fake_constellation(fake),
        agents=[
            oc.Agent(name="researcher", model="fast"),
            oc.Agent(name="analyst", model="mid"),
            oc.Agent(name="writer", model="fast"),
        ],
        boss="boss",
        on_event=events.append,
    )
    result = orch.run_sync("Write a report on {topic}", inputs={"topic": "GPU prices"})
    for event in events:
        if isinstance(event, Replanned):
            print(f"replanned after {event.failed_task!r} failed: new tasks {event.new_tasks}")
    for task_id, node in result.nodes.items():
        print(
            f"  {task_id:<10} {'ok' if node.ok else 'FAILED':<6} calls to the model: "
            f"{len(fake.calls_for(task_id))}"
        )
    print(f"status: {result.status}; answer: {result.output}")


if __name__ == "__main__":
    main()
