"""`orchestra map PLAN_FILE --inputs ROWS.jsonl`: run a plan once per row, results as JSON lines.

Each line of the inputs file is one run's inputs (a JSON object). Each line printed is one
run's result as it finishes — its index in the inputs, run id (`BATCH:INDEX`), status,
output, cost and error — so `> results.jsonl` keeps them; the summary goes to standard error,
with a progress bar on a terminal. A failed run is a line with its error, never the end of
the batch. The batch is journaled: `orchestra map --resume BATCH` finishes one that was
stopped or crashed (only its unfinished runs run). `--ray ADDRESS` runs the nodes on a Ray
cluster (needs the `ray` extra). See docs/scale.md.
"""

from __future__ import annotations

import argparse
import json
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import anyio

from orchestra._sync import run_sync
from orchestra.batches import MapStream
from orchestra.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    Commands,
    Terminal,
    build_orchestra,
    print_json,
    read_plan,
    say,
)
from orchestra.cli.signals import RunInterrupted, until_signal
from orchestra.errors import ConfigError
from orchestra.orchestra import Orchestra

if TYPE_CHECKING:
    from orchestra.execution.backends.ray import Ray

__all__ = ["read_rows", "register"]


def register(commands: Commands, common: argparse.ArgumentParser) -> None:
    """Add `map` to the `orchestra` command."""
    parser = commands.add_parser(
        "map",
        parents=[common],
        help="run a plan file once per row of a JSONL file; one JSON line per run",
    )
    parser.add_argument("plan", metavar="PLAN_FILE", nargs="?", help="the plan (JSON or TOML)")
    parser.add_argument(
        "--inputs", metavar="ROWS", help="a JSONL file: one JSON object of inputs per run"
    )
    parser.add_argument(
        "--concurrency", type=int, default=64, metavar="N", help="runs at a time (default 64)"
    )
    parser.add_argument("--batch-id", metavar="ID", help="name the batch (default: random)")
    parser.add_argument(
        "--resume", metavar="BATCH", help="finish this recorded batch (its unfinished runs)"
    )
    parser.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run the nodes on this Ray cluster: auto (started here with `ray start`), "
        "HOST:PORT, or ray://HOST:10001",
    )
    parser.set_defaults(handler=_map)


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """The runs' inputs: one JSON object per non-blank line of a JSONL file.

    Raises:
        ConfigError: the file is missing or empty, or a line is not a JSON object (the
            message names the line).
    """
    file = Path(path)
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ConfigError(f"inputs file {str(file)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read inputs file {file}: {exc}") from exc
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row: Any = json.loads(line)
        except ValueError as exc:
            raise ConfigError(f"{file} line {number} is not valid JSON: {exc}") from exc
        if not isinstance(row, dict):
            raise ConfigError(
                f'{file} line {number}: expected a JSON object of inputs such as {{"topic": '
                f'"GPUs"}}, not {type(row).__name__}'
            )
        rows.append(cast("dict[str, Any]", row))  # a JSON object's keys are strings
    if not rows:
        raise ConfigError(f"inputs file {file} holds no rows: write one JSON object per line")
    return rows


def _ray(address: str | None) -> Ray | None:
    """The Ray backend `--ray` asks for (Ray is imported only then)."""
    if address is None:
        return None
    from orchestra.execution.backends.ray import Ray

    try:
        return Ray(address=address)
    except ImportError as exc:
        raise ConfigError(str(exc)) from None


def _batch(args: argparse.Namespace, orch: Orchestra, backend: Ray | None) -> MapStream:
    """The batch to run (or finish), checked before anything runs."""
    if args.resume is not None:
        if args.plan is not None or args.inputs is not None or args.batch_id is not None:
            raise ConfigError(
                "--resume BATCH finishes a recorded batch with its own plan and inputs: give "
                "no PLAN_FILE, --inputs or --batch-id with it"
            )
        return orch.resume_map(args.resume, backend=backend)
    if args.plan is None or args.inputs is None:
        raise ConfigError(
            "say what to run: orchestra map PLAN_FILE --inputs ROWS.jsonl "
            "(or orchestra map --resume BATCH)"
        )
    if args.concurrency < 1:
        raise ConfigError(f"--concurrency must be at least 1, not {args.concurrency}")
    plan, rows = read_plan(args.plan), read_rows(args.inputs)
    return orch.map(
        plan, inputs=rows, concurrency=args.concurrency, batch_id=args.batch_id, backend=backend
    )


async def _print_runs(stream: MapStream, term: Terminal, backend: Ray | None) -> None:
    """Print each run as it finishes (then stop the Ray actors, if any)."""
    try:
        async with stream as runs:
            async for run in runs:
                index = int(run.run_id.rpartition(":")[2])
                print_json(
                    term.out,
                    {
                        "index": index,
                        "run_id": run.run_id,
                        "status": run.status,
                        "output": run.output,
                        "cost_usd": run.cost_usd,
                        "error": runs.errors.get(index),
                    },
                )
    finally:
        if backend is not None:
            with anyio.CancelScope(shield=True):
                await backend.close()


def _map(args: argparse.Namespace, term: Terminal) -> int:
    # Standard output holds only the runs' lines: the simulated-constellation notice goes to
    # standard error with the summary.
    orch = build_orchestra(args, Terminal(out=term.err, err=term.err), None)
    backend = _ray(args.ray)
    stream = _batch(args, orch, backend)
    stopped = run_sync(lambda: until_signal(lambda: _print_runs(stream, term, backend)), name="map")
    if stopped is not None:
        name = signal.Signals(stopped).name
        raise RunInterrupted(
            f"batch {stream.batch_id} was stopped by {name}; what finished is journaled.\n"
            f"finish it with: orchestra map --resume {stream.batch_id}",
            run_id=stream.batch_id,
            signum=stopped,
        )
    before = f" ({stream.finished_before} finished before)" if stream.finished_before else ""
    say(
        term.err,
        f"batch {stream.batch_id}: {stream.succeeded} succeeded, {stream.failed} failed"
        f"{before}, ${stream.cost_usd:.6f}",
    )
    return EXIT_OK if stream.failed == 0 else EXIT_FAILED
