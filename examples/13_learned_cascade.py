"""A learned cascade: fit a `Scored` check on past answers, then route new questions with it.

Two cheap models and a strong one have answered 120 past questions (made up here, seeded, so
it runs offline): the cheap ones are right most of the time, and when they ramble (many output
tokens) they are often wrong. `fit_cascades(..., first=...)` fits a scorer on the first 80 —
which cheap answer to trust, and how much — and the escalation threshold that spends at most
30% of the strong model's cost. The last 40 then run through Orchestra on a
`RecordedConstellation` (the recorded answers replayed through litellm), and each node's route
says what the check saw.
"""

from __future__ import annotations

import json
import random

import anyio

import orchestra as oc
from orchestra.routing.fit import Outcome, Query
from orchestra.testing import RecordedAnswer, RecordedConstellation, RecordedQuery

PRICES = {"cheap-a": (0.1, 0.3), "cheap-b": (0.15, 0.6), "strong": (2.5, 10.0)}  # $ per 1M


def history(count: int, seed: int = 7) -> list[tuple[RecordedQuery, dict[str, bool]]]:
    """Past questions: each model's answer and token count, and whether it was right."""
    rng = random.Random(seed)
    past: list[tuple[RecordedQuery, dict[str, bool]]] = []
    for index in range(count):
        truth = str(rng.randint(10, 99))
        answers: dict[str, RecordedAnswer] = {}
        right: dict[str, bool] = {}
        for model, skill in (("cheap-a", 0.7), ("cheap-b", 0.8), ("strong", 0.95)):
            ok = rng.random() < skill
            tokens = rng.randint(80, 200) if ok else rng.randint(150, 600)  # wrong: rambling
            said = truth if ok else str(rng.randint(10, 99))
            answers[model] = RecordedAnswer(json.dumps({"answer": said}), 50, tokens)
            right[model] = said == truth
        past.append((RecordedQuery(f"q{index}", "quiz", f"Question {index}?", answers), right))
    return past


def outcomes(past: list[tuple[RecordedQuery, dict[str, bool]]]) -> list[Query]:
    """What fitting reads: each model's answer key, correctness, cost and output tokens."""
    rows: list[Query] = []
    for query, right in past:
        row: dict[str, Outcome] = {}
        for model, answer in query.answers.items():
            price_in, price_out = PRICES[model]
            cost = (answer.input_tokens * price_in + answer.output_tokens * price_out) / 1e6
            key = oc.checks.answer_key(answer.text)
            row[model] = Outcome(key, right[model], cost, answer.output_tokens)
        rows.append(row)
    return rows


def main() -> None:
    past = history(120)
    fitted = oc.routing.fit_cascades(
        {"quiz": outcomes(past[:80])},
        strong="strong",
        first={"quiz": ("cheap-a", "cheap-b")},
        max_cost_ratio=0.3,
    )
    cascade = fitted.cascades["quiz"]
    check = cascade.stages[0].check
    assert isinstance(check, oc.routing.Scored)
    print(f"fitted on 80 questions: accept when trust >= {check.threshold:.2f}")
    print(
        f"  {fitted.accuracy:.0%} right at {fitted.cost_usd / fitted.strong_cost_usd:.0%} of "
        f"the strong model's cost (strong alone: {fitted.strong_accuracy:.0%})"
    )

    fresh = past[80:]
    recorded = RecordedConstellation([q for q, _ in fresh], prices=PRICES)
    orch = oc.Orchestra(
        models=recorded.constellation(),
        agents=[oc.Agent(name="quiz")],
        router=cascade,
        journal=None,
    )
    plan = oc.Plan(tasks=[oc.Task(id=q.qid, agent="quiz", prompt=q.prompt) for q, _ in fresh])
    result = anyio.run(orch.execute, plan)
    right = sum(labels.get(result.nodes[q.qid].model or "", False) for q, labels in fresh)
    strong = sum(labels["strong"] for _, labels in fresh)
    escalated = sum(result.nodes[q.qid].model == "strong" for q, _ in fresh)
    print(f"\n40 new questions: {right} right (strong alone: {strong}), {escalated} escalated")
    for query, _ in fresh[:4]:
        node = result.nodes[query.qid]
        print(f"  {query.qid}: {node.model:8s} {node.route}")
    recorded.close()


if __name__ == "__main__":
    main()
