"""Checks: a verifier that sends doubtful answers up a cascade, and a mixture of agents.

`Stage(["fast"], Verify("mid"))` has the fast model answer and the mid model check it: a YES
keeps the cheap answer, a NO escalates to the next stage. `Mixture(["fast", "mid"],
aggregator="boss")` asks several models at once and has the boss write the final answer from
theirs. `PerAgent` gives each agent its own policy. Here the verifier accepts one answer and
rejects the other, which the boss then answers; the memo is a mixture. Offline, on `FakeModel`:

    python examples/21_verify_and_mixture.py
"""

import orchestra as oc
from orchestra.checks import Verify, Vote
from orchestra.testing import FakeModel, FakeRequest


def answer(request: FakeRequest) -> str:
    if request.model == "mid":  # the verifier
        return "NO, 2+2 is 4" if "2+2" in request.prompt else "YES, it checks out"
    if request.model == "fast":
        return "5" if "2+2" in request.prompt else "Paris"
    return f"{request.model}'s answer"


def main() -> None:
    fake = FakeModel(handler=answer)
    models = [
        oc.ModelSpec(name=name, model=fake.model(name), input_cost=price, output_cost=price)
        for name, price in (("fast", 0.05), ("mid", 0.6), ("boss", 2.5))
    ]
    cascade = oc.routing.Cascade(
        [oc.routing.Stage(["fast"], Verify("mid")), oc.routing.Stage(["boss"], Vote())]
    )
    mixture = oc.routing.Mixture(["fast", "mid"], aggregator="boss")
    router = oc.routing.PerAgent({"solver": cascade, "writer": mixture})
    agents = [oc.Agent(name="solver"), oc.Agent(name="writer")]
    orch = oc.Orchestra(models=models, agents=agents, router=router, journal=None)
    plan = oc.Plan(
        tasks=[
            oc.Task(id="capital", agent="solver", prompt="The capital of France?"),
            oc.Task(id="sum", agent="solver", prompt="What is 2+2?"),
            oc.Task(id="memo", agent="writer", prompt="Write: {capital}, {sum}",
                    after=["capital", "sum"]),
        ]
    )  # fmt: skip
    result = orch.execute_sync(plan)
    for task_id, node in result.nodes.items():
        print(f"{task_id:<8} {node.output!s:<16} from {node.model:<5} ${node.cost_usd:.8f}")
        print(f"         route: {node.route}"[:100])


if __name__ == "__main__":
    main()
