"""Journal overhead: the same runs recorded in the SQLite journal, and not recorded.

Baselines are measured in the same run, alternating on and off (the machines are noisy), best
of three each:
- wide: N independent instant nodes (FakeModel, zero latency), all dispatched at once: the
  journal commits each node's start and result (two commits a node, events ride along).
- chain: N/4 dependent instant nodes: every commit is on the critical path.
- cache: the wide run again with the response cache on, second pass (every answer cached),
  against the same run with no cache: what a cache hit costs next to a model call.

Run: python benchmarks/journal.py [--nodes N]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import anyio

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import orchestra as oc
from orchestra.testing import FakeModel, fake_constellation


def wide_plan(count: int) -> oc.Plan:
    return oc.Plan(tasks=[oc.Task(id=f"t{i}", agent="w", prompt=f"p{i}") for i in range(count)])


def chain_plan(count: int) -> oc.Plan:
    tasks = [oc.Task(id="t0", agent="w", prompt="step 0")]
    tasks += [
        oc.Task(id=f"t{i}", agent="w", prompt=f"step {i} after {{t{i - 1}}}", after=[f"t{i - 1}"])
        for i in range(1, count)
    ]
    return oc.Plan(tasks=tasks)


def orchestra(fake: FakeModel, journal: Path | None, cache: oc.Cache | None = None) -> oc.Orchestra:
    agents = [oc.Agent(name="w", model="fast")]
    return oc.Orchestra(
        models=fake_constellation(fake), agents=agents, journal=journal, cache=cache
    )


async def timed(orch: oc.Orchestra, plan: oc.Plan) -> float:
    started = time.perf_counter()
    await orch.execute(plan)
    return time.perf_counter() - started


async def compare(fake: FakeModel, plan: oc.Plan, folder: Path, label: str) -> tuple[float, float]:
    """Best-of-three seconds without and with the journal (each run in a fresh journal)."""
    off: list[float] = []
    on: list[float] = []
    for attempt in range(3):
        off.append(await timed(orchestra(fake, None), plan))
        on.append(await timed(orchestra(fake, folder / f"{label}-{attempt}.sqlite"), plan))
    return min(off), min(on)


async def cached(fake: FakeModel, plan: oc.Plan, folder: Path) -> tuple[float, float]:
    """Best-of-three seconds of a run with no cache, and of a run answered from the cache."""
    cache = oc.Cache(path=str(folder / "cache.sqlite"))
    await orchestra(fake, None, cache).execute(plan)  # fill it
    plain: list[float] = []
    hits: list[float] = []
    for _ in range(3):
        plain.append(await timed(orchestra(fake, None), plan))
        hits.append(await timed(orchestra(fake, None, cache), plan))
    return min(plain), min(hits)


async def main(nodes: int) -> dict[str, float]:
    fake = FakeModel(default="ok")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        await orchestra(fake, None).execute(wide_plan(10))  # warm litellm up
        wide_off, wide_on = await compare(fake, wide_plan(nodes), folder, "wide")
        chain_off, chain_on = await compare(fake, chain_plan(nodes // 4), folder, "chain")
        plain, hit = await cached(fake, wide_plan(nodes), folder)
    return {
        "nodes": nodes,
        "ratio": wide_on / wide_off,
        "off_s": wide_off,
        "on_s": wide_on,
        "overhead_ms_per_node": (wide_on - wide_off) / nodes * 1000,
        "chain_ratio": chain_on / chain_off,
        "chain_overhead_ms_per_node": (chain_on - chain_off) / (nodes // 4) * 1000,
        "cache_hit_speedup": plain / hit,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    args = parser.parse_args()
    figures = anyio.run(main, args.nodes, backend="asyncio")
    print(
        f"{args.nodes} instant nodes: journal on {figures['on_s']:.2f} s vs off "
        f"{figures['off_s']:.2f} s = {figures['ratio']:.2f}x "
        f"({figures['overhead_ms_per_node']:.3f} ms/node)"
    )
    print(
        f"chain of {args.nodes // 4}: {figures['chain_ratio']:.2f}x "
        f"({figures['chain_overhead_ms_per_node']:.3f} ms/node on the critical path)"
    )
    print(f"a run answered from the cache: {figures['cache_hit_speedup']:.1f}x faster")
    print("RESULT " + json.dumps({k: round(v, 3) for k, v in figures.items()}))
