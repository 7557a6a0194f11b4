"""LLMRouter: a small fast model reads each node and picks the model that should answer it.

`oc.routing.LLMRouter("fast")` shows the router model the node's agent, its prompt and the
candidates (quality, prices, tags) and asks for `{"model": ..., "reason": ...}`. Its pick
answers the node and the route says why; when the router fails or names no usable model, the
`fallback` policy (default `Cheapest()`) decides and the route says so. The router's call is
the node's, in its usage. Useful when task types are open-ended and no fitted cascade exists.
Offline, on a `FakeModel` playing the router and the workers:

    python examples/24_llm_router.py
"""

import json

import orchestra as oc
from orchestra.testing import FakeModel, FakeRequest


def answer(request: FakeRequest) -> str:
    if "You route tasks" in request.prompt:  # the router's call
        if "proof" in request.prompt:
            return json.dumps({"model": "boss", "reason": "a multi-step proof"})
        if "haiku" in request.prompt:
            return "gpt-9, surely"  # names no candidate: the fallback decides
        return json.dumps({"model": "fast", "reason": "a lookup"})
    return f"{request.model} answers"


def main() -> None:
    fake = FakeModel(handler=answer)
    models = [
        oc.ModelSpec(name="fast", model=fake.model("fast"), input_cost=0.05, output_cost=0.08,
                     quality=0.6),
        oc.ModelSpec(name="boss", model=fake.model("boss"), input_cost=2.5, output_cost=10.0,
                     quality=0.9),
    ]  # fmt: skip
    router = oc.routing.LLMRouter("fast", fallback=oc.routing.Cheapest(min_quality=0.5))
    orch = oc.Orchestra(models=models, router=router, journal=None)
    plan = oc.Plan(
        tasks=[
            oc.Task(id="lookup", agent="assistant", prompt="The capital of France?"),
            oc.Task(
                id="proof", agent="assistant", prompt="Write a proof that sqrt(2) is irrational"
            ),
            oc.Task(id="haiku", agent="assistant", prompt="A haiku about GPUs"),
        ]
    )
    result = orch.execute_sync(plan)
    for task_id, node in result.nodes.items():
        print(f"{task_id:<7} on {node.model:<4} ${node.cost_usd:.8f}  {node.route}"[:110])


if __name__ == "__main__":
    main()
