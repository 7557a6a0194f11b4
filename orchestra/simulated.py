"""The simulated constellation: offline models with the price and speed of real model classes.

Deterministic responders run through `FakeModel` (so through litellm), with the latency profile
of their class: time to first token + prompt tokens / prefill speed + output tokens / decode
speed — the prefill/decode split is how providers and chips really differ. The boss writes a
multi-branch plan for any task; workers answer with deterministic text. It makes the whole
machinery — planning, parallel dispatch, routing, cost accounting — visible without API keys.

Example:
    >>> import orchestra as oc
    >>> orch = oc.simulated.orchestra(time_scale=0.0)
    >>> result = orch.run_sync("Compare the unit economics of small and large models")
    >>> result.status, len(result.nodes) > 3
    ('succeeded', True)
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

from orchestra.agents import Agent
from orchestra.events import EventSink
from orchestra.models.budget import Budget
from orchestra.models.constellation import Constellation
from orchestra.models.spec import ModelSpec
from orchestra.orchestra import Orchestra
from orchestra.routing.base import RoutingPolicy
from orchestra.routing.policies import Cheapest
from orchestra.testing.fake import FakeModel, FakeReply, FakeRequest

__all__ = ["BOSS", "PROFILES", "agents", "constellation", "orchestra"]

BOSS = "boss"

PROFILES: dict[str, dict[str, Any]] = {
    "boss": {
        "model_class": "gpt-4o class, general GPU cloud",
        "input_cost": 2.5,
        "output_cost": 10.0,
        "quality": 0.9,
        "tags": {"planning", "reasoning", "writing"},
        "ttft": 0.45,
        "prefill_tps": 3000,
        "decode_tps": 90,
        "max_concurrency": 8,
        # The boss streams its plan: tasks start while it is still writing the rest.
        "stream": True,
    },
    "fast": {
        "model_class": "Llama-3.1-8B on a speed-first inference chip",
        "input_cost": 0.05,
        "output_cost": 0.08,
        "quality": 0.6,
        "ttft": 0.15,
        "prefill_tps": 8000,
        "decode_tps": 750,
        "max_concurrency": 16,
    },
    "fast-wafer": {
        "model_class": "Llama-3.1-8B on a wafer-scale chip",
        "input_cost": 0.10,
        "output_cost": 0.10,
        "quality": 0.6,
        "ttft": 0.1,
        "prefill_tps": 12000,
        "decode_tps": 1800,
        "max_concurrency": 16,
    },
    "mid": {
        "model_class": "Llama-3.1-70B, general GPU cloud",
        "input_cost": 0.59,
        "output_cost": 0.79,
        "quality": 0.75,
        "tags": {"reasoning", "writing"},
        "ttft": 0.3,
        "prefill_tps": 3000,
        "decode_tps": 250,
        "max_concurrency": 8,
    },
}
"""Each simulated model's class, prices (USD per 1M tokens), quality and speeds."""


def agents() -> list[Agent]:
    """The simulated team: researcher, analyst, critic and writer."""
    return [
        Agent(
            name="researcher",
            description="gathers facts, figures and options on a topic",
            instructions="You are a careful researcher. Answer with concise, sourced facts.",
        ),
        Agent(
            name="analyst",
            description="compares options and works out the numbers",
            instructions="You are an analyst. Be quantitative.",
            model="mid",
        ),
        Agent(
            name="critic",
            description="finds risks, weak points and counter-arguments",
            instructions="You are a critic. Find what could go wrong.",
        ),
        Agent(
            name="writer",
            description="writes the final answer from the other agents' work",
            instructions="You are a clear writer. Write the final answer.",
            model="mid",
        ),
    ]


def _plan(task: str) -> str:
    subject = task.strip().replace("{", "{{").replace("}", "}}") or "the task"
    tasks = [
        {
            "id": "background",
            "agent": "researcher",
            "prompt": f"Gather background facts on: {subject}",
        },
        {"id": "figures", "agent": "researcher", "prompt": f"Find the key figures for: {subject}"},
        {"id": "options", "agent": "researcher", "prompt": f"List the main options for: {subject}"},
        {
            "id": "risks",
            "agent": "critic",
            "prompt": f"List risks and counter-arguments: {subject}",
        },
        {
            "id": "compare",
            "agent": "analyst",
            "prompt": "Compare the options.\nFacts:\n{background}\nFigures:\n{figures}\n"
            "Options:\n{options}",
            "after": ["background", "figures", "options"],
        },
        {
            "id": "answer",
            "agent": "writer",
            "prompt": f"Answer the task: {subject}\nAnalysis:\n{{compare}}\nRisks:\n{{risks}}",
            "after": ["compare", "risks"],
        },
    ]
    return json.dumps({"tasks": tasks, "output": "answer"}, indent=1)


_PHRASES = [
    "costs scale with tokens, not with requests",
    "small models answer most routine sub-tasks well",
    "latency is dominated by decode speed for long answers",
    "the large model earns its price on planning and synthesis",
    "parallel branches cut wall time more than faster models do",
    "quality checks catch a cheap model's rare misses",
    "a fallback provider keeps the system up when one fails",
    "prefill is cheap; long outputs are what cost time",
    "routing by task type beats one model for everything",
    "speed-first chips turn an 8B model into a sub-second worker",
    "the critical path, not the total work, sets the wall time",
    "a budget cap turns a runaway plan into a clear error",
]

_POINTS = {"researcher": 4, "analyst": 5, "critic": 3, "writer": 7}


def _text(request: FakeRequest) -> str:
    subject = request.prompt.splitlines()[0][:120]
    digest = hashlib.sha256(f"{request.agent}|{request.prompt}".encode()).digest()
    seed = int.from_bytes(digest[:8], "big")
    points = random.Random(seed).sample(_PHRASES, _POINTS.get(request.agent or "", 4))
    lines = [f"{subject} ({request.agent} on {request.model})"]
    lines.extend(f"- {point.capitalize()}." for point in points)
    return "\n".join(lines)


def _answer(request: FakeRequest) -> str:
    return _plan(request.prompt) if request.agent == "plan" else _text(request)


def constellation(fake: FakeModel | None = None, *, time_scale: float = 1.0) -> Constellation:
    """The simulated models (boss, fast, fast-wafer, mid), answering through a FakeModel.

    Args:
        fake: the FakeModel to answer through (default: a new one with the simulated answers).
        time_scale: multiplies every simulated latency (0 answers at once; 1 is real-time).
    """
    specs = {
        name: {k: v for k, v in p.items() if k != "model_class"} for name, p in PROFILES.items()
    }

    def latency(request: FakeRequest, reply: FakeReply) -> float:
        spec = specs[request.model]
        prompt = sum(len(str(m.get("content") or "")) for m in request.messages) / 4
        output = len(reply.content or "") / 4
        seconds = spec["ttft"] + prompt / spec["prefill_tps"] + output / spec["decode_tps"]
        return float(seconds) * time_scale

    fake = fake or FakeModel(handler=_answer, latency=latency)
    return Constellation(
        ModelSpec.parse({**fields, "name": name, "model": fake.model(name)})
        for name, fields in specs.items()
    )


def orchestra(
    *,
    time_scale: float = 1.0,
    router: RoutingPolicy | None = None,
    budget: Budget | None = None,
    on_event: EventSink | None = None,
) -> Orchestra:
    """An Orchestra on the simulated constellation and team, with `boss` planning.

    Example:
        >>> import orchestra as oc
        >>> oc.simulated.orchestra(time_scale=0.0).boss
        'boss'
    """
    return Orchestra(
        models=constellation(time_scale=time_scale),
        agents=agents(),
        boss=BOSS,
        router=router or Cheapest(min_quality=0.5),
        budget=budget,
        on_event=on_event,
    )
