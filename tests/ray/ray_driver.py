"""The driver process a Ray test kills: a batch on the cluster against an OpenAI server.

    python ray_driver.py ADDRESS URL JOURNAL

Every request carries `X-Generation: driver`. Prints `DONE <succeeded>` if the batch ends.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

import orchestra as oc

PLAN = oc.Plan(
    tasks=[
        oc.Task(id="facts", agent="w", prompt="facts on {topic}"),
        oc.Task(id="memo", agent="w", prompt="memo from {facts}", after=["facts"]),
    ]
)
ROWS = [{"topic": f"t{i}"} for i in range(8)]


def orchestra(url: str, journal: str, generation: str) -> oc.Orchestra:
    """The batch's Orchestra: one model at `url`."""
    spec = oc.ModelSpec(
        name="w",
        model="openai/w",
        api_base=url,
        api_key="k",
        litellm_params={"extra_headers": {"X-Generation": generation}},
    )
    return oc.Orchestra(models=[spec], agents=[oc.Agent(name="w", model="w")], journal=journal)


def main() -> int:
    address, url, journal = sys.argv[1:4]
    backend = oc.backends.Ray(address=address, actors=2, actor_cpus=0.5)
    orch = orchestra(url, journal, "driver")
    result = orch.map_sync(PLAN, inputs=ROWS, batch_id="driven", backend=backend, progress=False)
    print(f"DONE {result.succeeded}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
