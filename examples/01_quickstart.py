"""Quickstart: a boss model plans a task and a constellation of models executes it.

Runs on the built-in simulated constellation — offline, no API keys — whose models have the
prices and speeds of real model classes (a gpt-4o-class boss, fast 8B workers, a 70B model).
The boss writes a plan with parallel branches; each node runs on the model the router or the
agent's pin chose. It prints the plan's nodes with their models, the cost by model and the
answer. Run it with:

    python examples/01_quickstart.py
"""

import orchestra as oc


def main() -> None:
    # time_scale=0.1 runs the simulated latencies ten times faster than real time.
    orch = oc.simulated.orchestra(time_scale=0.1)
    result = orch.run_sync("Compare the unit economics of small and large models")

    print(f"run {result.run_id}: {result.status} in {result.seconds:.2f}s")
    print("\nnodes (in completion order):")
    for task_id, node in result.nodes.items():
        print(f"  {task_id:<12} {node.agent:<11} on {node.model:<6} ${node.cost_usd:.6f}")

    print("\ncost by model (the boss's planning call included):")
    for name, usage in sorted(result.usage.by_model.items()):
        print(f"  {name:<6} {usage.calls} call(s)  ${usage.cost_usd:.6f}")
    print(f"  total  {result.usage.calls} call(s)  ${result.cost_usd:.6f}")

    print("\nanswer:")
    print(result.output)


if __name__ == "__main__":
    main()
