"""Limits: per-model concurrency, requests and tokens per minute, and a cap per run.

`ModelSpec(max_concurrency=2, rpm=..., tpm=...)` bounds what one model is sent, across every
run of an Orchestra: calls over the limit wait in the model's queue, highest critical-path
priority first. `Orchestra(max_parallel=N)` caps the nodes in flight per run, whatever their
models. Here eight independent tasks meet a model that takes two calls at a time; the fake
counts the calls in flight, and the run takes four rounds instead of one. Offline:

    python examples/19_limits.py
"""

import anyio

import orchestra as oc
from orchestra.testing import FakeModel, FakeRequest


class InFlight:
    """Answers after a short wait, and keeps the peak of calls in flight at once."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0

    async def answer(self, request: FakeRequest) -> str:
        self.now += 1
        self.peak = max(self.peak, self.now)
        await anyio.sleep(0.1)
        self.now -= 1
        return f"done: {request.task_id}"


def main() -> None:
    counter = InFlight()
    fake = FakeModel(handler=counter.answer)
    spec = oc.ModelSpec(
        name="fast",
        model=fake.model("llama-8b"),
        input_cost=0.05,
        output_cost=0.08,
        max_concurrency=2,
        rpm=600,
        tpm=200_000,
    )
    orch = oc.Orchestra(models=[spec], agents=[oc.Agent(name="w", model="fast")], journal=None)
    plan = oc.Plan(tasks=[oc.Task(id=f"t{i}", agent="w", prompt=f"Item {i}") for i in range(8)])
    result = orch.execute_sync(plan)
    print(f"{len(result.nodes)} nodes, at most {counter.peak} calls in flight on fast")
    print(f"(max_concurrency=2: about {result.seconds:.1f}s for four rounds of 0.1s)")
    agents = [oc.Agent(name="w", model="fast")]
    capped = oc.Orchestra(models=[spec], agents=agents, max_parallel=1, journal=None)
    counter.peak = 0
    capped.execute_sync(plan)
    print(f"with max_parallel=1: at most {counter.peak} call in flight")


if __name__ == "__main__":
    main()
