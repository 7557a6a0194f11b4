"""Examples: the wall time of each numbered example, as a user runs it, in a fresh interpreter.

Each example runs `--repeat` times (the best is kept: the run least disturbed by other load) in
an empty working directory, offline, with bytecode caching on. `import orchestra` and `import
litellm` are measured in the same run as references: an example pays for the first and, when it
calls a model, for the second (in a thread started when its Orchestra is built). Goal: each
example at most 3 s on this machine.

    python benchmarks/examples.py [--repeat N] [NAME...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (keeps litellm offline)

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
GOAL_S = 3.0


def _best(command: list[str], env: dict[str, str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            subprocess.run(command, env=env, cwd=folder, capture_output=True, check=True)
            best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    """Measure and print one line per example, then `RESULT {json}`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per example (best is kept)")
    parser.add_argument("names", nargs="*", help="examples to time (default: all)")
    args = parser.parse_args()
    # As a user runs them: with the journal on where an example keeps one.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.pop("ORCHESTRA_JOURNAL", None)
    paths = sorted(EXAMPLES_DIR.glob("[0-9][0-9]_*.py"))
    if args.names:
        paths = [p for p in paths if any(p.name.startswith(n) for n in args.names)]
    python = [sys.executable]
    references = {
        "import orchestra": [*python, "-c", "import orchestra"],
        "import litellm": [*python, "-c", "import litellm"],
    }
    times = {name: _best(command, env, args.repeat) for name, command in references.items()}
    times.update({p.name: _best([*python, str(p)], env, args.repeat) for p in paths})
    base = times["import litellm"]
    print(f"{'':28} {'best s':>8} {'/ import litellm':>17}  goal <= {GOAL_S:.0f} s")
    for name, seconds in times.items():
        verdict = "" if name in references else ("ok" if seconds <= GOAL_S else "SLOW")
        print(f"{name:28} {seconds:8.2f} {seconds / base:16.2f}x  {verdict}")
    slow = [p.name for p in paths if times[p.name] > GOAL_S]
    print("RESULT " + json.dumps({**{k: round(v, 2) for k, v in times.items()}, "slow": slow}))


if __name__ == "__main__":
    main()
