"""Cascades and slack-aware routing: cheap models first, the strong one only when they disagree.

Three questions go to an agreement cascade: two cheap models answer each; when they agree, the
answer is kept; when they do not, the strong model is asked and a vote settles it. The models
are scripted fakes (`FakeModel`), so it runs offline. Then a plan with a long chain and a short
side branch runs on the simulated constellation with `SlackAware`: the chain (the critical path)
gets the fastest model, the side branch the cheapest one that will not delay the run.
"""

from __future__ import annotations

import json

import orchestra as oc
from orchestra.checks import Agree, Vote
from orchestra.testing import FakeModel, FakeReply, FakeRequest, fake_constellation

# What each model answers to each question (the cheap ones disagree on the last).
SCRIPT = {
    "What is 6 * 7?": {"cheap-a": "42", "cheap-b": "42.0", "strong": "42"},
    "What is 2 ** 10?": {"cheap-a": "1,024", "cheap-b": "1024", "strong": "1024"},
    "What is 17 * 23?": {"cheap-a": "381", "cheap-b": "391", "strong": "391"},
}
PROFILES = {
    "cheap-a": {"input_cost": 0.14, "output_cost": 0.28, "quality": 0.7},
    "cheap-b": {"input_cost": 0.15, "output_cost": 0.6, "quality": 0.75},
    "strong": {"input_cost": 2.5, "output_cost": 10.0, "quality": 0.9},
}


def answer(request: FakeRequest) -> FakeReply:
    """The scripted answer, as JSON with a reasoning and an answer field."""
    said = SCRIPT[request.prompt][request.model]
    return FakeReply(json.dumps({"reasoning": "...", "answer": said}), output_tokens=80)


def cascade_demo() -> None:
    """Run the three questions through an agreement cascade, then on the strong model alone."""
    cascade = oc.routing.Cascade(
        [
            oc.routing.Stage(["cheap-a", "cheap-b"], Agree(2)),  # accept when both agree
            oc.routing.Stage(["strong"], Vote()),  # else ask the strong model; vote
        ]
    )
    plan = oc.Plan(
        tasks=[oc.Task(id=f"q{i}", agent="assistant", prompt=q) for i, q in enumerate(SCRIPT)]
    )
    costs: dict[str, float] = {}
    for name, router in (("cascade", cascade), ("strong", oc.routing.Fixed("strong"))):
        models = fake_constellation(FakeModel(handler=answer), PROFILES)
        result = oc.Orchestra(models=models, router=router).execute_sync(plan)
        costs[name] = result.cost_usd
        for task_id, node in sorted(result.nodes.items()):
            if name == "cascade":
                print(f"{task_id}: {node.model:8} {node.usage.calls} calls  {node.route}")
    print(f"cascade ${costs['cascade']:.6f} vs strong model alone ${costs['strong']:.6f}")


def slack_demo() -> None:
    """A chain and a side branch on the simulated constellation, routed by slack."""
    plan = oc.Plan(
        tasks=[
            oc.Task(id="draft", agent="researcher", prompt="Draft the memo"),
            oc.Task(id="check", agent="researcher", prompt="Check {draft}", after=["draft"]),
            oc.Task(id="final", agent="researcher", prompt="Finish {check}", after=["check"]),
            oc.Task(id="aside", agent="researcher", prompt="List sources"),
        ]
    )
    orch = oc.Orchestra(
        models=oc.simulated.constellation(time_scale=0.0),
        agents=[oc.Agent(name="researcher")],
        router=oc.routing.SlackAware(min_quality=0.6),
    )
    result = orch.execute_sync(plan)
    print("slack-aware:", ", ".join(f"{t} -> {n.model}" for t, n in sorted(result.nodes.items())))


def main() -> None:
    """Both demos."""
    cascade_demo()
    slack_demo()


if __name__ == "__main__":
    main()
