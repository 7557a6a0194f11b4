"""The front door: `__all__` and a fast import."""

import subprocess
import sys

import orchestra

DESIGN_NAMES = {
    "Agent", "Budget", "BudgetExceeded", "ConfigError", "Constellation", "ModelError",
    "ModelSpec", "NodeFailed", "NodeResult", "Orchestra", "OrchestraError", "Plan",
    "PlanError", "RunResult", "Task", "Usage", "routing", "simulated",
}  # fmt: skip


def test_all_is_sorted_and_complete() -> None:
    """`__all__` is sorted, every name exists, and DESIGN.md's public names are all there."""
    assert orchestra.__all__ == sorted(orchestra.__all__)
    assert all(hasattr(orchestra, name) for name in orchestra.__all__)
    assert set(orchestra.__all__) >= DESIGN_NAMES


def test_public_names_have_docstrings() -> None:
    """Every public class and function says what it is for."""
    for name in orchestra.__all__:
        assert getattr(orchestra, name).__doc__, name


def test_import_does_not_import_litellm() -> None:
    """`import orchestra` leaves litellm (seconds of start-up) for the first model call."""
    code = "import sys, orchestra, orchestra.testing; print('litellm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_errors_form_one_tree() -> None:
    """Every error is an OrchestraError; bad-input errors are also ValueErrors."""
    for name in ("PlanError", "ConfigError", "BudgetExceeded", "ModelError", "NodeFailed"):
        assert issubclass(getattr(orchestra, name), orchestra.OrchestraError)
    assert issubclass(orchestra.PlanError, ValueError)
    assert issubclass(orchestra.ConfigError, ValueError)


def test_the_engine_loads_on_first_use() -> None:
    """`import orchestra` gives plans, models and budgets without loading the engine, routing or
    the report; the first use of `oc.Orchestra` loads them."""
    heavy = ("orchestra.orchestra", "orchestra.routing", "orchestra.observe.report")
    code = (
        "import sys, orchestra as oc\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n"
        "oc.Orchestra, oc.routing.Cheapest\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["[]", str(sorted(heavy[:2]))]
