"""Batches: one plan (or one boss-planned task) per input, many runs at a time.

`Orchestra.map(work, inputs=rows)` runs `work` once per row: a `Plan` through `execute`, a
task in words through `run` (the boss plans each). Not to be confused with a plan's map
*node* (`Task(map=...)`, see `orchestra.execution.mapping`), which fans one task out over a
list *inside* one run: a batch is many whole runs.

- Each run is an ordinary journaled run under the id `BATCH:INDEX` (the index from 0, in
  input order). Runs start in input order, at most `concurrency` at a time, and are yielded
  as they finish.
- A run that fails (a node failed for good, its budget ran out, the boss gave no plan) is
  reported, never fatal to the batch: it comes out as a `RunResult` with status `failed` or
  `budget_exceeded` (the partial result, every finished node kept) and its error is in
  `MapResult.errors`.
- The batch (what its runs run, and every run's inputs) is recorded before its first run
  starts (`orchestra.journal.batches`), so after a crash `Orchestra.resume_map(batch_id)`
  finishes it: runs that succeeded (or failed, unless `retry_failed`) are not run again;
  runs in flight at the crash are resumed from their journal (their finished nodes kept);
  runs never started start.

The results come through a `MapStream`. Enter it with `async with`: leaving the block early
cancels the runs in flight (journaled as stopped; `resume_map` continues them). A plain
`async for` over it works too, when iterated to the end (a plain async iterator cannot
hold its runs' task group safely across an early `break`, PEP 789).
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, final, overload

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from orchestra._clock import utc_now
from orchestra._groups import close_group, open_group
from orchestra.errors import ConfigError, JournalError, OrchestraError, PlanError
from orchestra.execution.runner import as_text
from orchestra.journal.batches import BatchBook, index_of, run_id_of
from orchestra.models.budget import Budget
from orchestra.plan import Plan
from orchestra.results import RunResult, Usage
from orchestra.validation import validate_plan

if TYPE_CHECKING:
    from orchestra.observe.progress import MapProgress
    from orchestra.orchestra import Orchestra

__all__ = ["BatchRun", "MapResult", "MapStream", "collect", "resume_batch", "start_batch"]

DEFAULT_CONCURRENCY = 16
"""Runs in flight at a time when `map` is not told."""


@dataclass(frozen=True)
class BatchRun:
    """One run of a batch: its index, run id and inputs, and whether it resumes a run the
    journal holds (rather than starting one)."""

    index: int
    run_id: str
    inputs: Mapping[str, Any]
    resume: bool = False


@final
class MapResult(Sequence[RunResult]):
    """How a batch (or one session of it) went: the runs in input order, and the summary.

    It is a sequence of `RunResult`s in input order (`results[0]`, `len(results)`); a failed
    run is there too, with status `failed` or `budget_exceeded`. After `resume_map` it holds
    the runs of that session; `finished_before` counts those that had finished earlier.
    """

    def __init__(
        self,
        *,
        batch_id: str,
        runs: Mapping[int, RunResult],
        errors: Mapping[int, str],
        finished_before: int = 0,
    ) -> None:
        self.batch_id = batch_id
        """The batch's id: its runs are recorded as `BATCH:INDEX`."""
        self.runs: dict[int, RunResult] = dict(sorted(runs.items()))
        """Each run's result by its index in the inputs."""
        self.errors: dict[int, str] = dict(sorted(errors.items()))
        """Why each failed run failed, by index."""
        self.finished_before = finished_before
        """Runs finished in earlier sessions of the batch, not run again."""
        self._ordered = tuple(self.runs.values())

    @property
    def succeeded(self) -> int:
        """Runs that succeeded."""
        return sum(r.status == "succeeded" for r in self._ordered)

    @property
    def failed(self) -> int:
        """Runs that failed or ran out of budget."""
        return len(self._ordered) - self.succeeded

    @property
    def usage(self) -> Usage:
        """Tokens and USD of every run, total and per model."""
        total = Usage()
        for result in self._ordered:
            total = total + result.usage
        return total

    @property
    def cost_usd(self) -> float:
        """USD spent by every run."""
        return sum(r.cost_usd for r in self._ordered)

    def __len__(self) -> int:
        return len(self._ordered)

    @overload
    def __getitem__(self, index: int) -> RunResult: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[RunResult]: ...
    def __getitem__(self, index: int | slice) -> RunResult | Sequence[RunResult]:
        return self._ordered[index]

    def __iter__(self) -> Iterator[RunResult]:
        return iter(self._ordered)

    def __repr__(self) -> str:
        return (
            f"MapResult(batch_id={self.batch_id!r}, succeeded={self.succeeded}, "
            f"failed={self.failed}, cost_usd={self.cost_usd:.6f})"
        )


@dataclass(frozen=True)
class _Session:
    """What one session of a batch runs: its runs and how, and the batch's journal record."""

    runs: Sequence[BatchRun]
    run: Callable[[BatchRun], Awaitable[RunResult]]
    """Runs one run of the batch and returns its result (raising when it failed)."""
    concurrency: int
    size: int
    """Runs in the whole batch."""
    finished_before: int
    book: BatchBook | None


def _failed(run: BatchRun, exc: Exception, started: datetime) -> RunResult:
    """The result a failed run is reported with: its partial result when the error carries
    one, else an empty failed run."""
    partial: RunResult | None = getattr(exc, "result", None)
    if isinstance(partial, RunResult):
        if partial.status == "succeeded":  # the work finished, but the journal broke
            return partial.model_copy(update={"status": "failed"})
        return partial
    return RunResult(
        run_id=run.run_id,
        status="failed",
        plan=None,
        nodes={},
        usage=Usage(),
        started=started,
        finished=utc_now(),
    )


def _describe(exc: Exception) -> str:
    return str(exc) if isinstance(exc, OrchestraError) else f"{type(exc).__name__}: {exc}"


@final
class MapStream:
    """The runs of a batch as they finish (see the module docstring).

        async with orch.map(plan, inputs=rows, concurrency=64) as results:
            async for result in results:
                ...
        print(results.succeeded, results.failed, results.cost_usd, results.errors)

    The stream keeps counts, not results (a batch may have millions of runs); `map_sync`
    collects them into a `MapResult`.

    Args:
        batch_id: the batch's id.
        open_session: records the batch (or takes it over) and says what to run; called
            when the stream is entered.
        progress: draw a progress bar (None: when standard error is a terminal).
    """

    def __init__(
        self,
        *,
        batch_id: str,
        open_session: Callable[[], _Session],
        progress: bool | None = None,
    ) -> None:
        self.batch_id = batch_id
        """The batch's id: its runs are recorded as `BATCH:INDEX`."""
        self.succeeded = 0
        """Runs of this session that succeeded so far."""
        self.failed = 0
        """Runs of this session that failed or ran out of budget so far."""
        self.cost_usd = 0.0
        """USD spent by this session's runs so far."""
        self.errors: dict[int, str] = {}
        """Why each failed run failed, by index."""
        self.finished_before = 0
        """Runs finished in earlier sessions of the batch (known once entered)."""
        self._open = open_session
        self._progress = progress
        self._send: MemoryObjectSendStream[RunResult] | None = None
        self._receive: MemoryObjectReceiveStream[RunResult] | None = None
        self._error: Exception | None = None
        self._group: TaskGroup | None = None
        self._used = False
        self._plain = False

    def _bar(self, session: _Session) -> MapProgress | None:
        if self._progress is False or not session.runs:
            return None
        # rich comes with a progress bar, not with `import orchestra`.
        from orchestra.observe.progress import MapProgress

        if self._progress is None and not MapProgress.wanted():
            return None
        return MapProgress(total=session.size, done=session.finished_before, label=self.batch_id)

    async def _one(
        self,
        session: _Session,
        run: BatchRun,
        slots: anyio.Semaphore,
        bar: MapProgress | None,
        send: MemoryObjectSendStream[RunResult],
    ) -> None:
        started = utc_now()
        try:
            result = await session.run(run)
        except Exception as exc:  # reported as this run's failure; the batch goes on
            result = _failed(run, exc, started)
            self.errors[run.index] = _describe(exc)
        finally:
            slots.release()
        ok = result.status == "succeeded"
        self.succeeded += ok
        self.failed += not ok
        self.cost_usd += result.cost_usd
        if bar is not None:
            bar.advance(ok=ok, cost_usd=result.cost_usd)
        send.send_nowait(result)

    async def _drive(self, session: _Session, send: MemoryObjectSendStream[RunResult]) -> None:
        bar = self._bar(session)
        try:
            with send:
                if bar is not None:
                    bar.__enter__()
                async with anyio.create_task_group() as group:
                    if session.book is not None:
                        group.start_soon(session.book.heartbeat)
                    slots = anyio.Semaphore(session.concurrency)
                    async with anyio.create_task_group() as runs:
                        for run in session.runs:
                            await slots.acquire()  # at most `concurrency` runs exist at once
                            runs.start_soon(self._one, session, run, slots, bar, send)
                    group.cancel_scope.cancel()  # the heartbeat
        except Exception as exc:  # handed to the reader, never to the task group
            self._error = exc
        finally:
            if bar is not None:
                bar.__exit__(None, None, None)
            if session.book is not None:
                session.book.close()

    async def __aenter__(self) -> MapStream:
        if self._used:
            raise RuntimeError("a MapStream runs once; call map() or resume_map() again")
        self._used = True
        session = self._open()  # raises before any run starts: no such batch, a busy journal
        self.finished_before = session.finished_before
        send, self._receive = anyio.create_memory_object_stream[RunResult](math.inf)
        self._group = await open_group()
        self._group.start_soon(self._drive, session, send)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        group, self._group = self._group, None
        try:
            if group is None:
                return None
            return await close_group(group, exc_type, exc, tb)  # stops runs left in flight
        finally:
            if self._receive is not None:
                self._receive.close()

    def __aiter__(self) -> MapStream:
        if not self._used:
            self._plain = True  # entered by the first __anext__, left at the end
        return self

    async def __anext__(self) -> RunResult:
        if self._plain and not self._used:
            await self.__aenter__()
        if self._receive is None:
            raise TypeError(
                "enter the batch before iterating: "
                "`async with orch.map(...) as results: async for result in results: ...`"
            )
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            if self._plain:
                await self.__aexit__(None, None, None)
            error, self._error = self._error, None
            if error is not None:
                raise error from None
            raise StopAsyncIteration from None


async def collect(stream: MapStream) -> MapResult:
    """Run a batch to the end and gather its runs (what `map_sync` returns)."""
    runs: dict[int, RunResult] = {}
    async with stream:
        async for result in stream:
            runs[index_of(result.run_id)] = result
    return MapResult(
        batch_id=stream.batch_id,
        runs=runs,
        errors=stream.errors,
        finished_before=stream.finished_before,
    )


def _check_batch_id(batch_id: str | None) -> str:
    if batch_id is None:
        return uuid.uuid4().hex[:12]
    if not batch_id or batch_id != batch_id.strip():
        raise ConfigError(
            f"batch_id {batch_id!r} must be a non-empty name without surrounding spaces"
        )
    return batch_id


def _check_concurrency(concurrency: int) -> int:
    if concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1 run at a time, not {concurrency}")
    return concurrency


def _rows(inputs: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    if isinstance(inputs, Mapping):
        raise ConfigError(
            "inputs must be a list of mappings, one per run (e.g. [{'topic': 'GPUs'}, ...]), "
            "not one mapping"
        )
    rows = list(inputs)
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ConfigError(
                f"inputs[{index}] is a {type(row).__name__}, not a mapping of input names to "
                "values; give one mapping per run, e.g. {'topic': 'GPUs'}"
            )
        names = [name for name in row if not isinstance(name, str)]  # pyright: ignore[reportUnnecessaryIsInstance]
        if names:
            raise ConfigError(f"inputs[{index}] has names that are not strings: {names!r}")
    return rows


def _validate(orch: Orchestra, plan: Plan, rows: Sequence[Mapping[str, Any]]) -> None:
    """Check the plan against every distinct set of input names, before any run starts."""
    checked: set[frozenset[str]] = set()
    for index, row in enumerate(rows):
        names = frozenset(row)
        if names in checked:
            continue
        checked.add(names)
        try:
            validate_plan(plan, agents=orch.agents.keys(), models=orch.models.names, inputs=names)
        except PlanError as exc:
            raise PlanError(
                f"the plan cannot run on inputs[{index}]: {exc}",
                task_id=exc.task_id,
                problems=exc.problems,
            ) from exc


def _runner(
    orch: Orchestra, work: Plan | str, budget: Budget | None
) -> Callable[[BatchRun], Awaitable[RunResult]]:
    async def run(one: BatchRun) -> RunResult:
        if one.resume:
            return await orch.resume(one.run_id, budget=budget)
        if isinstance(work, Plan):
            return await orch.execute(work, inputs=one.inputs, run_id=one.run_id, budget=budget)
        return await orch.run(work, inputs=one.inputs, run_id=one.run_id, budget=budget)

    return run


def start_batch(
    orch: Orchestra,
    work: Plan | str,
    *,
    inputs: Iterable[Mapping[str, Any]],
    concurrency: int,
    batch_id: str | None,
    budget: Budget | None,
    progress: bool | None,
) -> MapStream:
    """The stream of a new batch (see `Orchestra.map`); the batch is recorded when entered.

    Raises:
        ConfigError: bad inputs, concurrency or batch id; a task in words without a boss.
        PlanError: the plan cannot run on some row of inputs (no run started).
    """
    batch_id = _check_batch_id(batch_id)
    _check_concurrency(concurrency)
    rows = _rows(inputs)
    if isinstance(work, Plan):
        _validate(orch, work, rows)
    elif orch.boss is None:
        raise ConfigError(
            "map() was given a task in words but this Orchestra has no boss model to plan "
            "it; pass boss=<spec name>, or map a Plan"
        )
    runs = [BatchRun(i, run_id_of(batch_id, i), row) for i, row in enumerate(rows)]

    def open_session() -> _Session:
        book = None
        if orch.journal is not None:
            book = BatchBook.begin(
                journal=orch.journal,
                batch_id=batch_id,
                work=work,
                inputs=[{k: as_text(v) for k, v in row.items()} for row in rows],
                budget=budget,
                concurrency=concurrency,
            )
        return _Session(
            runs=runs,
            run=_runner(orch, work, budget),
            concurrency=concurrency,
            size=len(runs),
            finished_before=0,
            book=book,
        )

    return MapStream(batch_id=batch_id, open_session=open_session, progress=progress)


def resume_batch(
    orch: Orchestra,
    batch_id: str,
    *,
    concurrency: int | None,
    budget: Budget | None,
    retry_failed: bool,
    progress: bool | None,
) -> MapStream:
    """The stream that finishes a recorded batch (see `Orchestra.resume_map`); the batch is
    taken over when the stream is entered.

    Raises:
        ConfigError: a bad concurrency.
        JournalError: no journal; when entered: no such batch, another process drives it.
    """
    if concurrency is not None:
        _check_concurrency(concurrency)
    journal = orch.journal
    if journal is None:
        raise JournalError(
            "this Orchestra records no runs (journal=None), so it has no batch to resume; "
            "give it the journal the batch was recorded in"
        )

    def open_session() -> _Session:
        book, stored = BatchBook.resume(journal=journal, batch_id=batch_id)
        todo = {"new", "resume", "failed"} if retry_failed else {"new", "resume"}
        runs = [
            BatchRun(i, run_id_of(batch_id, i), stored.inputs[i], resume=state != "new")
            for i, state in enumerate(stored.states)
            if state in todo
        ]
        work = stored.plan if stored.plan is not None else stored.task or ""
        return _Session(
            runs=runs,
            run=_runner(orch, work, budget or stored.budget),
            concurrency=concurrency or stored.concurrency,
            size=len(stored.states),
            finished_before=len(stored.states) - len(runs),
            book=book,
        )

    return MapStream(batch_id=batch_id, open_session=open_session, progress=progress)
