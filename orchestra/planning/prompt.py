"""What the boss is told: the agents, the models' strengths, the inputs, and the plan schema."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable

from orchestra.agents import Agent
from orchestra.errors import PlanError
from orchestra.models.spec import ModelSpec
from orchestra.plan import Plan

__all__ = ["boss_messages", "repair_message"]

_RULES = """\
You are the planner of a team of AI agents. Break the user's task into a plan: a DAG of tasks,
each given to one agent. Make independent tasks parallel (no `after` between them) so they run
at the same time; give a task `after` only for the tasks whose outputs it needs, and refer to
those outputs in its prompt as {task_id}. Run inputs can be used as {input_name}. The last task
should combine the others into the final answer; set `output` to its id. To do the same work
for every item of a list a task produces, give one task `map` (that task's id, also in `after`)
and put {item} in its prompt: it runs once per item, and its output is the list of results.
Answer with one JSON object valid against this JSON schema, and nothing else:"""


def _agent_line(agent: Agent) -> str:
    line = f"- {agent.name}: {agent.description or 'general-purpose agent'}"
    if agent.tools:
        line += f" (tools: {', '.join(t.name for t in agent.tools)})"
    if agent.model is not None:
        line += f" [runs on {agent.model}]"
    return line


def _model_line(spec: ModelSpec) -> str:
    tags = f", good at {', '.join(sorted(spec.tags))}" if spec.tags else ""
    cost = spec.output_cost
    price = "price unknown" if cost is None else f"${cost:g}/1M output tokens"
    return f"- {spec.name}: quality {spec.quality:.2f}, {price}{tags}"


def boss_messages(
    task: str, agents: Iterable[Agent], models: Iterable[ModelSpec], inputs: Collection[str]
) -> list[dict[str, str]]:
    """The chat messages that ask the boss to plan `task`."""
    schema = json.dumps(Plan.model_json_schema(), separators=(",", ":"))
    parts = [
        _RULES,
        schema,
        "Agents:",
        *(_agent_line(a) for a in agents),
        "Models (a task may pin one with `model`; usually leave it out):",
        *(_model_line(m) for m in models),
    ]
    if inputs:
        parts.append("Inputs: " + ", ".join("{" + name + "}" for name in sorted(inputs)))
    return [
        {"role": "system", "content": "\n".join(parts)},
        {"role": "user", "content": task},
    ]


def repair_message(problems: Iterable[PlanError]) -> dict[str, str]:
    """The follow-up that sends the boss its plan's problems, numbered."""
    listed = "\n".join(f"{i}. {p}" for i, p in enumerate(problems, 1))
    return {
        "role": "user",
        "content": "That plan cannot run:\n"
        f"{listed}\nAnswer again with the whole corrected plan as one JSON object.",
    }
