"""litellm's import (seconds): never in `import orchestra`, warmed off the critical path, never
inside a run's clock. Each test runs in a fresh interpreter, where litellm is not imported yet."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow

OFFLINE = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_OFFLINE_MODE": "true"}


def _python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, **OFFLINE},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_import_and_building_fakes_leave_litellm_alone() -> None:
    """`import orchestra`, a FakeModel and the simulated constellation do not import litellm."""
    out = _python(
        """
        import sys
        import orchestra as oc
        from orchestra.testing import FakeModel
        FakeModel()
        oc.simulated.constellation()
        heavy = ("litellm", "ray", "opentelemetry")
        print(sorted(m for m in sys.modules if m.split(".")[0] in heavy))
        """
    )
    assert out.strip() == "[]"


def test_a_run_starts_its_clock_once_litellm_is_imported() -> None:
    """An Orchestra starts litellm's import in a thread; a run waits for it before it starts,
    so the import is in no node's time, the run's time or its max_seconds."""
    out = _python(
        """
        import sys, threading
        import orchestra as oc
        from orchestra.events import RunStarted
        seen = []
        def sink(event):
            if isinstance(event, RunStarted):
                seen.append("litellm" in sys.modules)
        orch = oc.simulated.orchestra(time_scale=0, on_event=sink)
        print([t.name for t in threading.enumerate() if t.name == "orchestra-litellm-import"])
        result = orch.run_sync("Compare small and large models", budget=oc.Budget(max_seconds=60))
        print(result.status, seen)
        """
    )
    assert out.splitlines() == ["['orchestra-litellm-import']", "succeeded [True]"]


def test_fakes_built_before_the_import_are_registered_with_litellm() -> None:
    """A FakeModel made before litellm is imported still answers once it is."""
    out = _python(
        """
        import orchestra as oc
        from orchestra.testing import FakeModel, fake_constellation
        fake = FakeModel(responses={"assistant": "hello"})
        plan = oc.Plan(tasks=[oc.Task(id="hi", agent="assistant", prompt="hi")])
        print(oc.Orchestra(models=fake_constellation(fake)).execute_sync(plan).output)
        """
    )
    assert out.strip() == "hello"
