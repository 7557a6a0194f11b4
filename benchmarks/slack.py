"""SlackAware on the simulated constellation: makespan and cost against all-fast and all-cheap.

The simulated constellation (`oc.simulated`) answers with the latency profile of each model
class, really waiting (`time_scale` 1). Each plan below runs with every node routed by:

- all fast: `Fixed("fast-wafer")` — the fastest model everywhere (the makespan baseline);
- all cheap: `Fixed("fast")` — the cheapest model everywhere (slower);
- slack-aware: `SlackAware(min_quality=0.6)` — the fastest on the critical path, the cheapest
  that fits elsewhere.

All three are measured in the same run; each plan's makespan is the median of `--repeats` runs
(timers are noisy). Reported per plan and in total: makespan and cost as ratios to all-fast.

Run: python benchmarks/slack.py [--time-scale 1.0] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from collections.abc import Sequence

import anyio

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ORCHESTRA_JOURNAL", "off")  # measure routing, not journals

import orchestra as oc

AGENT = oc.Agent(name="researcher", instructions="You are a careful researcher.")


def chains(lengths: Sequence[int]) -> oc.Plan:
    """Parallel chains of the given lengths, joined at the end."""
    tasks: list[oc.Task] = []
    ends: list[str] = []
    for branch, length in enumerate(lengths):
        previous: str | None = None
        for step in range(length):
            name = f"b{branch}s{step}"
            after = [previous] if previous else []
            tasks.append(oc.Task(id=name, agent=AGENT.name, prompt=f"Step {step}", after=after))
            previous = name
        ends.append(f"b{branch}s{length - 1}")
    tasks.append(oc.Task(id="join", agent=AGENT.name, prompt="Join the branches", after=ends))
    return oc.Plan(tasks=tasks, output="join")


def random_dag(nodes: int, seed: int) -> oc.Plan:
    """A random DAG: each node depends on up to two earlier ones."""
    rng = random.Random(seed)
    tasks: list[oc.Task] = []
    for index in range(nodes):
        earlier = [f"n{i}" for i in range(index)]
        after = sorted(rng.sample(earlier, k=min(len(earlier), rng.choice((0, 1, 1, 2)))))
        prompt = "Work on part " + "x" * rng.randrange(0, 2000)
        tasks.append(oc.Task(id=f"n{index}", agent=AGENT.name, prompt=prompt, after=after))
    return oc.Plan(tasks=tasks)


PLANS = {
    "chains 6+3+2+1": chains([6, 3, 2, 1]),
    "chain 6 + 10 single": chains([6, *[1] * 10]),
    "random 24 nodes": random_dag(24, seed=3),
}
POLICIES: dict[str, oc.RoutingPolicy] = {
    "all fast": oc.routing.Fixed("fast-wafer"),
    "all cheap": oc.routing.Fixed("fast"),
    "slack-aware": oc.routing.SlackAware(min_quality=0.6),
}


async def measure(plan: oc.Plan, policy: oc.RoutingPolicy, scale: float) -> tuple[float, float]:
    """Makespan (s) and cost (USD) of one run."""
    orch = oc.Orchestra(
        models=oc.simulated.constellation(time_scale=scale), agents=[AGENT], router=policy
    )
    started = time.perf_counter()
    result = await orch.execute(plan)
    return time.perf_counter() - started, result.cost_usd


async def main(scale: float, repeats: int) -> dict[str, float]:
    """Every plan under every policy; ratios to all-fast per plan and in total."""
    await measure(chains([1]), POLICIES["all fast"], 0.0)  # warm litellm up
    totals = {name: [0.0, 0.0] for name in POLICIES}
    for label, plan in PLANS.items():
        figures: dict[str, tuple[float, float]] = {}
        for name, policy in POLICIES.items():
            runs = [await measure(plan, policy, scale) for _ in range(repeats)]
            figures[name] = (statistics.median(r[0] for r in runs), runs[0][1])
            totals[name][0] += figures[name][0]
            totals[name][1] += figures[name][1]
        fast = figures["all fast"]
        cells = ", ".join(
            f"{name} {s / fast[0]:.3f}x time {c / fast[1]:.3f}x cost"
            for name, (s, c) in figures.items()
            if name != "all fast"
        )
        print(f"{label:22} all fast {fast[0]:.2f} s ${fast[1]:.6f}; {cells}")
    fast_s, fast_c = totals["all fast"]
    return {
        "slack_makespan_ratio": totals["slack-aware"][0] / fast_s,
        "slack_cost_ratio": totals["slack-aware"][1] / fast_c,
        "cheap_makespan_ratio": totals["all cheap"][0] / fast_s,
        "cheap_cost_ratio": totals["all cheap"][1] / fast_c,
        "all_fast_seconds": fast_s,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    result = anyio.run(main, args.time_scale, args.repeats, backend="asyncio")
    print(
        f"total: slack-aware takes {result['slack_makespan_ratio']:.3f}x the all-fast makespan at "
        f"{result['slack_cost_ratio']:.3f}x its cost (all cheap: "
        f"{result['cheap_makespan_ratio']:.3f}x time, {result['cheap_cost_ratio']:.3f}x cost)"
    )
    print("RESULT " + json.dumps({k: round(v, 4) for k, v in result.items()}))
