"""Real small models on llama.cpp (CPU): planning, speed, overhead, and a 135M router.

Needs `scripts/local-models install` (skips, saying so, without it). Four measurements, each
against a baseline measured in the same run:

1. **Plan validity** of SmolLM2-135M as the boss over 20 varied task texts: unconstrained (the
   general plan schema in the prompt only) vs constrained (llama.cpp decodes under the plan
   schema specialised to this Orchestra). A plan is valid when the planner returns one (at most
   one repair round, as by default); "first" counts plans valid without repair.
2. **Speed** per model, measured on the server directly: time to first token, decode tokens/s,
   and the latency of a 64-token answer.
3. **Overhead**: the same calls through an Orchestra (one-task plans) and through bare
   `litellm.acompletion`, alternated; the wall-time ratio orchestra / bare.
4. **A 135M router**: `LLMRouter` on the real SmolLM2 server placing 100 dev queries of the
   recorded constellation (`../shared/data/routing/zeroeval`), against the routing benchmark's
   recommended policy and the strong model on the same queries: accuracy, cost, router latency,
   and how often the router named a usable model at all.

Run: python benchmarks/local_models.py [--tasks 20] [--router-queries 100] [--skip-router]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

import _common  # noqa: F401  (keeps litellm offline; imported before orchestra)
import anyio
import httpx
import routing as recorded_bench  # the routing benchmark's data and policies (benchmarks/)

import orchestra as oc
from orchestra.events import ModelCalled, PlanRejected
from orchestra.models.loader import load_litellm
from orchestra.testing.local_models import LocalServer, LocalServers, missing

TASKS = [
    "Write a short poem about the sea.",
    "Summarise the benefits of unit tests.",
    "Compare cats and dogs as pets.",
    "Plan a weekend trip to Paris.",
    "Explain how a bicycle works.",
    "List three healthy breakfast ideas and pick the best.",
    "Draft an email asking for a day off.",
    "Describe the water cycle for a child.",
    "Give arguments for and against remote work.",
    "Write a product description for a coffee mug.",
    "Explain what a database index is.",
    "Suggest names for a bakery and choose one.",
    "Outline a talk about climate change.",
    "Compare trains and planes for a 500 km trip.",
    "Write a haiku about autumn and explain it.",
    "Review the pros and cons of electric cars.",
    "Explain photosynthesis in two paragraphs.",
    "Create a study plan for learning Spanish.",
    "Describe three uses of machine learning in medicine.",
    "Write a short story opening about a lost key.",
]
AGENTS = [
    oc.Agent(name="researcher", description="finds facts on a topic", model="worker"),
    oc.Agent(name="analyst", description="compares options", model="worker"),
    oc.Agent(name="writer", description="writes the final text", model="worker"),
]
PROMPTS = [
    "Name three colours.",
    "What is the capital of France?",
    "Say hello in Spanish.",
    "Count from one to five.",
]
GREEDY: dict[str, Any] = {"temperature": 0.0, "seed": 0}
# The router chooses among six models spanning the recorded price range (a 24-line model list
# makes each routing call of the 135M model take minutes on a loaded CPU); the baselines keep
# every recorded model.
ROUTED = (
    "gpt-4o-2024-08-06",
    "gpt-4o-mini-2024-07-18",
    "deepseek-v2.5-0908",
    "gemini-1.5-flash",
    "Meta-Llama-3.1-8B-Instruct",
    "gemma-2-2b-it",
)
PARTS = ("planning", "speed", "overhead", "router")


async def plan_validity(
    servers: LocalServers, tasks: Sequence[str], constrained: bool
) -> dict[str, Any]:
    """How many of `tasks` the 135M boss planned validly, and how fast."""
    boss = servers["smollm2"].spec(
        name="boss",
        structured_output="json_object" if constrained else "none",
        litellm_params={"max_tokens": 800},
    )
    worker = servers["gemma3"].spec(name="worker")
    valid = first = cut = 0
    seconds: list[float] = []
    problems: dict[str, int] = {}
    for task in tasks:
        events: list[oc.Event] = []
        orch = oc.Orchestra(
            models=[boss, worker], agents=AGENTS, boss="boss", on_event=events.append
        )
        started = time.perf_counter()
        try:
            await orch.plan(task)
        except oc.PlanError:
            pass
        else:
            valid += 1
            first += not any(e.kind == "plan_rejected" for e in events)
        seconds.append(time.perf_counter() - started)
        cut += sum(isinstance(e, ModelCalled) and e.truncated for e in events)
        for event in events:
            if isinstance(event, PlanRejected) and event.problems:
                kind = event.problems[0].split(";")[0][:70]
                problems[kind] = problems.get(kind, 0) + 1
    return {
        "valid": valid,
        "first": first,
        "cut": cut,
        "seconds": statistics.mean(seconds),
        "problems": sorted(problems.items(), key=lambda kv: -kv[1])[:3],
    }


def speed(server: LocalServer, runs: int = 3) -> dict[str, float]:
    """Time to first token, decode tokens/s and whole-answer latency, on the server itself."""
    firsts: list[float] = []
    rates: list[float] = []
    latencies: list[float] = []
    for index in range(runs):
        body = {
            "model": server.model.name,
            "messages": [{"role": "user", "content": PROMPTS[index % len(PROMPTS)]}],
            "max_tokens": 64,
            "stream": True,
            **GREEDY,
        }
        started = time.perf_counter()
        stamps: list[float] = []
        with httpx.stream("POST", f"{server.url}/chat/completions", json=body, timeout=300) as r:
            for line in r.iter_lines():
                if line.startswith("data: {") and '"content"' in line:
                    stamps.append(time.perf_counter())
        end = time.perf_counter()
        latencies.append(end - started)
        if stamps:
            firsts.append(stamps[0] - started)
            if len(stamps) > 1:
                rates.append((len(stamps) - 1) / (stamps[-1] - stamps[0]))
    return {
        "ttft_s": statistics.median(firsts),
        "decode_tps": statistics.median(rates),
        "latency_s": statistics.median(latencies),
    }


async def overhead(server: LocalServer, rounds: int = 2) -> tuple[float, float]:
    """Total wall time of the same calls through orchestra and through bare litellm.

    The server reuses the previous request's prompt prefix, so no call follows one with the
    same prompt: each round asks every prompt once each way, the two ways alternating over
    the prompts and swapping places from one round to the next.
    """
    litellm = load_litellm()
    spec = server.spec(name="local", litellm_params={"max_tokens": 32})
    orch = oc.Orchestra(models=[spec])

    async def bare_call(prompt: str) -> None:
        await litellm.acompletion(
            model=spec.model,
            api_base=server.url,
            api_key="none",
            messages=[{"role": "user", "content": prompt}],
            max_tokens=32,
            **GREEDY,
        )

    async def orchestra_call(prompt: str) -> None:
        await orch.execute(oc.Plan(tasks=[oc.Task(id="q", agent="assistant", prompt=prompt)]))

    seconds = {"orchestra": 0.0, "bare": 0.0}
    ways = {"orchestra": orchestra_call, "bare": bare_call}
    for round_ in range(rounds):
        order = ["orchestra", "bare"] if round_ % 2 else ["bare", "orchestra"]
        for turn in range(2):
            for index, prompt in enumerate(PROMPTS):
                way = order[(index + turn) % 2]
                started = time.perf_counter()
                await ways[way](prompt)
                seconds[way] += time.perf_counter() - started
    return seconds["orchestra"], seconds["bare"]


def router_benchmark(server: LocalServer, queries: int) -> None:
    """LLMRouter on the real 135M model vs the recommended policy and the strong model."""
    data = recorded_bench.DEFAULT_DATA
    catalogue = recorded_bench.json.loads((data / "models.json").read_text(encoding="utf-8"))
    models = [m for m in catalogue["models"] if m not in recorded_bench.EXCLUDED]
    recorded = recorded_bench.RecordedConstellation.load(data, "dev", models=models)
    sample = recorded_bench.interleave(recorded.queries, queries)
    # The recorded models answer; the router only reads. Tags keep the router's own model out
    # of the candidates.
    answerers = [
        s.model_copy(update={"tags": {"recorded"}}) for s in recorded.constellation(ROUTED)
    ]
    router = server.spec(name="router", litellm_params={"max_tokens": 40})
    agents = [oc.Agent(name=t, tags={"recorded"}) for t in sorted({q.task for q in sample})]
    events: list[oc.Event] = []
    policy = oc.routing.LLMRouter(
        "router", fallback=oc.routing.Cheapest(min_quality=0.5), prompt_chars=800
    )
    orch = oc.Orchestra(
        models=[*answerers, router], agents=agents, router=policy, on_event=events.append
    )
    started = time.perf_counter()
    result = anyio.run(orch.execute, recorded_bench.plan_of(sample), backend="asyncio")
    wall = time.perf_counter() - started
    nodes = {q.qid: result.nodes[f"q{i:05d}"] for i, q in enumerate(sample)}
    correct = recorded_bench.load_correct(data, "dev")  # read only to score
    small = frozenset(m for m in models if catalogue["models"][m].get("tier") != "large")
    # The router's own calls are in each node's cost; score the answering part and the router.
    llm = recorded_bench.score("LLMRouter (SmolLM2-135M, real)", nodes, correct, small)
    baselines = {
        f"strong: {recorded_bench.STRONG}": oc.routing.Fixed(recorded_bench.STRONG),
        f"single: {recorded_bench.MINI}": oc.routing.Fixed(recorded_bench.MINI),
        recorded_bench.RECOMMENDED: oc.routing.load_cascades(recorded_bench.PRESET),
    }
    rows = [
        recorded_bench.score(
            name, recorded_bench.run_policy(recorded, sample, policy_, models), correct, small
        )
        for name, policy_ in baselines.items()
    ]
    best = recorded_bench.oracle(recorded_bench.cases_of(recorded, sample, correct, models))
    print(recorded_bench.table([*rows, llm, best], rows[0], rows[1], best))
    routed = [e for e in events if isinstance(e, ModelCalled) and e.model == "router"]
    named = sum(" chose " in (n.route or "") for n in nodes.values())
    chosen: dict[str, int] = {}
    for node in nodes.values():
        chosen[node.model or "-"] = chosen.get(node.model or "-", 0) + 1
    top = sorted(chosen.items(), key=lambda kv: -kv[1])[:4]
    print(
        f"router: named a usable model for {named}/{len(nodes)} queries (else the fallback, "
        f"Cheapest(min_quality=0.5), chose); latency per routing call "
        f"{statistics.median(e.seconds for e in routed):.2f} s median, "
        f"{max(e.seconds for e in routed):.2f} s max; {wall:.0f} s for the {len(nodes)} queries"
    )
    print(f"answering models: {', '.join(f'{m} x{c}' for m, c in top)}")
    recorded.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tasks", type=int, default=len(TASKS), help="plan-validity tasks")
    parser.add_argument(
        "--modes", default="unconstrained,constrained", help="plan-validity modes to measure"
    )
    parser.add_argument("--router-queries", type=int, default=100)
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}"
    )
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    if not parts <= set(PARTS):
        parser.error(f"--parts takes {', '.join(PARTS)}")
    absent = missing()
    if absent is not None:
        print(f"skipped: {absent}; run scripts/local-models install")
        return
    with LocalServers(
        ["smollm2", "gemma3"] if parts & {"planning", "speed"} else ["smollm2"]
    ) as servers:
        tasks = TASKS[: args.tasks] if "planning" in parts else []
        if tasks:
            print(f"plan validity of SmolLM2-135M as the boss, {len(tasks)} tasks:")
        modes = args.modes.split(",") if tasks else []
        for constrained in [mode == "constrained" for mode in modes]:
            got = anyio.run(plan_validity, servers, tasks, constrained, backend="asyncio")
            label = "constrained  " if constrained else "unconstrained"
            print(
                f"  {label} {got['valid']:2}/{len(tasks)} valid ({got['valid'] / len(tasks):.0%}), "
                f"{got['first']:2} without repair, {got['seconds']:.1f} s per plan, "
                f"{got['cut']} answers cut at max_tokens"
            )
            for problem, count in got["problems"]:
                print(f"    rejected {count}x: {problem}")
        if "speed" in parts:
            print("speed on this machine (llama.cpp, one CPU thread per server, 64-token answers):")
        for name in ("smollm2", "gemma3") if "speed" in parts else ():
            got = speed(servers[name])
            print(
                f"  {name:8} first token {got['ttft_s']:.2f} s, {got['decode_tps']:.1f} tokens/s "
                f"decoding, {got['latency_s']:.2f} s per answer"
            )
        if "overhead" in parts:
            through, bare = anyio.run(overhead, servers["smollm2"], backend="asyncio")
            print(
                f"orchestra vs bare litellm, {2 * len(PROMPTS)} calls each way, alternated: "
                f"{through:.2f} s vs {bare:.2f} s, ratio {through / bare:.3f}"
            )
        if "router" in parts:
            queries = args.router_queries
            print(f"\n135M router vs the recorded constellation, {queries} dev queries:")
            router_benchmark(servers["smollm2"], queries)


if __name__ == "__main__":
    main(sys.argv[1:])
