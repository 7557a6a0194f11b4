"""Routing policies on recorded answers of 25 real models: accuracy and cost, measured live.

Every policy runs through the normal Orchestra path — one task per query (its agent is the
query's type: gsm, math-l5, crux), all queries of a split in one plan — on a
`RecordedConstellation`, which answers each call as the asked model really did, with its token
counts (cost = tokens × list prices). The benchmark then scores each node's answer with the
recorded `correct` flag of the model that gave it; a query whose node fails is scored wrong,
its cost counted, and listed. Labels are read only to score (and, on dev, to fit and
cross-validate). o1-mini is left out (its cost is a lower bound).

Measured in the same run: the strong model (gpt-4o) alone, single cheap models, agreement
cascades, three baselines from the literature — an agreement-based cascade (ABC), an
Avengers-style cluster router and a RouteLLM-style threshold router, the last two fitted on
dev — the recommended policy (the bundled preset `load_cascades("zeroeval")`) and the oracle
(the cheapest model that was right, per query: a bound, not a policy). Columns: accuracy, cost
against the strong model, PGR (the share of the weak-to-strong gap recovered; weak:
gpt-4o-mini) and the shares of calls, kept answers and cost on small models (`_routing_figures`).

On dev the benchmark also cross-validates (fit on half, replay on the other half, repeated):
the candidate configurations of the learned cascades and the baselines, with the mean and the
10th percentile of the accuracy gap to gpt-4o and the mean cost ratio. The recommended
configuration is the one with the best 10th percentile among those within the cost goal;
`--fit` refits it on the whole dev split and writes the bundled preset. It writes the
cost–accuracy Pareto picture as an SVG (`--svg`; by default `docs/images/` on a full split).

Run: python benchmarks/routing.py [--data DIR] [--split dev|test] [--limit N] [--fit]
The last line is `RESULT {json}` for the recommended policy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ORCHESTRA_JOURNAL", "off")  # measure routing, not journals

# The figures live beside this script (not a package): found also when a test loads the file.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _routing_figures import (
    Row,
    average_recovered,
    pareto_svg,
    recovered,
    score,
    table,
)

import orchestra as oc
from orchestra.answers import answer_key
from orchestra.checks import Agree, Vote
from orchestra.routing import (
    Cascade,
    Case,
    Stage,
    cross_validate_fitters,
    fit_cascades,
    fit_cluster_router,
    fit_threshold_router,
    replay,
)
from orchestra.routing.evaluate import Fitter, HeldOut
from orchestra.routing.fit import Fit, Outcome, Query, Replayed
from orchestra.testing import RecordedConstellation, RecordedQuery

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "routing" / "zeroeval"
PRESET = ROOT / "orchestra" / "routing" / "presets" / "zeroeval.json"
STRONG = "gpt-4o-2024-08-06"
EXCLUDED = frozenset({"o1-mini-2024-09-12"})  # hidden reasoning tokens: cost is a lower bound
DS, MINI, FLASH = "deepseek-v2.5-0908", "gpt-4o-mini-2024-07-18", "gemini-1.5-flash"
WEAK = MINI  # the PGR yardstick's weak end: the most accurate small model alone
RECOMMENDED = "learned cascades (preset)"
GOAL_RATIO = 0.22  # the goal: 10th-percentile gap >= 0 at a mean cost ratio at most this
# The learned cascades' candidate configurations: per task, the cheap models whose answers the
# scorer reads (searching subsets on dev overfitted it: these are the two stage sets that
# held up), and the budgets they are fitted at. Cross-validation picks one of them.
FIRSTS: dict[str, dict[str, tuple[str, ...]]] = {
    "gsm flash+mini": {"gsm": (FLASH, MINI), "crux": (DS, MINI), "math-l5": (FLASH, DS, MINI)},
    "gsm mini": {"gsm": (MINI,), "crux": (DS, MINI), "math-l5": (FLASH, DS, MINI)},
}
BUDGETS = (0.20, 0.21, 0.215, 0.22)
FIT_SETTINGS: dict[str, Any] = {"pool": 4, "cheap_ratio": 0.08, "c": 0.3}
ABC = Cascade((Stage((FLASH, DS, MINI), Agree(3)), Stage((STRONG,), Vote())))
SWEEP = (0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.6, 1.0)  # budgets of the Pareto curves
ABC_NAME = "ABC: flash+deepseek+mini unanimous -> gpt-4o"
CLUSTER_NAME = "cluster router (TF-IDF, 8 clusters)"
THRESHOLD_NAME = "threshold router (mini | gpt-4o at 22%)"
FITTED = (CLUSTER_NAME, THRESHOLD_NAME, RECOMMENDED)  # fitted on dev


def fit_learned(cases: Sequence[Case], first: str, budget: float) -> Fit:
    """The learned cascades of configuration `first`, fitted on `cases` within `budget`."""
    groups: dict[str, list[Query]] = {}
    for case in cases:
        groups.setdefault(case.group, []).append(case.outcomes)
    chosen = {task: models for task, models in FIRSTS[first].items() if task in groups}
    return fit_cascades(groups, strong=STRONG, first=chosen, max_cost_ratio=budget, **FIT_SETTINGS)


def learned_fitter(first: str, budget: float) -> Fitter:
    """Fit the learned cascades on the training cases; replay them per case."""

    def fit(train: Sequence[Case]) -> Callable[[Case], Replayed]:
        fitted = fit_learned(train, first, budget)
        return lambda case: replay(fitted.cascades.get(case.group, fitted.default), case.outcomes)

    return fit


def single_model(pick: Callable[[str], str]) -> Callable[[Case], Replayed]:
    """Replay a router that picks one model from the prompt."""

    def run(case: Case) -> Replayed:
        model = pick(case.prompt)
        outcome = case.outcomes[model]
        return Replayed(model, outcome.correct, outcome.cost_usd)

    return run


def cluster_router(cases: Sequence[Case]) -> oc.routing.ClusterRouter:
    """The Avengers-style baseline fitted on `cases`: 8 clusters, within 2 points of the best."""
    return fit_cluster_router([c.prompt for c in cases], [c.outcomes for c in cases])


def threshold_router(
    cases: Sequence[Case], budget: float = GOAL_RATIO
) -> oc.routing.ThresholdRouter:
    """The RouteLLM-style baseline fitted on `cases`: gpt-4o-mini or gpt-4o within `budget`."""
    return fit_threshold_router(
        [c.prompt for c in cases],
        [c.outcomes for c in cases],
        weak=WEAK,
        strong=STRONG,
        max_cost_ratio=budget,
    )


def baseline_fitters() -> dict[str, Fitter]:
    """The literature's baselines as fitters (ABC fits nothing)."""

    def cluster(train: Sequence[Case]) -> Callable[[Case], Replayed]:
        router = cluster_router(train)
        return single_model(lambda prompt: router.choices[router.cluster(prompt)][0])

    def threshold(train: Sequence[Case]) -> Callable[[Case], Replayed]:
        router = threshold_router(train)
        return single_model(
            lambda prompt: STRONG if router.needed(prompt) >= router.threshold else WEAK
        )

    return {
        ABC_NAME: lambda train: lambda case: replay(ABC, case.outcomes),
        CLUSTER_NAME: cluster,
        THRESHOLD_NAME: threshold,
    }


def load_correct(folder: Path, split: str) -> dict[str, dict[str, bool]]:
    """The recorded correctness of every model on every query (for scoring and fitting only)."""
    correct: dict[str, dict[str, bool]] = {}
    for line in (folder / f"{split}.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            correct[str(row["qid"])] = {m: bool(f["correct"]) for m, f in row["models"].items()}
    return correct


def interleave(queries: Sequence[RecordedQuery], limit: int | None) -> list[RecordedQuery]:
    """The first `limit` queries, taken in turn from each type so a slice has all types."""
    by_task: dict[str, list[RecordedQuery]] = {}
    for query in queries:
        by_task.setdefault(query.task, []).append(query)
    mixed: list[RecordedQuery] = []
    columns = list(by_task.values())
    for index in range(max(len(c) for c in columns)):
        mixed.extend(c[index] for c in columns if index < len(c))
    return mixed[:limit] if limit else mixed


def plan_of(queries: Sequence[RecordedQuery]) -> oc.Plan:
    """One task per query; braces doubled so the prompt reaches the model as recorded."""
    return oc.Plan(
        tasks=[
            oc.Task(
                id=f"q{index:05d}",
                agent=query.task,
                prompt=query.prompt.replace("{", "{{").replace("}", "}}"),
            )
            for index, query in enumerate(queries)
        ]
    )


def run_policy(
    recorded: RecordedConstellation,
    queries: Sequence[RecordedQuery],
    policy: oc.RoutingPolicy,
    models: Sequence[str],
) -> dict[str, oc.NodeResult]:
    """Run every query through Orchestra with `policy`; node results by qid, failed ones too.

    A failed node stops its run from dispatching more; the queries it did not reach run again
    in a new run, until every query has a result.
    """
    orch = oc.Orchestra(
        models=recorded.constellation(models),
        agents=[oc.Agent(name=task) for task in sorted({q.task for q in queries})],
        router=policy,
    )
    nodes: dict[str, oc.NodeResult] = {}
    left = list(queries)
    while left:
        try:
            settled = anyio.run(orch.execute, plan_of(left), backend="asyncio").nodes
        except oc.NodeFailed as failed:
            settled = failed.result.nodes
        nodes |= {q.qid: settled[f"q{i:05d}"] for i, q in enumerate(left) if f"q{i:05d}" in settled}
        left = [q for q in left if q.qid not in nodes]
    return nodes


def cases_of(
    recorded: RecordedConstellation,
    queries: Sequence[RecordedQuery],
    correct: Mapping[str, Mapping[str, bool]],
    models: Sequence[str],
) -> list[Case]:
    """Each query's prompt and recorded outcome per model (key, correct, cost, tokens)."""
    specs = recorded.constellation(models)
    cases: list[Case] = []
    for query in queries:
        outcomes: dict[str, Outcome] = {}
        for model in models:
            answer = query.answers.get(model)
            if answer is None:
                continue
            cost = specs[model].cost(
                input_tokens=answer.input_tokens, output_tokens=answer.output_tokens
            )
            answered = bool(answer.text) and answer.status is None
            key = answer_key(answer.text) if answered else None
            right = answered and correct[query.qid].get(model, False)
            outcomes[model] = Outcome(key, right, cost, answer.output_tokens)
        cases.append(Case(query.task, query.prompt, outcomes))
    return cases


def oracle(cases: Sequence[Case]) -> Row:
    """The cheapest model that was right, per query (nothing spent when none was)."""
    right = [
        min((o.cost_usd for o in c.outcomes.values() if o.correct), default=None) for c in cases
    ]
    return Row(
        "oracle (cheapest right model)",
        sum(c is not None for c in right) / len(cases),
        sum(c or 0.0 for c in right) / len(cases),
        1.0,
    )


def policies(dev_cases: Sequence[Case]) -> dict[str, oc.RoutingPolicy]:
    """Every policy measured, baselines first; the recommended one last."""
    return {
        f"strong: {STRONG}": oc.routing.Fixed(STRONG),
        f"single: {MINI}": oc.routing.Fixed(MINI),
        f"single: {DS}": oc.routing.Fixed(DS),
        "cheapest quality>=0.6": oc.routing.Cheapest(min_quality=0.6),
        "vote(flash, deepseek, mini)": Cascade((Stage((FLASH, DS, MINI), Vote()),)),
        "agree(deepseek, mini) -> gpt-4o": Cascade(
            (Stage((DS, MINI), Agree(2)), Stage((STRONG,), Vote()))
        ),
        "agree(flash, deepseek) -> mini -> gpt-4o": Cascade(
            (Stage((FLASH, DS), Agree(2)), Stage((MINI,), Agree(2)), Stage((STRONG,), Vote()))
        ),
        ABC_NAME: ABC,
        CLUSTER_NAME: cluster_router(dev_cases),
        THRESHOLD_NAME: threshold_router(dev_cases),
        RECOMMENDED: oc.routing.load_cascades(PRESET),
    }


def held_out_table(held: Mapping[str, HeldOut]) -> str:
    """Cross-validated figures per candidate."""
    lines = [f"{'candidate':52} {'gap':>7} {'p10':>7} {'sd':>5} {'cost/strong':>11} {'p90':>6}"]
    for name, figures in held.items():
        lines.append(
            f"{name[:52]:52} {figures.mean_gap * 100:+6.2f}pt {figures.gap_p10 * 100:+6.2f}pt "
            f"{figures.gap_sd * 100:5.2f} {figures.mean_ratio:11.3f} {figures.ratio_p90:6.3f}"
        )
    return "\n".join(lines)


def recommend(held: Mapping[str, HeldOut], candidates: Sequence[str]) -> str:
    """The candidate with the best 10th-percentile gap (then mean gap) within the cost goal;
    the cheapest one when none is within it."""
    within = [c for c in candidates if held[c].mean_ratio <= GOAL_RATIO]
    if not within:
        return min(candidates, key=lambda c: held[c].mean_ratio)
    return max(within, key=lambda c: (held[c].gap_p10, held[c].mean_gap))


def candidate_name(first: str, budget: float) -> str:
    """How a learned candidate is named in the tables."""
    return f"learned cascades ({first}), fitted at {budget:.1%}"


def cross_validation(
    cases: Sequence[Case], repeats: int
) -> tuple[dict[str, HeldOut], str, tuple[str, float]]:
    """Cross-validate every candidate and baseline; the recommended candidate."""
    configs = {candidate_name(f, b): (f, b) for f in FIRSTS for b in BUDGETS}
    fitters = {name: learned_fitter(*config) for name, config in configs.items()}
    held = cross_validate_fitters(
        cases, {**fitters, **baseline_fitters()}, strong=STRONG, repeats=repeats
    )
    pick = recommend(held, list(configs))
    return held, pick, configs[pick]


def sweeps(cases: Sequence[Case], first: str, repeats: int) -> dict[str, list[tuple[float, float]]]:
    """Held-out (mean cost ratio, mean accuracy) of the learned cascades and the threshold
    router, fitted at each budget of SWEEP."""
    fitters: dict[str, Fitter] = {}
    for budget in SWEEP:
        fitters[f"learned {budget}"] = learned_fitter(first, budget)

        def threshold(train: Sequence[Case], budget: float = budget) -> Callable[[Case], Replayed]:
            router = threshold_router(train, budget)
            return single_model(
                lambda prompt: STRONG if router.needed(prompt) >= router.threshold else WEAK
            )

        fitters[f"threshold {budget}"] = threshold
    held = cross_validate_fitters(cases, fitters, strong=STRONG, repeats=repeats, seed=1)
    curves: dict[str, list[tuple[float, float]]] = {
        "learned cascades, held out": [],
        "threshold router, held out": [],
    }
    for name, figures in held.items():
        curve = (
            "learned cascades, held out"
            if name.startswith("learned")
            else ("threshold router, held out")
        )
        curves[curve].append((figures.mean_ratio, figures.accuracy))
    return curves


def write_preset(
    cases: Sequence[Case], config: tuple[str, float], held: HeldOut, folder: Path
) -> None:
    """Fit the recommended configuration on the whole dev split and write the bundled preset."""
    first, budget = config
    fitted = fit_learned(cases, first, budget)
    oc.routing.dump_cascades(
        fitted.cascades,
        PRESET,
        default=fitted.default,
        about={
            "fitted_on": f"{folder.name} dev split, {len(cases)} queries",
            "by": "python benchmarks/routing.py --fit",
            "strong": STRONG,
            "settings": {"first": FIRSTS[first], "max_cost_ratio": budget, **FIT_SETTINGS},
            "chosen_by": "best 10th-percentile accuracy gap to the strong model within a "
            f"mean cost ratio of {GOAL_RATIO}, by repeated two-fold cross-validation on dev",
            "cv_gap_mean": round(held.mean_gap, 4),
            "cv_gap_p10": round(held.gap_p10, 4),
            "cv_cost_ratio": round(held.mean_ratio, 4),
            "dev_accuracy": round(fitted.accuracy, 4),
            "dev_cost_ratio": round(fitted.cost_usd / fitted.strong_cost_usd, 4),
        },
    )
    print(
        f"wrote {PRESET.relative_to(ROOT)}: {first} at {budget:.1%}; dev accuracy "
        f"{fitted.accuracy:.1%} at {fitted.cost_usd / fitted.strong_cost_usd:.1%} of {STRONG}'s"
    )


def live_cross_validation(
    recorded: RecordedConstellation,
    queries: Sequence[RecordedQuery],
    cases: Sequence[Case],
    config: tuple[str, float],
    models: Sequence[str],
) -> dict[str, oc.NodeResult]:
    """Fit on one half, run the fitted cascades live on the other, both ways round."""
    by_qid = dict(zip((q.qid for q in queries), cases, strict=True))
    tasks = sorted({q.task for q in queries})
    halves: tuple[list[RecordedQuery], list[RecordedQuery]] = ([], [])
    for task in tasks:
        group = [q for q in queries if q.task == task]
        halves[0].extend(group[::2])
        halves[1].extend(group[1::2])
    nodes: dict[str, oc.NodeResult] = {}
    for train, test in (halves, halves[::-1]):
        fitted = fit_learned([by_qid[q.qid] for q in train], *config)
        policy = oc.routing.PerAgent(dict(fitted.cascades), default=fitted.default)
        nodes |= run_policy(recorded, test, policy, models)
    return nodes


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; print the tables and the RESULT line; return the RESULT figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="folder of the recorded data set"
    )
    parser.add_argument("--split", choices=("dev", "test"), default="dev")
    parser.add_argument(
        "--limit", type=int, default=None, help="only the first N queries (all types mixed)"
    )
    parser.add_argument(
        "--fit", action="store_true", help="refit the bundled preset on dev and write it"
    )
    parser.add_argument(
        "--faults",
        type=float,
        default=0.0,
        help="fail this share of the recorded answers (half empty, half server errors)",
    )
    parser.add_argument(
        "--cv-repeats", type=int, default=20, help="random halvings of the cross-validation"
    )
    parser.add_argument(
        "--svg",
        type=Path,
        default=None,
        help="write the Pareto picture here (default: "
        "docs/images/routing-pareto-SPLIT.svg on a full split, none on a slice)",
    )
    args = parser.parse_args(argv)
    if args.fit and (args.split != "dev" or args.limit or args.faults):
        parser.error("--fit fits on the whole dev split, without faults")
    started = time.perf_counter()
    catalogue = json.loads((args.data / "models.json").read_text(encoding="utf-8"))
    models = [m for m in catalogue["models"] if m not in EXCLUDED]
    small = frozenset(m for m in models if catalogue["models"][m].get("tier") != "large")
    recorded = RecordedConstellation.load(args.data, args.split, models=models)
    if args.faults:
        faulty = recorded.with_faults(args.faults)
        recorded.close()
        recorded = faulty
    queries = interleave(recorded.queries, args.limit)
    print(f"{args.split}: {len(queries)} queries x {len(models)} models ({args.data})")
    if args.split == "dev":
        dev, dev_queries = recorded, queries
    else:  # the baselines are fitted on dev, as the preset was
        dev = RecordedConstellation.load(args.data, "dev", models=models)
        dev_queries = list(dev.queries)
    dev_cases = cases_of(dev, dev_queries, load_correct(args.data, "dev"), models)

    figures: dict[str, Any] = {}
    if args.split == "dev":
        held, pick, config = cross_validation(dev_cases, args.cv_repeats)
        goal = held[pick].gap_p10 >= 0 and held[pick].mean_ratio <= GOAL_RATIO
        print(f"\ncross-validated on dev ({len(held[pick].gaps)} held-out halves, replayed):")
        print(held_out_table(held))
        print(
            f"recommended by cross-validation: {pick} (goal: 10th-percentile gap >= 0 at a mean "
            f"cost ratio <= {GOAL_RATIO}: {'met' if goal else 'not met'})"
        )
        figures |= {
            "cv_recommended": pick,
            "cv_accuracy": round(held[pick].accuracy, 4),
            "cv_strong_accuracy": round(held[pick].strong_accuracy, 4),
            "cv_gap": round(held[pick].mean_gap, 4),
            "cv_gap_p10": round(held[pick].gap_p10, 4),
            "cv_gap_sd": round(held[pick].gap_sd, 4),
            "cv_cost_ratio": round(held[pick].mean_ratio, 4),
            "cv_cost_ratio_p90": round(held[pick].ratio_p90, 4),
            "cv_goal_met": goal,
        }
        if args.fit:
            write_preset(dev_cases, config, held[pick], args.data)

    measured = {
        name: run_policy(recorded, queries, policy, models)
        for name, policy in policies(dev_cases).items()
    }
    # Read after every policy has run: scoring only.
    correct = load_correct(args.data, args.split)
    if args.faults:  # a failed recorded answer is not right, whatever the label says
        failed = {(q.qid, m) for q in queries for m, a in q.answers.items() if not a.text}
        correct = {
            qid: {m: ok and (qid, m) not in failed for m, ok in row.items()}
            for qid, row in correct.items()
        }
    rows = [score(name, nodes, correct, small) for name, nodes in measured.items()]
    cases = cases_of(recorded, queries, correct, models)
    best = oracle(cases)
    strong, weak = rows[0], rows[1]
    print()
    print(table([*rows, best], strong, weak, best))
    if args.split == "dev":
        print(f"fitted on these queries (in sample): {', '.join(FITTED)}; held out, see above")
    failures = [(row.name, qid) for row in rows for qid in row.failed]
    print(f"\nfailed queries (scored wrong, their cost counted): {len(failures)}")
    for name, qid in failures:
        print(f"  {name}: {qid}: {measured[name][qid].error}")

    recommended = next(r for r in rows if r.name == RECOMMENDED)
    svg = args.svg or (
        None if args.limit else ROOT / "docs" / "images" / f"routing-pareto-{args.split}.svg"
    )
    if args.split == "dev":
        curves = sweeps(dev_cases, config[0], 1)
        for name, curve in curves.items():
            print(f"APGR of the {name} (cost sweep): {average_recovered(curve, weak, strong):.2f}")
        live = score(
            "cv", live_cross_validation(recorded, queries, cases, config, models), correct, small
        )
        print(
            f"cross-validated live (fit on one half, run on the other through Orchestra): "
            f"accuracy {live.accuracy:.1%} vs {STRONG} {strong.accuracy:.1%} at "
            f"{live.cost / strong.cost:.1%} of its cost"
        )
        figures |= {
            "cv_live_accuracy": round(live.accuracy, 4),
            "cv_live_cost_ratio": round(live.cost / strong.cost, 4),
        }
    else:
        curves = {}
    if svg is not None:
        points = {row.name: (row.cost / strong.cost, row.accuracy) for row in [*rows, best]}
        if args.split == "dev":  # fitted on dev: their held-out figures, not in-sample ones
            for name, held_as in (
                (CLUSTER_NAME, CLUSTER_NAME),
                (THRESHOLD_NAME, THRESHOLD_NAME),
                (RECOMMENDED, pick),
            ):
                del points[name]
                points[f"{name}, held out"] = (held[held_as].mean_ratio, held[held_as].accuracy)
        title = f"Routing on the recorded {args.split} split ({len(queries)} queries)"
        highlight = next(name for name in points if name.startswith(RECOMMENDED))
        pareto_svg(svg, title, points, curves, highlight=highlight, bound=best.name)
        print(f"wrote {svg}")

    figures = {
        "policy": RECOMMENDED,
        "accuracy": round(recommended.accuracy, 4),
        "cost_per_query_usd": round(recommended.cost, 8),
        "cost_ratio": round(recommended.cost / strong.cost, 4),
        "calls_per_query": round(recommended.calls, 3),
        "pgr": round(recovered(recommended.accuracy, weak, strong), 3),
        "small_share_calls": round(recommended.small_calls, 3),
        "small_share_answers": round(recommended.small_answers, 3),
        "small_share_cost": round(recommended.small_cost, 3),
        "strong_model": STRONG,
        "strong_accuracy": round(strong.accuracy, 4),
        "strong_cost_per_query_usd": round(strong.cost, 8),
        "oracle_accuracy": round(best.accuracy, 4),
        "oracle_cost_per_query_usd": round(best.cost, 8),
        "split": args.split,
        "queries": len(queries),
        "failed_queries": len(failures),
        **figures,
    }
    if dev is not recorded:
        dev.close()
    recorded.close()
    print(f"\n{time.perf_counter() - started:.1f} s")
    print("RESULT " + json.dumps(figures))
    return figures


if __name__ == "__main__":
    main(sys.argv[1:])
