"""The process the crash tests kill: a 30-node plan against an OpenAI-compatible server.

    python crash_worker.py URL JOURNAL RUN_ID GENERATION start|resume [--wait]

Every request carries the header `X-Generation: GENERATION`, so the server can tell which
process sent it. Prints `DONE <output>` when the run succeeds; exits 3 with the message on
stderr when the journal refuses it (another process holds the run).
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import orchestra as oc

NODES = 30


def plan() -> oc.Plan:
    """A DAG about four nodes wide: node i needs nodes i-4 and i-9 (when they exist)."""
    tasks: list[oc.Task] = []
    for i in range(NODES):
        after = [f"t{j:02d}" for j in (i - 4, i - 9) if j >= 0]
        inputs = " ".join(f"{{{dep}}}" for dep in after)
        prompt = f"node t{i:02d}: {inputs}"
        tasks.append(oc.Task(id=f"t{i:02d}", agent="worker", prompt=prompt, after=after))
    return oc.Plan(tasks=tasks, output=f"t{NODES - 1:02d}")


def orchestra(url: str, journal: str, generation: str) -> oc.Orchestra:
    """The worker's Orchestra: one model at `url`, four nodes at a time."""
    spec = oc.ModelSpec(
        name="local",
        model="openai/crash",
        api_base=url,
        api_key="sk-crash-test-secret",
        litellm_params={"extra_headers": {"X-Generation": generation}},
    )
    agents = [oc.Agent(name="worker", model="local")]
    return oc.Orchestra(models=[spec], agents=agents, journal=journal, max_parallel=4)


def main() -> int:
    url, journal, run_id, generation, mode = sys.argv[1:6]
    if "--wait" in sys.argv:
        # Pay for litellm's import first, then wait for the test's go-ahead on stdin, so a
        # test can start the next process while the previous one still runs.
        from orchestra.models.loader import load_litellm

        load_litellm()
        print("READY", flush=True)
        sys.stdin.readline()
    orch = orchestra(url, journal, generation)
    try:
        if mode == "start":
            result = orch.execute_sync(plan(), run_id=run_id)
        else:
            result = orch.resume_sync(run_id)
    except oc.JournalError as exc:
        print(exc, file=sys.stderr)
        return 3
    print(f"DONE {result.output}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
