"""Crash and resume: a run dies mid-way; `resume` finishes it without redoing finished work.

A child process runs a six-step plan and crashes hard (`os._exit`) while step four is in flight:
no cleanup, no goodbye, as if the machine went down. The journal (SQLite, on by default) had
recorded each finished step before the next one started. The parent resumes the run by its id:
the finished steps are not run again, the step that was in flight runs again (at least once),
the rest run once. Every dispatch carries an idempotency key `run:node:attempt`. Offline:

    python examples/12_crash_and_resume.py
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import orchestra as oc
from orchestra.testing import FakeModel, FakeRequest, fake_constellation

RUN_ID = "nightly-report"
STEPS = ["gather", "clean", "analyse", "chart", "draft", "review"]
PLAN = oc.Plan(
    tasks=[
        oc.Task(id=step, agent="assistant", prompt=f"{step}: {{{before}}}", after=[before])
        if before
        else oc.Task(id=step, agent="assistant", prompt=step)
        for before, step in zip(["", *STEPS[:-1]], STEPS, strict=True)
    ]
)


def orchestra(journal: Path, *, crash_at: str | None) -> tuple[oc.Orchestra, FakeModel]:
    """An Orchestra on scripted models that kill the process when `crash_at` is called."""

    def answer(request: FakeRequest) -> str:
        if request.task_id == crash_at:
            os._exit(70)  # a hard crash: not even `finally` blocks run after this
        return f"<{request.task_id} done>"

    fake = FakeModel(handler=answer)
    return oc.Orchestra(models=fake_constellation(fake), journal=journal), fake


def child(journal: Path) -> None:
    """The first process: it starts the run and dies during step four."""
    orch, _ = orchestra(journal, crash_at="chart")
    orch.execute_sync(PLAN, run_id=RUN_ID)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        resume(Path(folder) / "runs.sqlite")


def resume(journal: Path) -> None:
    """Let a child process crash mid-run, then resume the run here."""
    crashed = subprocess.run([sys.executable, __file__, "--child", str(journal)], check=False)
    print(f"the first process died with exit status {crashed.returncode}")
    orch, fake = orchestra(journal, crash_at=None)
    for run in orch.runs():
        print(f"journal: {run.run_id} is {run.status}, {run.nodes_done}/{run.nodes_total} done")
    result = orch.resume_sync(RUN_ID)  # or, from a shell: orchestra resume nightly-report
    print(f"resumed: the model was called for {[call.task_id for call in fake.calls]}")
    assert orch.journal is not None
    for node in orch.journal.nodes(RUN_ID):
        print(f"  {node.idempotency_key:<28} {node.status}")
    print(f"status: {result.status}; answer: {result.output}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(Path(sys.argv[2]))
    else:
        main()
