"""A hand-written plan: parallel branches, a join, `{placeholders}` and run inputs.

No boss is needed to execute a plan you write yourself. Three branches run at the same time
(two researchers and a critic); an analyst joins two of them and a writer joins the rest.
`{topic}` is a run input; `{market}`, `{tech}`... are outputs of the tasks named in `after`.
JSON braces in a prompt need no escaping; `{{name}}` is a literal `{name}`. The plan is a
networkx graph, so graph questions (order, critical path) are one call away. Run it with:

    python examples/02_hand_written_plan.py
"""

import networkx as nx

import orchestra as oc

PLAN = oc.Plan(
    tasks=(
        oc.Task(id="market", agent="researcher", prompt="Market figures for {topic}"),
        oc.Task(id="tech", agent="researcher", prompt="Technical constraints of {topic}"),
        oc.Task(id="risks", agent="critic", prompt="What could go wrong with {topic}?"),
        oc.Task(
            id="compare",
            agent="analyst",
            prompt="Weigh the market against the technology.\n{market}\n{tech}",
            after=("market", "tech"),
        ),
        oc.Task(
            id="memo",
            agent="writer",
            prompt='Write a memo as {"title": "...", "body": "..."} (keep {{topic}} literal).\n'
            "Analysis:\n{compare}\nRisks:\n{risks}",
            after=("compare", "risks"),
        ),
    ),
    output="memo",
)


def main() -> None:
    graph = PLAN.graph()
    print("topological order:", " -> ".join(nx.topological_sort(graph)))
    for level, ids in enumerate(nx.topological_generations(graph)):
        print(f"  wave {level}: {', '.join(sorted(ids))}")
    print("critical path:", " -> ".join(nx.dag_longest_path(graph)))

    orch = oc.Orchestra(
        models=oc.simulated.constellation(time_scale=0.1),
        agents=oc.simulated.agents(),
        router=oc.routing.Cheapest(min_quality=0.5),
    )
    result = orch.execute_sync(PLAN, inputs={"topic": "on-device LLM inference"})

    print(f"\n{result.status} in {result.seconds:.2f}s, ${result.cost_usd:.6f}")
    for task_id, node in result.nodes.items():
        first_line = str(node.output).splitlines()[0]
        print(f"  {task_id:<8} on {node.model:<5} {node.seconds:.2f}s  {first_line[:60]}")
    print("\nanswer (the output of 'memo'):")
    print(result.output)


if __name__ == "__main__":
    main()
