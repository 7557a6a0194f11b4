"""Real small models end to end: accounting, cut streams, tools, structured output, planning
by a 135M boss, and a resume after the server was killed mid-run."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

import orchestra as oc
from orchestra.events import ModelCalled, NodeFinished, PlanRejected, RetryScheduled
from orchestra.testing.local_models import LocalServer, LocalServers, start_server

pytestmark = [pytest.mark.real_model, pytest.mark.slow, pytest.mark.anyio]

SHORT = {"max_tokens": 24}


def _server_answer(server: LocalServer, messages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The server's own answer to `messages`, asked directly (greedy, as the specs ask)."""
    body = {
        "model": server.model.name,
        "messages": list(messages),
        "temperature": 0.0,
        "seed": 0,
        **SHORT,
    }
    answer = httpx.post(f"{server.url}/chat/completions", json=body, timeout=120)
    answer.raise_for_status()
    data: dict[str, Any] = answer.json()
    return data


async def test_hand_written_plan_costs_exactly_what_the_server_counted(
    local_servers: LocalServers,
) -> None:
    """A plan over two real models: each node's tokens are the server's own counts, and its
    cost those counts times the spec's prices."""
    smol = local_servers["smollm2"].spec(
        name="smol", input_cost=1.0, output_cost=2.0, litellm_params=SHORT
    )
    gemma = local_servers["gemma3"].spec(
        name="gemma", input_cost=3.0, output_cost=5.0, litellm_params=SHORT
    )
    agents = [
        oc.Agent(name="facts", model="smol", instructions="Answer in one short sentence."),
        oc.Agent(name="poet", model="gemma"),
    ]
    plan = oc.Plan(
        tasks=[
            oc.Task(id="fact", agent="facts", prompt="Name one planet of the solar system."),
            oc.Task(id="line", agent="poet", prompt="A poem about {fact}:", after=["fact"]),
        ]
    )
    result = await oc.Orchestra(models=[smol, gemma], agents=agents).execute(plan)
    assert result.status == "succeeded"
    fact = result.nodes["fact"]
    asked = {
        "fact": (
            local_servers["smollm2"],
            smol,
            [
                {"role": "system", "content": "Answer in one short sentence."},
                {"role": "user", "content": "Name one planet of the solar system."},
            ],
        ),
        "line": (
            local_servers["gemma3"],
            gemma,
            [{"role": "user", "content": f"A poem about {fact.output}:"}],
        ),
    }
    total = 0.0
    for task_id, (server, spec, messages) in asked.items():
        counted = _server_answer(server, messages)["usage"]
        node = result.nodes[task_id]
        assert (node.usage.input_tokens, node.usage.output_tokens) == (
            counted["prompt_tokens"],
            counted["completion_tokens"],
        )
        cost = spec.cost(
            input_tokens=counted["prompt_tokens"], output_tokens=counted["completion_tokens"]
        )
        assert node.cost_usd == pytest.approx(cost, rel=1e-12)
        total += cost
    assert result.usage.cost_usd == pytest.approx(total, rel=1e-12)


async def test_streams_at_concurrency_two_never_keep_a_cut_answer(
    local_servers: LocalServers,
) -> None:
    """Two streams at once make the server cut one (a clean end, no finish reason): the cut
    stream is retried, and every answer kept is the whole answer."""
    server = local_servers["smollm2"]
    spec = server.spec(
        name="smol",
        stream=True,
        max_concurrency=2,
        retry=oc.RetryPolicy(max_retries=8, backoff=0.2, max_backoff=1.0),
        litellm_params=SHORT,
    )
    prompts = {f"q{i}": f"Name a {thing}." for i, thing in enumerate(["colour", "fruit", "city"])}
    plan = oc.Plan(tasks=[oc.Task(id=k, agent="w", prompt=p) for k, p in prompts.items()])
    events: list[oc.Event] = []
    orch = oc.Orchestra(models=[spec], agents=[oc.Agent(name="w")], on_event=events.append)
    try:
        result = await orch.execute(plan)
    except oc.NodeFailed as failed:  # every retry of a node was cut: a failure, not an answer
        result = failed.result
    kept = {k: n.output for k, n in result.nodes.items() if n.ok}
    assert kept, "no node answered at all"
    for task_id, output in kept.items():
        whole = _server_answer(server, [{"role": "user", "content": prompts[task_id]}])
        assert output == whole["choices"][0]["message"]["content"]
        assert result.nodes[task_id].attempts[-1].finish_reason in ("stop", "length")
    cuts = [e for e in events if isinstance(e, RetryScheduled) and "finish reason" in e.error]
    print(f"{len(cuts)} cut stream(s) retried; {len(kept)}/{len(prompts)} nodes answered")


def lookup(term: str) -> str:
    """Look a term up in the glossary of model serving."""
    return {"TTFT": "time to first token"}.get(term.strip().upper(), "time to first token")


async def test_tool_call_and_its_second_turn(local_servers: LocalServers) -> None:
    """A forced tool call runs the tool, and the second turn (with the tool's answer) is
    accepted by the server: the node answers."""
    spec = local_servers["smollm2"].spec(name="smol", litellm_params={"max_tokens": 48})
    agent = oc.Agent(name="w", model="smol", tools=[lookup], tool_choice="lookup")
    plan = oc.Plan(tasks=[oc.Task(id="q", agent="w", prompt="What does TTFT mean?")])
    result = await oc.Orchestra(models=[spec], agents=[agent]).execute(plan)
    node = result.nodes["q"]
    assert node.ok and node.output
    assert node.attempts[0].finish_reason == "tool_calls"
    assert node.usage.calls >= 2


class Planet(BaseModel):
    """A planet and its moons."""

    name: str
    moons: int


async def test_structured_output_from_a_135m_model(local_servers: LocalServers) -> None:
    """Constrained decoding gives a valid instance of the agent's output type."""
    spec = local_servers["smollm2"].spec(name="smol", litellm_params={"max_tokens": 64})
    agent = oc.Agent(name="w", model="smol", output_type=Planet)
    plan = oc.Plan(tasks=[oc.Task(id="p", agent="w", prompt="Name a planet and its moons.")])
    result = await oc.Orchestra(models=[spec], agents=[agent]).execute(plan)
    assert isinstance(result.output, Planet)


async def test_the_135m_boss_plans_under_constraint(local_servers: LocalServers) -> None:
    """SmolLM2-135M as the boss: decoding under the positional plan schema, its first answer
    is a valid plan of this Orchestra's agents (no repair round), and the run succeeds on the
    real model alone. What is asserted is what the schema guarantees, not the model's wit."""
    server = local_servers["smollm2"]
    # Room for the longest plan a 135M model plausibly writes (a greedy model may repeat
    # itself up to the schema's prompt bound); a cut answer would be no JSON at all.
    boss = server.spec(name="boss", litellm_params={"max_tokens": 1500})
    worker = server.spec(name="worker", litellm_params=SHORT)
    agents = [
        oc.Agent(name="researcher", description="finds facts", model="worker"),
        oc.Agent(name="writer", description="writes short texts", model="worker"),
    ]
    events: list[oc.Event] = []
    orch = oc.Orchestra(models=[boss, worker], agents=agents, boss="boss", on_event=events.append)
    result = await orch.run("Write two sentences about the moon.")
    assert not [e for e in events if isinstance(e, PlanRejected)]
    assert result.plan is not None
    assert [t.id for t in result.plan.tasks] == [
        f"t{i}" for i in range(1, len(result.plan.tasks) + 1)
    ]
    assert {t.agent for t in result.plan.tasks} <= {"researcher", "writer"}
    assert result.status == "succeeded"


async def test_resume_after_the_server_was_killed_mid_run(
    local_servers: LocalServers, tmp_path: Path
) -> None:
    """Killing the server after the first node fails the run; on a new server, resume runs
    only the nodes that had not finished."""
    server = start_server("smollm2")
    try:
        spec = server.spec(
            name="smol",
            retry=oc.RetryPolicy(max_retries=1, backoff=0.05),
            litellm_params=SHORT,
        )

        def crash_after_first(event: oc.Event) -> None:
            if isinstance(event, NodeFinished) and event.task_id == "a":
                server.kill()

        plan = oc.Plan(
            tasks=[
                oc.Task(id="a", agent="w", prompt="Name a colour."),
                oc.Task(id="b", agent="w", prompt="Describe {a} in three words.", after=["a"]),
            ]
        )
        journal = tmp_path / "runs.sqlite"
        agents = [oc.Agent(name="w")]
        first = oc.Orchestra(
            models=[spec], agents=agents, journal=journal, on_event=crash_after_first
        )
        with pytest.raises(oc.NodeFailed) as failed:
            await first.execute(plan)
        partial = failed.value.result
        assert partial.nodes["a"].ok and not partial.nodes["b"].ok
        server = start_server("smollm2", port=server.port)
        events: list[oc.Event] = []
        again = oc.Orchestra(models=[spec], agents=agents, journal=journal, on_event=events.append)
        result = await again.resume(partial.run_id)
        assert result.status == "succeeded"
        assert result.nodes["a"].output == partial.nodes["a"].output
        called = {e.task_id for e in events if isinstance(e, ModelCalled)}
        assert called == {"b"}
    finally:
        server.stop()


def test_the_example_runs_workers_on_the_real_model(local_servers: LocalServers) -> None:
    """examples/15_real_local_model.py runs the simulated boss's plan on the real SmolLM2."""
    example = Path(__file__).resolve().parents[2] / "examples" / "15_real_local_model.py"
    done = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, timeout=900, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "succeeded: 6 nodes on http://127.0.0.1:" in done.stdout, done.stdout
    assert "real model: 6 calls" in done.stdout, done.stdout
