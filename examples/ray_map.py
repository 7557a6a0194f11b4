"""A batch on a Ray cluster: the same `map`, its nodes run on a pool of Ray actors.

Twenty tickets, a two-step plan, two long-lived actors (each imports litellm once and runs
many nodes at a time). The driver (this process) keeps the scheduler and the journal; every
model call asks one admission service first, so the model's `max_concurrency=4` holds over
the whole cluster. Needs `pip install 'orchestra-dag[ray]'`; without a cluster address it
starts Ray on this machine (`RAY_ADDRESS` or `address=` joins a running one):

    python examples/ray_map.py

Not numbered: Ray binds to every network interface, so the tests run it only inside a
loopback-only network namespace (`scripts/ray-tests`).
"""

import tempfile
from pathlib import Path

import anyio

import orchestra as oc
from orchestra.testing import FakeModel

PLAN = oc.Plan(
    tasks=[
        oc.Task(id="label", agent="triage", prompt="Classify: {ticket}"),
        oc.Task(id="reply", agent="triage", prompt="Reply to a {label} ticket", after=["label"]),
    ]
)
TICKETS = [{"ticket": f"#{n}: " + ("refund" if n % 2 else "crash")} for n in range(20)]


async def main() -> None:
    # A scripted model: it goes to the actors with the constellation and answers there.
    fake = FakeModel(responses={"label": "billing", "reply": "We are on it."}, latency=0.05)
    model = oc.ModelSpec(name="fast", model=fake.model("fast"), max_concurrency=4)
    ray = oc.backends.Ray(actors=2, actor_concurrency=16, actor_cpus=0.5)
    with tempfile.TemporaryDirectory() as folder:
        orch = oc.Orchestra(
            models=[model],
            agents=[oc.Agent(name="triage", model="fast")],
            journal=Path(folder) / "runs.sqlite",
            backend=ray,
        )
        try:
            async with orch.map(PLAN, inputs=TICKETS, concurrency=8, batch_id="tickets") as runs:
                async for run in runs:
                    if run.run_id.endswith(":0"):
                        print(f"{run.run_id}: {run.output}")
            pool = await ray.start()
            hosts = await pool.info()
            print(f"on Ray: {runs.succeeded} runs succeeded, {runs.failed} failed")
            print(f"{len(hosts)} actors on {len({h.node_id for h in hosts})} node(s)")
            admitted = (await pool.stats())["admitted"]
            print(f"calls admitted by the cluster's admission service: {admitted}")
        finally:
            await ray.close()


if __name__ == "__main__":
    anyio.run(main, backend="asyncio")
