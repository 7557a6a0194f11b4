"""The graceful stop of a run on SIGINT or SIGTERM, for `orchestra run` and `orchestra resume`.

The first SIGINT or SIGTERM stops dispatching and cancels the calls in flight, which the
journal records as cancelled; the command prints how to resume and exits with 128 + the
signal's number. A second signal during that stop ends the process at once.
"""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import anyio

from orchestra._sync import run_sync
from orchestra.errors import JournalError, OrchestraError
from orchestra.journal.store import Journal, default_journal_path
from orchestra.results import RunResult

if TYPE_CHECKING:
    from orchestra.orchestra import Orchestra

__all__ = ["RunInterrupted", "journal_flag", "stop_on_signal", "until_signal"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)

T = TypeVar("T")


class RunInterrupted(OrchestraError):
    """A run was stopped by a signal; its journal holds everything that finished.

    `run_id` names the run, `signal` the signal's number; `exit_status` is the conventional
    128 + that number.

    Example:
        >>> RunInterrupted("stopped", run_id="r1", signum=2).exit_status
        130
    """

    def __init__(self, message: str, *, run_id: str, signum: int) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.signal = signum
        self.exit_status = 128 + signum


async def until_signal(start: Callable[[], Awaitable[T]]) -> T | int:
    """What `start()` returns, or the number of the signal (SIGINT, SIGTERM) that stopped
    it (`start` is cancelled then)."""
    outcome: list[T | int] = []
    error: list[Exception] = []
    async with anyio.create_task_group() as group:

        async def watch(*, task_status: anyio.abc.TaskStatus[None]) -> None:
            try:
                with anyio.open_signal_receiver(*_SIGNALS) as signals:
                    task_status.started()
                    async for signum in signals:
                        outcome.append(int(signum))
                        group.cancel_scope.cancel()
                        return
            except NotImplementedError:  # Windows: Ctrl-C stays a KeyboardInterrupt
                task_status.started()

        await group.start(watch)
        try:
            outcome.append(await start())
        except Exception as exc:  # raised below, never inside an ExceptionGroup
            error.append(exc)
        finally:
            group.cancel_scope.cancel()
    if outcome:
        return outcome[0]
    raise error[0]


def stop_on_signal(
    orch: Orchestra, start: Callable[[], Awaitable[RunResult]], *, run_id: str
) -> RunResult:
    """Run `start()` (a run of `orch` with id `run_id`) until it ends or a signal stops it.

    Raises:
        RunInterrupted: SIGINT or SIGTERM stopped the run; the message says how to resume.
        Whatever the run raises.
    """
    outcome = run_sync(lambda: until_signal(start), name="run")
    if isinstance(outcome, RunResult):
        return outcome
    name = signal.Signals(outcome).name
    if orch.journal is None:
        message = f"run {run_id} was stopped by {name}; the journal is off, so it cannot resume"
        raise RunInterrupted(message, run_id=run_id, signum=outcome)
    summary = ""
    try:
        record = orch.journal.run(run_id)
        nodes = orch.journal.nodes(run_id)
        cancelled = sum(n.status == "cancelled" and n.session == record.sessions for n in nodes)
        summary = (
            f"; {cancelled} call(s) in flight were cancelled and journaled, "
            f"{record.nodes_done} of {record.nodes_total} nodes are recorded"
        )
    except JournalError:
        pass  # stopped before the run was recorded: the plain message will do
    message = (
        f"run {run_id} was stopped by {name}{summary}.\n"
        f"resume it with: orchestra resume {run_id}{journal_flag(orch.journal)}"
    )
    raise RunInterrupted(message, run_id=run_id, signum=outcome)


def journal_flag(journal: Journal) -> str:
    """The `--journal` option a resume command needs (none for the default journal)."""
    default = default_journal_path()
    return "" if default is not None and default == journal.path else f" --journal {journal.path}"
