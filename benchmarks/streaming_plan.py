"""Time to first dispatch: a streaming boss vs waiting for the whole plan.

On the simulated constellation (a gpt-4o-class boss decoding at 90 tokens/s), the same tasks
run twice: with the boss's plan streamed (tasks dispatched as soon as they and their
dependencies are known) and with the plan read only once complete. Prints the ratios of the
time to the first dispatched task and of the whole run. Run: python benchmarks/streaming_plan.py
"""

from __future__ import annotations

import argparse
import json
import statistics

import anyio
from _common import TASKS  # keeps litellm offline too: imported before orchestra

import orchestra as oc
import orchestra.simulated as simulated


async def measure(task: str, *, stream: bool, scale: float) -> tuple[float, float]:
    models = simulated.constellation(time_scale=scale)
    models.swap("boss", models["boss"].model_copy(update={"stream": stream}))
    events: list[oc.Event] = []
    orch = oc.Orchestra(
        models=models,
        agents=simulated.agents(),
        boss=simulated.BOSS,
        router=oc.routing.Cheapest(min_quality=0.5),
        on_event=events.append,
    )
    result = await orch.run(task)
    start = events[0].at
    first = next(e for e in events if e.kind == "node_started")
    return (first.at - start).total_seconds(), result.seconds


async def main(scale: float) -> dict[str, float]:
    first: list[float] = []
    total: list[float] = []
    for task in TASKS:
        whole_first, whole_total = await measure(task, stream=False, scale=scale)
        streamed_first, streamed_total = await measure(task, stream=True, scale=scale)
        first.append(whole_first / streamed_first)
        total.append(whole_total / streamed_total)
        print(
            f"{task[:50]:<50} first dispatch {whole_first:5.2f} s -> {streamed_first:5.2f} s, "
            f"run {whole_total:5.2f} s -> {streamed_total:5.2f} s"
        )
    return {
        "first_dispatch_speedup": statistics.geometric_mean(first),
        "run_speedup": statistics.geometric_mean(total),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-scale", type=float, default=0.3)
    figures = anyio.run(main, parser.parse_args().time_scale, backend="asyncio")
    print(
        f"streaming plans: first task dispatched {figures['first_dispatch_speedup']:.1f}x "
        f"sooner, runs {figures['run_speedup']:.2f}x faster"
    )
    print("RESULT " + json.dumps({k: round(v, 3) for k, v in figures.items()}))
