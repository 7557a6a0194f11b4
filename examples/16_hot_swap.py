"""Hot swap: replace a model of the constellation while a run goes on.

`Constellation.swap(name, spec)` puts a new spec (another provider, another price) in place of
one: a call looks its spec up when it starts, so a call in flight finishes on the old model and
every later call uses the new one. Here the provider of `fast` is swapped while the first task
is being answered (say a cheaper provider came up); the second task runs on the new one and is
priced at the new rate. Offline, on two `FakeModel`s standing for the two providers:

    python examples/16_hot_swap.py
"""

import orchestra as oc
from orchestra.testing import FakeModel, FakeRequest


def main() -> None:
    old = FakeModel()
    new = FakeModel(handler=lambda request: f"new provider answered {request.task_id}")
    models = oc.Constellation(
        [oc.ModelSpec(name="fast", model=old.model("llama-8b"), input_cost=0.1, output_cost=0.1)]
    )
    cheaper = oc.ModelSpec(
        name="fast", model=new.model("llama-8b"), input_cost=0.05, output_cost=0.05
    )

    def answer_then_swap(request: FakeRequest) -> str:
        models.swap("fast", cheaper)  # while this call is in flight
        return f"old provider answered {request.task_id}"

    old.handler = answer_then_swap
    orch = oc.Orchestra(models=models, agents=[oc.Agent(name="writer", model="fast")], journal=None)
    plan = oc.Plan(
        tasks=[
            oc.Task(id="draft", agent="writer", prompt="Draft a memo on GPU prices"),
            oc.Task(id="polish", agent="writer", prompt="Polish:\n{draft}", after=["draft"]),
        ]
    )
    result = orch.execute_sync(plan)
    for task_id, node in result.nodes.items():
        print(f"{task_id:<6} {node.output}  (${node.cost_usd:.8f})")
    print(f"calls: old provider {len(old.calls)}, new provider {len(new.calls)}")
    print(f"fast now costs ${models['fast'].input_cost} per 1M input tokens")


if __name__ == "__main__":
    main()
