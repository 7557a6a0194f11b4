"""The process the batch crash test kills: a batch of small plans against an OpenAI server.

    python batch_worker.py URL JOURNAL BATCH_ID GENERATION

Every request carries `X-Generation: GENERATION`, so the server can tell which process sent
it. Prints `DONE <succeeded>` when the batch ends.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import orchestra as oc

RUNS = 16
PLAN = oc.Plan(
    tasks=[
        oc.Task(id="facts", agent="worker", prompt="facts on {topic}"),
        oc.Task(id="angle", agent="worker", prompt="an angle on {topic}"),
        oc.Task(
            id="memo", agent="worker", prompt="memo: {facts} {angle}", after=["facts", "angle"]
        ),
    ]
)
INPUTS = [{"topic": f"topic {i}"} for i in range(RUNS)]


def orchestra(url: str, journal: str, generation: str) -> oc.Orchestra:
    """The worker's Orchestra: one model at `url`."""
    spec = oc.ModelSpec(
        name="local",
        model="openai/batch",
        api_base=url,
        api_key="sk-batch-test",
        litellm_params={"extra_headers": {"X-Generation": generation}},
    )
    return oc.Orchestra(
        models=[spec], agents=[oc.Agent(name="worker", model="local")], journal=journal
    )


def main() -> int:
    url, journal, batch_id, generation = sys.argv[1:5]
    orch = orchestra(url, journal, generation)
    result = orch.map_sync(PLAN, inputs=INPUTS, concurrency=3, batch_id=batch_id, progress=False)
    print(f"DONE {result.succeeded}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
