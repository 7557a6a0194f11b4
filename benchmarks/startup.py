"""Start-up: `import orchestra` and the `orchestra` commands that call no model, each in a fresh
interpreter, against a bare Python and `import pydantic` (orchestra's heaviest dependency at
import) measured in the same run.

For each it prints the best of N wall times (the least disturbed by other load), the ratio to
`import pydantic`, and whether litellm was imported (it must not be: it costs seconds, the
reference row shows how many). Bytecode caching is on, as for a user. Goals: `import
orchestra` at most 0.25 s on an idle machine; no litellm on these paths.

    python benchmarks/startup.py [--repeat N]
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

PYTHON = sys.executable
ORCHESTRA = Path(sys.executable).with_name("orchestra")


def _env(journal: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "ORCHESTRA_JOURNAL": str(journal)}


def _best(command: list[str], env: dict[str, str], cwd: Path, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, env=env, cwd=cwd, capture_output=True, check=True)
        best = min(best, time.perf_counter() - start)
    return best


def _imports_litellm(command: list[str], env: dict[str, str], cwd: Path) -> bool:
    traced = [command[0], "-X", "importtime", *command[1:]] if command[0] == PYTHON else command
    env = {**env, "PYTHONPROFILEIMPORTTIME": "1"}
    done = subprocess.run(traced, env=env, cwd=cwd, capture_output=True, text=True, check=True)
    return any(line.rstrip().endswith(" litellm") for line in done.stderr.splitlines())


def main() -> None:
    """Measure and print one line per command, then `RESULT {json}`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per command (best is kept)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        cwd = Path(folder)
        env = _env(cwd / "runs.sqlite")
        events = cwd / "events.jsonl"
        subprocess.run(
            [str(ORCHESTRA), "run", "A task", "--time-scale", "0", "--events", str(events)],
            env=env,
            cwd=cwd,
            capture_output=True,
            check=True,
        )
        cases = {
            "python (nothing)": [PYTHON, "-c", "pass"],
            "import pydantic": [PYTHON, "-c", "import pydantic; from pydantic import BaseModel"],
            "import orchestra": [PYTHON, "-c", "import orchestra"],
            "orchestra --help": [str(ORCHESTRA), "--help"],
            "orchestra --version": [str(ORCHESTRA), "--version"],
            "orchestra models": [str(ORCHESTRA), "models"],
            "orchestra runs": [str(ORCHESTRA), "runs"],
            "orchestra report": [str(ORCHESTRA), "report", str(events), "-o", "r.html"],
            "import litellm (reference)": [PYTHON, "-c", "import litellm"],
        }
        times = {name: _best(command, env, cwd, args.repeat) for name, command in cases.items()}
        base = times["import pydantic"]
        print(f"{'command':28} {'best s':>8} {'/ pydantic':>11}  litellm imported")
        results: dict[str, float] = {}
        for name, command in cases.items():
            litellm = "-" if "litellm" in name else _imports_litellm(command, env, cwd)
            print(f"{name:28} {times[name]:8.3f} {times[name] / base:10.2f}x  {litellm}")
            results[name] = round(times[name], 3)
    print("RESULT " + json.dumps({"import_orchestra_s": results["import orchestra"], **results}))


if __name__ == "__main__":
    main()
