"""Scale: batches (`orch.map`) and a big DAG; every ratio against a baseline of the same run.

(a) batch: `orch.map` of RUNS runs of a 5-node plan against the instant in-process provider
    (FakeModel, zero latency) -> model calls per second and CPU ms per call, against bare
    `litellm.acompletion` calls to the same fake in a loop; with the journal off and on (what
    the driver's journal costs per call).
(c) big DAG: a DAG of DAG nodes (each one call to the same fake) run by orchestra and by
    LangGraph (`StateGraph`, each node its own state key, joins waiting for all their
    predecessors), each in a fresh process: peak memory above the process's baseline, and µs
    per node. LangGraph comes from the `bench` extra (`pip install -e '.[bench]'`); without it
    that part says so and is skipped.

Run: python benchmarks/scale.py [--runs 2000] [--dag 10000] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import _common  # noqa: F401 - keeps litellm offline: imported before orchestra
import anyio

import orchestra as oc
from orchestra.models.client import load_litellm
from orchestra.testing import FakeModel, fake_constellation

PLAN = oc.Plan(
    tasks=[
        oc.Task(id="facts", agent="w", prompt="facts on {topic}"),
        oc.Task(id="risks", agent="w", prompt="risks of {topic}"),
        oc.Task(id="costs", agent="w", prompt="costs of {topic}"),
        oc.Task(
            id="draft",
            agent="w",
            prompt="{facts} {risks} {costs}",
            after=["facts", "risks", "costs"],
        ),
        oc.Task(id="final", agent="w", prompt="polish {draft}", after=["draft"]),
    ]
)


def orchestra(fake: FakeModel, journal: Path | None) -> oc.Orchestra:
    agents = [oc.Agent(name="w", model="fast")]
    return oc.Orchestra(models=fake_constellation(fake), agents=agents, journal=journal)


async def measured(work: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """Wall and CPU seconds of `work` (this process's CPU: the driver, and here everything)."""
    wall, cpu = time.perf_counter(), time.process_time()
    await work()
    return time.perf_counter() - wall, time.process_time() - cpu


async def bare(fake: FakeModel, calls: int) -> None:
    litellm = load_litellm()
    for i in range(calls):
        await litellm.acompletion(
            model=fake.model("fast"),
            messages=[{"role": "user", "content": f"facts on topic {i}"}],
            max_retries=0,
            num_retries=0,
        )


async def batch(args: argparse.Namespace) -> dict[str, float]:
    fake = FakeModel(default="ok")
    rows = [{"topic": f"topic {i}"} for i in range(args.runs)]
    calls = args.runs * len(PLAN.tasks)
    await orchestra(fake, None).execute(PLAN, inputs=rows[0])  # warm litellm up
    bare_calls = min(calls, 2000)
    bare_wall, bare_cpu = await measured(lambda: bare(fake, bare_calls))

    async def mapped(journal: Path | None) -> None:
        async with orchestra(fake, journal).map(
            PLAN, inputs=rows, concurrency=args.concurrency, progress=False
        ) as results:
            async for _ in results:
                pass
        assert results.failed == 0, results.errors

    off_wall, off_cpu = await measured(lambda: mapped(None))
    with tempfile.TemporaryDirectory() as folder:
        on_wall, on_cpu = await measured(lambda: mapped(Path(folder) / "runs.sqlite"))
    return {
        "runs": args.runs,
        "calls": calls,
        "bare_calls_per_s": bare_calls / bare_wall,
        "bare_cpu_ms_per_call": bare_cpu / bare_calls * 1000,
        "map_calls_per_s": calls / off_wall,
        "map_cpu_ms_per_call": off_cpu / calls * 1000,
        "map_vs_bare_throughput": (calls / off_wall) / (bare_calls / bare_wall),
        "map_vs_bare_cpu": (off_cpu / calls) / (bare_cpu / bare_calls),
        "journal_calls_per_s": calls / on_wall,
        "journal_cpu_ms_per_call": (on_cpu - off_cpu) / calls * 1000,
    }


# -- the big DAG, one framework per process ------------------------------------------------------


def dag(size: int, seed: int = 7) -> list[list[int]]:
    """Each node's predecessors: one or two of the 20 nodes before it (a wide, deep DAG)."""
    rng = random.Random(seed)
    return [
        [] if i == 0 else sorted(rng.sample(range(max(0, i - 20), i), min(i, rng.randint(1, 2))))
        for i in range(size)
    ]


def peak_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def run_orchestra(fake: FakeModel, deps: list[list[int]]) -> None:
    tasks = [
        oc.Task(
            id=f"t{i}",
            agent="w",
            prompt=f"t{i}: " + " ".join(f"{{t{d}}}" for d in ds),
            after=[f"t{d}" for d in ds],
        )
        for i, ds in enumerate(deps)
    ]
    result = await orchestra(fake, None).execute(oc.Plan(tasks=tasks))
    assert len(result.nodes) == len(deps)


async def run_langgraph(fake: FakeModel, deps: list[list[int]]) -> None:
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph

    litellm = load_litellm()
    state = TypedDict("State", {f"t{i}": str for i in range(len(deps))}, total=False)  # type: ignore[misc]
    graph = StateGraph(state)
    model = fake.model("fast")

    def node(i: int, ds: list[int]) -> Callable[[dict[str, str]], Awaitable[dict[str, str]]]:
        async def call(values: dict[str, str]) -> dict[str, str]:
            prompt = f"t{i}: " + " ".join(values[f"t{d}"] for d in ds)
            reply = await litellm.acompletion(
                model=model, messages=[{"role": "user", "content": prompt}], max_retries=0
            )
            return {f"t{i}": reply.choices[0].message.content}

        return call

    needed: set[int] = set()
    for i, ds in enumerate(deps):
        graph.add_node(f"t{i}", node(i, ds))
        graph.add_edge([f"t{d}" for d in ds] if ds else START, f"t{i}")
        needed.update(ds)
    for i in range(len(deps)):
        if i not in needed:
            graph.add_edge(f"t{i}", END)
    values = await graph.compile().ainvoke({}, {"recursion_limit": len(deps) + 10})
    assert len(values) == len(deps)


async def dag_worker(framework: str, size: int) -> dict[str, float]:
    """Run the DAG with one framework in this (fresh) process; its memory and time."""
    fake = FakeModel(default="ok")
    deps = dag(size)
    await orchestra(fake, None).execute(oc.Plan(tasks=[oc.Task(id="w", agent="w", prompt="x")]))
    if framework == "langgraph":
        import langgraph.graph  # noqa: F401 - its import is not the DAG's memory
    baseline = peak_rss_kb()
    runner = run_langgraph if framework == "langgraph" else run_orchestra
    wall, _ = await measured(lambda: runner(fake, deps))
    return {"peak_mb": (peak_rss_kb() - baseline) / 1024, "us_per_node": wall / size * 1e6}


def in_process(framework: str, size: int) -> dict[str, float] | str:
    """The DAG run in a fresh process: its figures, or why it could not run."""
    done = subprocess.run(
        [sys.executable, __file__, "--dag-worker", framework, "--dag", str(size)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"
    return json.loads(done.stdout.strip().splitlines()[-1])


def big_dag(size: int) -> dict[str, Any]:
    figures: dict[str, Any] = {"dag_nodes": size}
    ours = in_process("orchestra", size)
    if isinstance(ours, str):
        raise SystemExit(f"orchestra could not run the DAG: {ours}")
    figures["orchestra_peak_mb"] = ours["peak_mb"]
    figures["orchestra_us_per_node"] = ours["us_per_node"]
    try:
        import langgraph  # noqa: F401
    except ImportError:
        figures["langgraph"] = "not installed: pip install -e '.[bench]'"
        return figures
    theirs = in_process("langgraph", size)
    if isinstance(theirs, str):
        figures["langgraph"] = theirs
        return figures
    figures["langgraph_peak_mb"] = theirs["peak_mb"]
    figures["langgraph_us_per_node"] = theirs["us_per_node"]
    figures["memory_vs_langgraph"] = ours["peak_mb"] / theirs["peak_mb"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--dag", type=int, default=10000)
    parser.add_argument("--dag-worker", choices=["orchestra", "langgraph"])
    args = parser.parse_args()
    if args.dag_worker:
        print(json.dumps(anyio.run(dag_worker, args.dag_worker, args.dag, backend="asyncio")))
        return
    figures: dict[str, Any] = anyio.run(batch, args, backend="asyncio")
    print(
        f"(a) map of {args.runs} runs x 5 nodes: {figures['map_calls_per_s']:.0f} calls/s, "
        f"{figures['map_cpu_ms_per_call']:.2f} CPU ms/call; bare litellm "
        f"{figures['bare_calls_per_s']:.0f} calls/s, {figures['bare_cpu_ms_per_call']:.2f} ms/call "
        f"-> {figures['map_vs_bare_throughput']:.2f}x throughput, "
        f"{figures['map_vs_bare_cpu']:.2f}x CPU per call"
    )
    print(
        f"    with the journal: {figures['journal_calls_per_s']:.0f} calls/s, "
        f"+{figures['journal_cpu_ms_per_call']:.2f} CPU ms/call in the driver"
    )
    figures.update(big_dag(args.dag))
    line = f"(c) {args.dag}-node DAG: orchestra {figures['orchestra_peak_mb']:.0f} MB"
    if "memory_vs_langgraph" in figures:
        line += (
            f" vs LangGraph {figures['langgraph_peak_mb']:.0f} MB = "
            f"{figures['memory_vs_langgraph']:.2f}x; µs/node orchestra "
            f"{figures['orchestra_us_per_node']:.0f}, "
            f"LangGraph {figures['langgraph_us_per_node']:.0f}"
        )
    else:
        line += f" (LangGraph: {figures['langgraph']})"
    print(line)
    print(
        "RESULT "
        + json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()})
    )


if __name__ == "__main__":
    main()
