"""Workers on a real local model: the simulated boss plans, SmolLM2-135M does the work.

The boss is the simulated constellation's (it writes the same six-task plan for any task); every
worker agent is pinned to a real SmolLM2-135M-Instruct served by llama.cpp on 127.0.0.1, started
here and stopped at the end. The tokens and cost are the server's own counts (priced here at a
made-up $0.10 per 1M tokens for the machine). It needs the local build, once per machine:

    scripts/local-models install
    python examples/15_real_local_model.py

Without that build it says so and exits: nothing else in orchestra needs it.
"""

import orchestra as oc
from orchestra.testing.local_models import LocalServers, missing


def main() -> None:
    print("workers on a real local model, planned by the simulated boss")
    absent = missing(["smollm2"])
    if absent is not None:
        print(f"skipped: {absent}; run scripts/local-models install first")
        return
    with LocalServers(["smollm2"]) as servers:
        local = servers["smollm2"].spec(
            name="local",
            input_cost=0.10,
            output_cost=0.10,
            litellm_params={"max_tokens": 48},
        )
        boss = oc.simulated.constellation(time_scale=0.0)["boss"]
        # The simulated team, every agent pinned to the real model.
        agents = [a.model_copy(update={"model": "local"}) for a in oc.simulated.agents()]
        orch = oc.Orchestra(models=[boss, local], agents=agents, boss="boss")
        result = orch.run_sync("Should a small team run its own small language model?")

        print(f"{result.status}: {len(result.nodes)} nodes on {servers['smollm2'].url}")
        for task_id, node in result.nodes.items():
            first = (node.output or "").strip().splitlines()[0][:70] if node.ok else node.error
            mark = " (truncated)" if node.truncated else ""
            print(f"  {task_id:<10} {node.usage.output_tokens:>3} tokens{mark}: {first}")
        usage = result.usage.by_model["local"]
        print(
            f"real model: {usage.calls} calls, {usage.input_tokens} tokens in, "
            f"{usage.output_tokens} out, ${usage.cost_usd:.6f}"
        )


if __name__ == "__main__":
    main()
