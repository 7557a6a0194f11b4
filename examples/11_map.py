"""Map nodes: one task fans out over a list another task produced.

A researcher lists the cities; `describe` has `map="cities"`, so it runs once per item (with the
item in place of `{item}`), all in parallel up to `max_parallel`; its output is the list of the
descriptions, which a writer then summarises. The DAG grows while it runs. The models are a
scripted `FakeModel`, so it runs offline:

    python examples/11_map.py
"""

import orchestra as oc
from orchestra.testing import FakeModel, fake_constellation


def main() -> None:
    fake = FakeModel(
        responses={"cities": "1. Lisbon\n2. Oslo\n3. Kyoto\n4. Quito\n5. Accra"},
        handler=lambda request: f"{request.prompt[:36]}...",
        latency=0.05,
    )
    orch = oc.Orchestra(
        models=fake_constellation(fake),
        agents=[oc.Agent(name="researcher"), oc.Agent(name="writer", model="mid")],
        max_parallel=3,
    )
    plan = oc.Plan(
        tasks=(
            oc.Task(id="cities", agent="researcher", prompt="List five cities to visit"),
            oc.Task(
                id="describe",
                agent="researcher",
                prompt="Describe {item} in one sentence",
                after=("cities",),
                map="cities",
                max_items=20,
            ),
            oc.Task(
                id="guide",
                agent="writer",
                prompt="Write a guide from: {describe}",
                after=("describe",),
            ),
        )
    )
    result = orch.execute_sync(plan)
    described: list[str] = result.nodes["describe"].output
    print(f"'describe' fanned out into {len(described)} nodes:")
    for task_id, node in result.nodes.items():
        if task_id.startswith("describe__"):
            print(f"  {task_id:<12} -> {node.output}")
    print(f"guide: {result.output}")


if __name__ == "__main__":
    main()
