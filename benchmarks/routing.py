"""Routing policies on recorded answers of 25 real models: accuracy and cost, measured live.

Every policy runs through the normal Orchestra path — one task per query (its agent is the
query's type: gsm, math-l5, crux), all queries of a split in one plan — on a
`RecordedConstellation`, which answers each call as the asked model really did, with its token
counts (cost = tokens × list prices). The benchmark then scores each node's answer with the
recorded `correct` flag of the model that gave it. Labels are read only to score (and, on the
dev split, to fit and cross-validate). o1-mini is left out (its cost is a lower bound).

Baselines measured in the same run: the strong model (gpt-4o) alone, single cheap models, plain
agreement cascades, and the oracle (the cheapest model that was right, per query: a bound, not
a policy). The recommended policy is the bundled preset `load_cascades("zeroeval")`: a cascade
per query type fitted on dev (`--fit` refits it; dev only). On dev the benchmark also
cross-validates the fitting: cascades fitted on half of dev, scored on the other half.

Run: python benchmarks/routing.py [--data DIR] [--split dev|test] [--limit N] [--fit]
The last line is `RESULT {json}` for the recommended policy.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ORCHESTRA_JOURNAL", "off")  # measure routing, not journals

import orchestra as oc
from orchestra.checks import Agree, Vote, answer_key
from orchestra.routing import Cascade, Stage, cross_validate
from orchestra.routing.fit import Outcome, Query, fit_cascades
from orchestra.testing import RecordedConstellation, RecordedQuery

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "routing" / "zeroeval"
PRESET = ROOT / "orchestra" / "routing" / "presets" / "zeroeval.json"
STRONG = "gpt-4o-2024-08-06"
EXCLUDED = frozenset({"o1-mini-2024-09-12"})  # hidden reasoning tokens: cost is a lower bound
DS, MINI, FLASH = "deepseek-v2.5-0908", "gpt-4o-mini-2024-07-18", "gemini-1.5-flash"
RECOMMENDED = "learned cascades (preset)"
# The learned first stages: per task, the cheap models whose answers the scorer reads (the
# cheapest strong-enough ones there; searching subsets on dev overfitted it). The budget keeps
# a margin under the 0.25 target: held-out cost lands a little above the fitted one, and on
# ~2,000 queries its ratio varies by about 0.011 (bootstrap over dev).
FIRST = {"gsm": (FLASH, MINI), "crux": (DS, MINI), "math-l5": (FLASH, DS, MINI)}
FIT_SETTINGS: dict[str, Any] = {"max_cost_ratio": 0.235, "pool": 4, "cheap_ratio": 0.08, "c": 0.3}


def fit(groups: Mapping[str, Sequence[Query]]) -> oc.routing.fit.Fit:
    """The recommended fitting: learned first stages for the known tasks, agreement elsewhere."""
    first = {task: models for task, models in FIRST.items() if task in groups}
    return fit_cascades(groups, strong=STRONG, first=first, **FIT_SETTINGS)


@dataclass(frozen=True)
class Label:
    """What scoring needs about one query: who was right, and the reference answer."""

    correct: Mapping[str, bool]
    reference: str


@dataclass(frozen=True)
class Row:
    """One policy's figures over the queries."""

    name: str
    accuracy: float
    cost: float
    """Mean USD per query."""
    calls: float
    """Mean model calls per query."""
    failed: tuple[str, ...] = ()
    """Queries whose node failed (scored wrong)."""


def load_labels(folder: Path, split: str) -> dict[str, Label]:
    """The recorded correctness of every model on every query (for scoring only)."""
    labels: dict[str, Label] = {}
    for line in (folder / f"{split}.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            correct = {m: bool(f["correct"]) for m, f in row["models"].items()}
            labels[str(row["qid"])] = Label(correct, str(row.get("reference", "")))
    return labels


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


def score(name: str, nodes: Mapping[str, oc.NodeResult], labels: Mapping[str, Label]) -> Row:
    """Accuracy by the recorded flag of the model whose answer each node kept; a failed node
    is wrong, and what it spent is counted."""
    right = [
        n.ok and n.model is not None and labels[qid].correct.get(n.model, False)
        for qid, n in nodes.items()
    ]
    count = len(nodes)
    return Row(
        name,
        sum(right) / count,
        sum(n.cost_usd for n in nodes.values()) / count,
        sum(n.usage.calls for n in nodes.values()) / count,
        failed=tuple(sorted(qid for qid, n in nodes.items() if not n.ok)),
    )


def outcomes(
    recorded: RecordedConstellation,
    queries: Sequence[RecordedQuery],
    labels: Mapping[str, Label],
    models: Sequence[str],
) -> dict[str, list[Query]]:
    """Each query's recorded outcome per model (key, correct, cost), grouped by type."""
    specs = recorded.constellation(models)
    groups: dict[str, list[Query]] = {}
    for query in queries:
        per_model: dict[str, Outcome] = {}
        for model in models:
            answer = query.answers.get(model)
            if answer is None:
                continue
            cost = specs[model].cost(
                input_tokens=answer.input_tokens, output_tokens=answer.output_tokens
            )
            key = answer_key(answer.text) if answer.text else None
            right = labels[query.qid].correct.get(model, False)
            per_model[model] = Outcome(key, right, cost, answer.output_tokens)
        groups.setdefault(query.task, []).append(per_model)
    return groups


def oracle(groups: Mapping[str, Sequence[Query]]) -> Row:
    """The cheapest model that was right, per query (the strong model's cost when none was)."""
    every = [q for qs in groups.values() for q in qs]
    right = [min((o.cost_usd for o in q.values() if o.correct), default=None) for q in every]
    cost = [c if c is not None else 0.0 for c in right]
    return Row(
        "oracle (cheapest right model)",
        sum(c is not None for c in right) / len(every),
        sum(cost) / len(every),
        1.0,
    )


def policies() -> dict[str, oc.RoutingPolicy]:
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
        RECOMMENDED: oc.routing.load_cascades(PRESET),
    }


def halves(
    queries: Sequence[RecordedQuery], seed: int
) -> tuple[list[RecordedQuery], list[RecordedQuery]]:
    """A split of the queries in two halves, each type split evenly."""
    rng = random.Random(seed)
    first: list[RecordedQuery] = []
    second: list[RecordedQuery] = []
    for task in sorted({q.task for q in queries}):
        group = [q for q in queries if q.task == task]
        rng.shuffle(group)
        first += group[: len(group) // 2]
        second += group[len(group) // 2 :]
    return first, second


def live_cross_validation(
    recorded: RecordedConstellation,
    queries: Sequence[RecordedQuery],
    labels: Mapping[str, Label],
    models: Sequence[str],
) -> dict[str, oc.NodeResult]:
    """Fit on one half, run the fitted cascades live on the other, both ways round."""
    nodes: dict[str, oc.NodeResult] = {}
    for train, test in (halves(queries, 0), halves(queries, 0)[::-1]):
        groups = outcomes(recorded, train, labels, models)
        fitted = fit(groups)
        policy = oc.routing.PerAgent(dict(fitted.cascades), default=fitted.default)
        nodes |= run_policy(recorded, test, policy, models)
    return nodes


def fit_preset(
    recorded: RecordedConstellation,
    queries: Sequence[RecordedQuery],
    labels: Mapping[str, Label],
    models: Sequence[str],
    folder: Path,
) -> None:
    """Fit the cascades on the whole dev split and write the bundled preset."""
    fitted = fit(outcomes(recorded, queries, labels, models))
    oc.routing.dump_cascades(
        fitted.cascades,
        PRESET,
        default=fitted.default,
        about={
            "fitted_on": f"{folder.name} dev split, {len(queries)} queries",
            "by": "python benchmarks/routing.py --fit",
            "strong": STRONG,
            "settings": {**FIT_SETTINGS, "first": FIRST},
            "dev_accuracy": round(fitted.accuracy, 4),
            "dev_cost_ratio": round(fitted.cost_usd / fitted.strong_cost_usd, 4),
        },
    )
    print(
        f"wrote {PRESET.relative_to(ROOT)}: dev accuracy {fitted.accuracy:.1%} at "
        f"{fitted.cost_usd / fitted.strong_cost_usd:.1%} of {STRONG}'s cost"
    )


def table(rows: Sequence[Row], strong: Row, best: Row) -> str:
    """The figures of every policy, against the strong model and the oracle."""
    head = f"{'accuracy':>8} {'µ$/query':>9} {'cost/strong':>11} {'calls':>6} {'to oracle':>9}"
    lines = [f"{'policy':44} {head}"]
    for row in rows:
        lines.append(
            f"{row.name[:44]:44} {row.accuracy:8.1%} {row.cost * 1e6:9,.0f} "
            f"{row.cost / strong.cost:11.3f} {row.calls:6.2f} "
            f"{(best.accuracy - row.accuracy) * 100:+7.1f}pt"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; print the table and the RESULT line; return the RESULT figures."""
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
        "--cv-repeats",
        type=int,
        default=10,
        help="random halvings of the replayed cross-validation",
    )
    args = parser.parse_args(argv)
    if args.fit and args.split != "dev":
        parser.error("--fit fits on dev only")
    started = time.perf_counter()
    catalogue = json.loads((args.data / "models.json").read_text(encoding="utf-8"))
    models = [m for m in catalogue["models"] if m not in EXCLUDED]
    recorded = RecordedConstellation.load(args.data, args.split, models=models)
    if args.faults:
        faulty = recorded.with_faults(args.faults)
        recorded.close()
        recorded = faulty
    queries = interleave(recorded.queries, args.limit)
    print(f"{args.split}: {len(queries)} queries x {len(models)} models ({args.data})")

    if args.fit:
        fit_preset(recorded, queries, load_labels(args.data, "dev"), models, args.data)

    measured = {
        name: run_policy(recorded, queries, policy, models) for name, policy in policies().items()
    }
    labels = load_labels(args.data, args.split)  # read after every policy has run: scoring only
    rows = [score(name, nodes, labels) for name, nodes in measured.items()]
    groups = outcomes(recorded, queries, labels, models)
    best = oracle(groups)
    strong = rows[0]
    print(table([*rows, best], strong, best))
    failures = [(row.name, qid) for row in rows for qid in row.failed]
    print(f"\nfailed queries (scored wrong, their cost counted): {len(failures)}")
    for name, qid in failures:
        print(f"  {name}: {qid}: {measured[name][qid].error}")
    recommended = next(r for r in rows if r.name == RECOMMENDED)
    figures: dict[str, Any] = {
        "policy": RECOMMENDED,
        "accuracy": round(recommended.accuracy, 4),
        "cost_per_query_usd": round(recommended.cost, 8),
        "cost_ratio": round(recommended.cost / strong.cost, 4),
        "calls_per_query": round(recommended.calls, 3),
        "strong_model": STRONG,
        "strong_accuracy": round(strong.accuracy, 4),
        "strong_cost_per_query_usd": round(strong.cost, 8),
        "oracle_accuracy": round(best.accuracy, 4),
        "oracle_cost_per_query_usd": round(best.cost, 8),
        "split": args.split,
        "queries": len(queries),
        "failed_queries": len(failures),
    }
    if args.split == "dev":
        first = {task: models for task, models in FIRST.items() if task in groups}
        cv = cross_validate(
            groups, strong=STRONG, repeats=args.cv_repeats, first=first, **FIT_SETTINGS
        )
        print(
            f"\ncross-validated fitting (replayed, {cv.splits} half-splits of these queries): "
            f"accuracy {cv.accuracy:.1%} vs {STRONG} {cv.strong_accuracy:.1%} "
            f"(gap {(cv.accuracy - cv.strong_accuracy) * 100:+.1f}pt, sd {cv.gap_sd * 100:.1f}pt) "
            f"at {cv.cost_ratio:.1%} of its cost"
        )
        held = score("cv", live_cross_validation(recorded, queries, labels, models), labels)
        print(
            f"cross-validated fitting (live, fit on one half, run on the other, both ways): "
            f"accuracy {held.accuracy:.1%} vs {STRONG} {strong.accuracy:.1%} at "
            f"{held.cost / strong.cost:.1%} of its cost"
        )
        figures |= {
            "cv_accuracy": round(cv.accuracy, 4),
            "cv_strong_accuracy": round(cv.strong_accuracy, 4),
            "cv_gap_sd": round(cv.gap_sd, 4),
            "cv_cost_ratio": round(cv.cost_ratio, 4),
            "cv_live_accuracy": round(held.accuracy, 4),
            "cv_live_cost_ratio": round(held.cost / strong.cost, 4),
        }
    recorded.close()
    print(f"\n{time.perf_counter() - started:.1f} s")
    print("RESULT " + json.dumps(figures))
    return figures


if __name__ == "__main__":
    main(sys.argv[1:])
