"""RecordedConstellation: recorded answers, tokens and costs, replayed through litellm."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

import orchestra as oc
from orchestra.testing import RecordedAnswer, RecordedConstellation, RecordedQuery

pytestmark = pytest.mark.anyio

PROMPT = "What is {6 * 7}?"  # braces: the plan must double them to send this exact prompt


def write_split(folder: Path, split: str = "dev") -> None:
    """A two-model, two-query recording in the data set's file layout."""
    models = {
        "small": {"input_usd_per_mtok": 0.1, "output_usd_per_mtok": 0.2,
                  "published_zeroeval_accuracy_pct": {"gsm": 50.0, "crux": 30.0}},
        "large": {"input_usd_per_mtok": 2.0, "output_usd_per_mtok": 8.0},
    }  # fmt: skip
    rows = [
        {"qid": "q1", "task": "gsm", "prompt": PROMPT, "reference": "42",
         "models": {"small": {"correct": 0, "input_tokens": 10, "output_tokens": 5},
                    "large": {"correct": 1, "input_tokens": 10, "output_tokens": 20}}},
        {"qid": "q2", "task": "crux", "prompt": "f(1)?", "reference": "2",
         "models": {"small": {"correct": 1, "input_tokens": 4, "output_tokens": 3},
                    "large": {"correct": 1, "input_tokens": 4, "output_tokens": 6}}},
    ]  # fmt: skip
    outputs = [
        {"qid": "q1", "outputs": {"small": '{"answer": "41"}', "large": '{"answer": "42"}'}},
        {"qid": "q2", "outputs": {"small": '{"answer": "2"}', "large": ""}},
    ]
    (folder / "models.json").write_text(json.dumps({"models": models}), encoding="utf-8")
    lines = "\n".join(json.dumps(r) for r in rows)
    (folder / f"{split}.jsonl").write_text(lines, encoding="utf-8")
    with gzip.open(folder / f"responses_{split}.jsonl.gz", "wt", encoding="utf-8") as f:
        f.write("\n".join(json.dumps(o) for o in outputs))


async def test_load_reads_prompts_answers_tokens_and_prices(tmp_path: Path) -> None:
    """Loading keeps prompts, answers and token counts, prices and qualities — no labels."""
    write_split(tmp_path)
    recorded = RecordedConstellation.load(tmp_path)
    assert [q.qid for q in recorded.queries] == ["q1", "q2"]
    assert recorded.queries[0].answers["large"] == RecordedAnswer('{"answer": "42"}', 10, 20)
    specs = recorded.constellation()
    assert specs.names == ["small", "large"]
    assert (specs["large"].input_cost, specs["large"].output_cost) == (2.0, 8.0)
    assert specs["small"].quality == 0.4 and specs["large"].quality == 0.5
    assert not hasattr(recorded.queries[0], "reference")
    recorded.close()


async def test_models_answer_as_recorded_at_recorded_cost(tmp_path: Path) -> None:
    """A call returns the asked model's recorded text; cost is its tokens at list prices."""
    write_split(tmp_path)
    recorded = RecordedConstellation.load(tmp_path, models=["large"])
    orch = oc.Orchestra(
        models=recorded.constellation(),
        agents=[oc.Agent(name="gsm")],
        router=oc.routing.Fixed("large"),
    )
    escaped = PROMPT.replace("{", "{{").replace("}", "}}")
    result = await orch.execute(oc.Plan(tasks=[oc.Task(id="t", agent="gsm", prompt=escaped)]))
    node = result.nodes["t"]
    assert node.output == '{"answer": "42"}'
    assert (node.usage.input_tokens, node.usage.output_tokens) == (10, 20)
    assert node.cost_usd == pytest.approx((10 * 2.0 + 20 * 8.0) / 1e6)
    recorded.close()


async def test_unrecorded_prompts_and_empty_answers_fail_fast(tmp_path: Path) -> None:
    """A prompt nobody recorded fails with a final 400; an empty recorded answer is replayed
    as an empty reply, a model error — each after one request (a replay never retries)."""
    write_split(tmp_path)
    recorded = RecordedConstellation.load(tmp_path)
    orch = oc.Orchestra(models=recorded.constellation(), router=oc.routing.Fixed("large"))
    for prompt, status, why in (("never asked", 400, "bad request"), ("f(1)?", None, "empty")):
        plan = oc.Plan(tasks=[oc.Task(id="t", agent="assistant", prompt=prompt)])
        with pytest.raises(oc.NodeFailed, match=why) as info:
            await orch.execute(plan)
        assert isinstance(info.value.__cause__, oc.ModelError)
        assert info.value.__cause__.status_code == status
        assert len(info.value.result.nodes["t"].attempts) == 1
    assert recorded.query("f(1)?") is recorded.queries[1]
    assert recorded.query("never asked") is None
    recorded.close()


async def test_load_errors_name_the_folder_and_the_models(tmp_path: Path) -> None:
    """Missing files and unknown models are ConfigErrors that say where and which."""
    with pytest.raises(oc.ConfigError, match="cannot read the recorded dev split"):
        RecordedConstellation.load(tmp_path)
    write_split(tmp_path)
    with pytest.raises(oc.ConfigError, match=r"models not in .*: ghost"):
        RecordedConstellation.load(tmp_path, models=["ghost"])
    recorded = RecordedConstellation.load(tmp_path)
    with pytest.raises(oc.ConfigError, match="no recorded answers for model"):
        recorded.constellation(["ghost"])
    recorded.close()


async def test_every_answering_model_needs_a_price() -> None:
    """A recording with a model that has no price is refused."""
    query = RecordedQuery("q", "t", "p", {"m": RecordedAnswer("x", 1, 1)})
    with pytest.raises(oc.ConfigError, match="no prices for recorded model"):
        RecordedConstellation([query], prices={})


async def test_with_faults_replaces_a_share_of_answers_with_failures() -> None:
    """A faulty copy fails a seeded share of answers, half empty and half 500s; the rest and
    the original recording are unchanged; a bad share is refused."""
    queries = [
        RecordedQuery(f"q{i}", "t", f"p{i}", {m: RecordedAnswer("x", 3, 4) for m in "abcd"})
        for i in range(500)
    ]
    recorded = RecordedConstellation(queries, prices=dict.fromkeys("abcd", (1.0, 1.0)))
    faulty = recorded.with_faults(0.1, seed=3)
    answers = [a for q in faulty.queries for a in q.answers.values()]
    empty = [a for a in answers if a.text == "" and a.status is None]
    errors = [a for a in answers if a.status == 500]
    assert 150 < len(empty) + len(errors) < 250 and len(empty) > 50 and len(errors) > 50
    assert all(a == RecordedAnswer("x", 3, 4) for a in answers if a.text)
    assert recorded.with_faults(0.1, seed=3).queries == faulty.queries
    assert all(a.text == "x" for q in recorded.queries for a in q.answers.values())
    with pytest.raises(oc.ConfigError, match="between 0 and 1"):
        recorded.with_faults(2.0)
    recorded.close()
    faulty.close()
