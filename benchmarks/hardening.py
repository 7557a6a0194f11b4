"""Hostile input stays cheap: plan validation scales linearly, and no provider body holds the
event loop.

- hints: `plan_problems` on plans with N misspelt dependencies, N = 200 and 2,000; the time per
  task should stay flat (it was quadratic: 1,200 took over 10 s, 2,000 took 140 s).
- loop lag: the longest gap of a probe task waking every 10 ms while one call gets a 2 MB
  error body, and while one gets a 1 MB answer litellm cannot read (both held the loop for
  seconds), against the same probe during an ordinary call, over a local HTTP server.

Run: python benchmarks/hardening.py
"""

from __future__ import annotations

import contextlib
import json
import time

import _common  # noqa: F401  # keeps litellm offline; imported before orchestra
import anyio

import orchestra as oc
from orchestra.models.client import ModelClient
from orchestra.testing.server import Error, OpenAICompatibleServer, Reply, Step


def hint_seconds(count: int) -> float:
    tasks = [oc.Task(id=f"step_{i}", agent="w", prompt="x") for i in range(count)]
    tasks += [
        oc.Task(id=f"use_{i}", agent="w", prompt="x", after=[f"stpe_{i}"]) for i in range(count)
    ]
    plan = oc.Plan(tasks=tasks)
    started = time.perf_counter()
    oc.plan_problems(plan, agents=["w"])
    return time.perf_counter() - started


async def worst_lag(server: OpenAICompatibleServer, step: Step) -> float:
    spec = oc.ModelSpec(name="m", model="openai/m", api_base=server.url, api_key="k")
    server.script("m", [step])
    worst = 0.0

    async def probe() -> None:
        nonlocal worst
        last = time.monotonic()
        while True:
            await anyio.sleep(0.01)
            now = time.monotonic()
            worst = max(worst, now - last - 0.01)
            last = now

    async with anyio.create_task_group() as group:
        group.start_soon(probe)
        with contextlib.suppress(oc.ModelError):
            await ModelClient().complete(spec, [{"role": "user", "content": "hi"}])
        group.cancel_scope.cancel()
    return worst


async def lags() -> dict[str, float]:
    unreadable = Reply(None, tool_calls=[{"name": "f", "arguments": '{"tasks": [' * 90_000}])
    with OpenAICompatibleServer() as server:
        await worst_lag(server, Reply("warm"))  # litellm's first-call set-up is not measured
        return {
            "ordinary": await worst_lag(server, Reply("fine")),
            "error_2mb": await worst_lag(server, Error(500, "x" * 2_000_000)),
            "unreadable_1mb": await worst_lag(server, unreadable),
        }


def main() -> None:
    hint_seconds(20)  # imports and first calls, not measured
    small, large = hint_seconds(200), hint_seconds(2000)
    print(
        f"hints: 200 -> {small:.3f} s, 2,000 -> {large:.3f} s; per task {large / small / 10:.2f}x"
    )
    figures = anyio.run(lags, backend="asyncio")
    for name in ("error_2mb", "unreadable_1mb"):
        print(
            f"loop lag, {name}: {figures[name]:.3f} s "
            f"({figures[name] / max(figures['ordinary'], 1e-3):.1f}x an ordinary call's)"
        )
    result = {
        "hints_per_task_ratio": large / small / 10,
        **{f"lag_{k}": v for k, v in figures.items()},
    }
    print("RESULT " + json.dumps({k: round(v, 3) for k, v in result.items()}))


if __name__ == "__main__":
    main()
