"""Batches: one plan over many inputs, failures reported, a crashed batch finished later.

Triage 40 support tickets with a two-step plan (classify, then draft a reply), eight runs at a
time. A child process starts the batch with `map_sync` and dies hard while ticket 20 is in
flight. The journal had recorded the batch (every ticket) and each run as `triage:INDEX`, so
`resume_map("triage")` here runs only the runs that did not finish, yielding them as they
finish. Ticket 35 makes the model fail: that run is reported with its error, the batch goes
on. (A plan's map *node*, example 11, fans a task out inside one run; `map` runs many runs.)
Offline:

    python examples/14_map_batch.py
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import anyio

import orchestra as oc
from orchestra.testing import FakeFailure, FakeModel, FakeRequest, fake_constellation

PLAN = oc.Plan(
    tasks=[
        oc.Task(id="label", agent="triage", prompt="Classify this ticket: {ticket}"),
        oc.Task(id="reply", agent="triage", prompt="Reply to a {label} ticket", after=["label"]),
    ]
)
TICKETS = [{"ticket": f"#{n}: " + ("refund please" if n % 3 else "app crashes")} for n in range(40)]


def answer(request: FakeRequest) -> str | FakeFailure:
    if "#20:" in request.prompt and len(sys.argv) > 1:
        os._exit(70)  # the first process dies here, as if its machine went down
    if "#35:" in request.prompt:
        return FakeFailure(400)  # this ticket breaks the model: the run fails, the batch goes on
    if request.task_id == "label":
        return "billing" if "refund" in request.prompt else "bug"
    return f"Sorry about that {request.prompt.split()[3]} issue; we are on it."


def orchestra(journal: str) -> tuple[oc.Orchestra, FakeModel]:
    fake = FakeModel(handler=answer)
    agents = [oc.Agent(name="triage")]
    return oc.Orchestra(models=fake_constellation(fake), agents=agents, journal=journal), fake


async def finish(orch: oc.Orchestra) -> None:
    """Resume the batch and read its runs as they finish."""
    async with orch.resume_map("triage") as results:
        async for result in results:
            if result.status != "succeeded":
                print(f"  {result.run_id} {result.status}")
    print(f"resumed: {results.finished_before} runs had finished before the crash")
    print(f"this session: {results.succeeded} succeeded, {results.failed} failed")
    for index, error in results.errors.items():
        print(f"  ticket {index}: {error.splitlines()[0][:50]}...")


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        journal = str(Path(folder) / "runs.sqlite")
        child = [sys.executable, __file__, journal]
        crashed = subprocess.run(child, check=False)
        print(f"the first process died with exit status {crashed.returncode}")
        orch, fake = orchestra(journal)
        anyio.run(finish, orch, backend="asyncio")
        runs = {run.run_id: run.status for run in orch.runs(limit=None)}
        print(f"journal: {list(runs.values()).count('succeeded')} of {len(TICKETS)} succeeded")
        print(f"model calls here: {len(fake.calls)}, at most 2 per run that had not finished")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        orchestra(sys.argv[1])[0].map_sync(PLAN, inputs=TICKETS, concurrency=8, batch_id="triage")
    else:
        main()
