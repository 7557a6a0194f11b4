"""`RunRecorder`: the one writer of a run's journal records, for one session of the run.

The Orchestra opens a recorder when a run starts (or resumes) and subscribes it as an event
sink; the scheduler runs every node through `RunRecorder.wrap`. The order of writes is the
guarantee:

1. before a node's model call, its dispatch is committed as `started` with its attempt number
   and idempotency key; if that commit fails, the node makes no call and the run stops;
2. its result is committed with the journal's next commit: the open batch's, or one it opens
   that the dispatches it frees join a few passes of the event loop later, so no dependent's
   call goes out before the result it reads is durable; the scheduler learns of the result at
   once;
3. a node cancelled in flight (a signal, a deadline) is committed as `cancelled`.

Commits are grouped: the dispatches of a few passes of the event loop share one, with the
results waiting and the buffered events (a commit costs the loop about a millisecond under
load, a node's two records would otherwise cost two). A journal that fails a write is
`broken`: no further node starts, and the run raises `JournalError` with the work that
finished.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import datetime

import anyio
import anyio.lowlevel

from orchestra._clock import utc_stamp
from orchestra.agents import Agent
from orchestra.errors import BudgetExceeded, JournalError, NodeFailed
from orchestra.events import (
    PLAN_TASK,
    Event,
    MapExpanded,
    ModelCalled,
    NodeFinished,
    RunFinished,
)
from orchestra.execution.scheduler import RunNode
from orchestra.execution.work import NodeOutcome, NodeWork
from orchestra.journal import rows
from orchestra.journal.cache import Cache, ResponseCache
from orchestra.journal.lease import HEARTBEAT_SECONDS, Lease
from orchestra.journal.resume import StoredRun
from orchestra.journal.sessions import new_run, take_run
from orchestra.journal.store import Journal
from orchestra.models.budget import Budget
from orchestra.models.constellation import Constellation
from orchestra.plan import Plan, Task
from orchestra.results import NodeResult, RunResult, Usage

__all__ = ["RunRecorder"]


def _open_cache(cache: Cache | None) -> ResponseCache | None:
    if cache is None or cache.path is None:
        return None
    return ResponseCache(cache.path, ttl=cache.ttl, timeout=cache.timeout)


# Group commit, counted in passes of the event loop (so it scales with how busy the loop is:
# microseconds when it idles, a few milliseconds under a thousand instant calls). A dispatch
# waits this many passes for others to share its commit: each commit costs the loop 1-4 ms
# under load (timed inside a run; 0.15 ms alone), and nodes freed by results
# arriving one by one would otherwise commit alone. A result with no batch open opens one,
# which the dispatches it frees join: they reach the journal about three passes after it
# (scheduler, runner, recorder). Sixteen passes rather than eight: about 60 commits instead
# of 100 for a thousand instant calls, 3-4% less time (ten interleaved runs, three times).
_GROUP_PASSES = 16


@dataclass
class _Batch:
    """Records committed together: those queued within `_GROUP_PASSES` passes."""

    done: anyio.Event = field(default_factory=anyio.Event)
    error: JournalError | None = None


class RunRecorder:
    """Records one session of one run (see the module docstring); also the run's event sink."""

    def __init__(
        self,
        *,
        run_id: str,
        journal: Journal | None,
        conn: sqlite3.Connection | None,
        lease: Lease | None,
        cache: Cache | None,
        store: ResponseCache | None,
        stored: StoredRun | None = None,
        cost_usd: float = 0.0,
    ) -> None:
        self.run_id = run_id
        self.journal = journal
        self.broken: JournalError | None = None
        """Why the journal stopped accepting writes (None while it works)."""
        self._conn = conn
        self._lease = lease
        self._cache_config = cache
        self._cache = store
        self._session = stored.sessions if stored is not None else 1
        self._previous = stored.status if stored is not None else None
        self._attempts: dict[str, int] = dict(stored.attempts) if stored is not None else {}
        self._replay = dict(stored.replay) if stored is not None else {}
        self._results: dict[str, NodeResult] = dict(stored.results) if stored else {}
        self._last_plan = stored.plan.model_dump_json() if stored and stored.plan else None
        self._tasks: dict[str, Task] = (
            {t.id: t for t in stored.plan.tasks} if stored and stored.plan else {}
        )
        self._planning = stored.planning if stored is not None else Usage()
        self._cost = cost_usd
        # Events are serialised when committed, all at once: one by one, amid a run's other
        # work, each cost several times more (they are frozen, so what is written is what was
        # emitted).
        self._events: list[Event] = []
        self._wrapped: set[str] = set()
        self._expanded: dict[str, int] = {}
        self._finished: RunFinished | None = None
        self._batch: _Batch | None = None
        # Dispatches and ends are serialised at their commit too, all at once.
        self._started: list[rows.Dispatch] = []
        self._ended: list[rows.End] = []
        self._settling = anyio.Event()

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def begin(
        cls,
        *,
        journal: Journal | None,
        cache: Cache | None,
        run_id: str,
        task: str | None,
        inputs: Mapping[str, str],
        models: Constellation,
        agents: Iterable[Agent],
        budget: Budget,
        started: datetime,
    ) -> RunRecorder:
        """Record a new run and take its lease (and open the response cache).

        Raises:
            JournalError: the journal cannot be written, or already holds `run_id`.
        """
        store = _open_cache(cache)
        if journal is None:
            return cls(run_id=run_id, journal=None, conn=None, lease=None, cache=cache, store=store)
        try:
            conn, lease = new_run(journal, run_id, task, inputs, models, agents, budget, started)
        except BaseException:
            if store is not None:
                store.close()
            raise
        return cls(run_id=run_id, journal=journal, conn=conn, lease=lease, cache=cache, store=store)

    @classmethod
    def resume(
        cls, *, journal: Journal, cache: Cache | None, run_id: str
    ) -> tuple[RunRecorder, StoredRun]:
        """Take the lease of a recorded run and load it (and open the response cache).

        Raises:
            JournalError: no such run, another live process holds it, or the journal
                cannot be written.
        """
        conn, lease, stored, cost = take_run(journal, run_id)
        try:
            store = _open_cache(cache)  # only once the run is known: no stray cache file
        except BaseException:
            with suppress(sqlite3.Error):
                lease.release(conn, run_id)
            conn.close()
            raise
        stored = replace(stored, sessions=stored.sessions + 1)
        recorder = cls(
            run_id=run_id,
            journal=journal,
            conn=conn,
            lease=lease,
            cache=cache,
            store=store,
            stored=stored,
            cost_usd=cost,
        )
        return recorder, stored

    # -- writing ---------------------------------------------------------------------------

    def _break(self, exc: BaseException) -> JournalError:
        path = str(self.journal.path) if self.journal is not None else None
        if self.broken is None:
            self.broken = JournalError(
                f"journal {path!r} could not be written ({exc}); run {self.run_id!r} stopped "
                "before its next model call. Once the journal is writable again, resume it "
                f"with `orchestra resume {self.run_id}`",
                run_id=self.run_id,
                path=path,
            )
        return self.broken

    @contextmanager
    def _transaction(self) -> Generator[sqlite3.Connection, None, None]:
        """One commit with the queued dispatches and ends and the buffered events (in that
        order); a failure breaks the journal.

        Raises:
            JournalError: the commit failed.
        """
        conn = self._conn
        if conn is None:
            raise JournalError("no journal connection")  # callers check; never reached
        try:
            started = [d.row(self.run_id, self._session) for d in self._started]
            ended = [end.row(self.run_id, self._session) for end in self._ended]
            events = [rows.event_row(event) for event in self._events]
        except ValueError as exc:  # a record that cannot be serialised: a bug below
            raise self._break(exc) from exc
        try:
            conn.execute("BEGIN")
            try:
                rows.insert(conn, rows.STARTED, started)
                rows.insert(conn, rows.ENDED, ended)
                rows.insert(conn, rows.EVENT_ROWS, events)
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._break(exc) from exc
        self._started.clear()
        self._ended.clear()
        self._events.clear()

    def _flush(self) -> None:
        """Commit what is queued (dispatches, ends, events) and nothing more."""
        with self._transaction():
            pass

    def _run_totals(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "UPDATE runs SET cost_usd = ?, planning = ?, updated = ? WHERE run_id = ?",
            (self._cost, self._planning.model_dump_json(), utc_stamp(), self.run_id),
        )

    def record_plan(self, plan: Plan, *, failed_task: str | None = None) -> None:
        """Record a plan (or, with `failed_task`, a replan merged into the plan so far)."""
        self._tasks.update({t.id: t for t in plan.tasks})
        encoded = plan.model_dump_json()
        if self._conn is None or encoded == self._last_plan:
            return  # a resumed run announces its stored plan again
        self._last_plan = encoded
        try:
            with self._transaction() as conn:
                conn.execute(
                    "INSERT INTO plans (run_id, seq, plan, reason, failed_task, at) VALUES "
                    "(?, (SELECT count(*) FROM plans WHERE run_id = ?), ?, ?, ?, ?)",
                    (
                        self.run_id,
                        self.run_id,
                        encoded,
                        "plan" if failed_task is None else "replan",
                        failed_task,
                        utc_stamp(),
                    ),
                )
                self._run_totals(conn)
        except JournalError:
            pass  # broken: the next node start fails fast

    def _dispatch(self, task: Task) -> tuple[int, str]:
        """Queue the node's next dispatch for the next commit; returns its attempt and
        idempotency key."""
        if self.broken is not None:
            raise self.broken
        attempt = self._attempts.get(task.id, 0) + 1
        self._attempts[task.id] = attempt
        key = f"{self.run_id}:{task.id}:{attempt}"
        if self._conn is not None:
            self._started.append(rows.Dispatch(task, attempt, key, utc_stamp()))
        return attempt, key

    def _start(self, task: Task) -> tuple[int, str]:
        """Commit the node's dispatch at once; returns its attempt and key."""
        attempt, key = self._dispatch(task)
        if self._conn is not None:
            self._flush()
        return attempt, key

    async def _commit(self) -> None:
        """Commit the queued dispatches with every other one queued within `_GROUP_PASSES`
        passes of the event loop, and the results waiting to be settled: the nodes dispatched
        together share one commit.

        Raises:
            JournalError: the commit failed.
        """
        if self._conn is None:
            return
        batch = self._batch
        if batch is not None:
            await batch.done.wait()
        else:
            batch = self._batch = _Batch()
            # Let the others queue theirs; a cancellation must not strand them.
            for _ in range(_GROUP_PASSES):
                await anyio.lowlevel.cancel_shielded_checkpoint()
            self._batch = None
            try:
                self._flush()
            except JournalError as exc:
                batch.error = exc
            except Exception as exc:  # a bug below: the rows are not known to be committed
                batch.error = self._break(exc)
            batch.done.set()
        if batch.error is not None:
            raise batch.error

    def _end(self, task_id: str, attempt: int, result: NodeResult | None, status: str) -> None:
        """Queue how a dispatch ended (`result` None for a cancelled one) for the next commit."""
        if result is not None:
            self._cost += result.cost_usd
        if self._conn is None:
            return
        self._ended.append(rows.End(task_id, attempt, status, result, utc_stamp()))

    def _settle(self, task_id: str, attempt: int, result: NodeResult | None, status: str) -> None:
        """Commit how a dispatch ended, at once."""
        self._end(task_id, attempt, result, status)
        if self._conn is not None:
            self._flush()

    def _settle_later(self, task_id: str, attempt: int, result: NodeResult, status: str) -> None:
        """Queue how a dispatch ended for the next commit (every commit writes the queued
        ends): the dispatch its result frees carries it, so a dependent's call never goes out
        before the result it reads is durable; `_settler` commits what no dispatch carried."""
        if self._conn is not None and not self._ended:
            self._settling.set()
        self._end(task_id, attempt, result, status)

    async def _settler(self) -> None:
        """Commit the queued results that no dispatch carries: they join the open batch, or
        open one that the dispatches of the next `_GROUP_PASSES` passes join (runs beside the
        session's body, see `guard`). A batch's passes are its opener's alone: a task ready at
        every pass keeps the loop from sleeping while threads do the run's other work, and
        takes the GIL back from them each time."""
        while True:
            await self._settling.wait()
            self._settling = anyio.Event()
            if self._ended:
                with suppress(JournalError):  # broken: the next node start fails fast
                    await self._commit()

    def wrap(self, run_node: RunNode) -> RunNode:
        """`run_node` with its dispatch and result recorded around it (see the module doc);
        the dispatch gets its idempotency key and attempt number from the journal."""

        async def run(work: NodeWork) -> NodeOutcome:
            task = work.task
            self._wrapped.add(task.id)
            self._tasks.setdefault(task.id, task)
            replayed = self._replay.pop(task.id, None)
            if replayed is not None and replayed[0] == task:
                self._results[task.id] = replayed[1]
                # Recorded before: no call, no new record, and its cost counted already.
                return NodeOutcome(replayed[1], counted=True)
            attempt, key = self._dispatch(task)
            await self._commit()
            try:
                outcome = await run_node(replace(work, key=key, attempt=attempt))
            except BaseException as exc:
                # Cancelled in flight (a signal, the deadline), or a bug below: no result is
                # recorded, so a resume runs the node again.
                status = "failed" if isinstance(exc, Exception) else "cancelled"
                with suppress(JournalError):
                    self._settle(task.id, attempt, None, status)
                raise
            result = outcome.result
            status = "succeeded" if result.ok else "failed"
            self._settle_later(task.id, attempt, result, status)
            if result.ok:
                self._results[task.id] = result
            return outcome

        return run

    @property
    def cache(self) -> ResponseCache | None:
        """The response cache opened for this session (None: no cache)."""
        return self._cache

    def caches(self, agent: str) -> bool:
        """Whether the response cache applies to `agent`'s calls."""
        return self._cache_config is None or self._cache_config.applies_to(agent)

    # -- the event sink ----------------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        """Take one event (the sink's entry point); never raises."""
        if event.run_id != self.run_id:
            return
        try:
            if self._conn is not None:
                self._events.append(event)
            if isinstance(event, ModelCalled) and event.task_id == PLAN_TASK:
                usage = Usage.of(
                    event.model,
                    input_tokens=event.input_tokens,
                    output_tokens=event.output_tokens,
                    cost_usd=event.cost_usd,
                )
                self._planning = self._planning + usage
                self._cost += event.cost_usd
            elif isinstance(event, MapExpanded):
                self._expanded[event.task_id] = event.items
            elif isinstance(event, NodeFinished) and event.task_id not in self._wrapped:
                self._join(event)
            elif isinstance(event, RunFinished):
                self._finished = event
                self._cost = event.cost_usd
        except JournalError:
            pass  # broken: the next node start fails fast
        except Exception as exc:  # a sink must not raise; a journal that cannot record stops
            self._break(exc)

    def _join(self, event: NodeFinished) -> None:
        """Record a node the scheduler settled itself: a map task's join (or its failure)."""
        kids = [f"{event.task_id}__{i}" for i in range(self._expanded.get(event.task_id, 0))]
        task = self._tasks.get(event.task_id)
        agent = task.agent if task is not None else ""
        if event.error is None and all(k in self._results for k in kids):
            result = NodeResult(
                task_id=event.task_id,
                agent=agent,
                output=[self._results[k].output for k in kids],
                started=event.at,
                finished=event.at,
            )
            self._results[event.task_id] = result
        else:
            result = NodeResult(
                task_id=event.task_id,
                agent=agent,
                started=event.at,
                finished=event.at,
                error=event.error or "a map item failed",
            )
        if task is None or self._conn is None:
            return
        attempt, _ = self._start(task)
        self._settle(event.task_id, attempt, result, "succeeded" if result.ok else "failed")

    # -- the session -----------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        while True:
            await anyio.sleep(HEARTBEAT_SECONDS)
            if self._conn is None or self._lease is None or self.broken is not None:
                return
            try:
                with self._transaction() as conn:
                    if not self._lease.renew(conn, self.run_id):
                        raise sqlite3.OperationalError("the run's lease was taken over")
            except JournalError:
                return

    async def guard(self, body: Callable[[], Awaitable[RunResult]]) -> RunResult:
        """Run the session's body, renewing the lease meanwhile; record how it ended.

        Raises:
            JournalError: the journal broke during the run (`.result` holds what finished).
            Whatever the body raises, as it raised it (never in an ExceptionGroup).
        """
        result: RunResult | None = None
        error: Exception | None = None
        try:
            async with anyio.create_task_group() as group:
                if self._conn is not None:
                    group.start_soon(self._heartbeat)
                    group.start_soon(self._settler)
                try:
                    result = await body()
                except Exception as exc:  # raised below, never into the task group
                    error = exc
                finally:
                    group.cancel_scope.cancel()
        finally:
            broken = self.broken
            self._close(stopped=result is None and error is None)
        if broken is not None:
            partial = result
            if isinstance(error, NodeFailed | BudgetExceeded):
                partial = error.result
            raise JournalError(
                str(broken), run_id=self.run_id, path=broken.path, result=partial
            ) from error
        if error is not None:
            raise error
        if result is None:  # pragma: no cover - body returned or raised
            raise RuntimeError("the run returned no result")
        return result

    def abandon(self) -> None:
        """Give a resumed run back untouched (its stored plan did not fit): the status it had,
        the lease released."""
        conn = self._conn
        if conn is None or self._previous is None:
            self._close(stopped=True)
            return
        try:
            with self._transaction() as writing:
                writing.execute(
                    "UPDATE runs SET status = ?, sessions = sessions - 1 WHERE run_id = ?",
                    (self._previous, self.run_id),
                )
                if self._lease is not None:
                    self._lease.release(writing, self.run_id)
        except JournalError:
            pass
        finally:
            self._conn = None
            if self._lease is not None:
                self._lease.release(None, self.run_id)
            conn.close()
            if self._cache is not None:
                self._cache.close()

    def _close(self, *, stopped: bool) -> None:
        """Record the run's status, release its lease, close the connections."""
        if self._cache is not None:
            self._cache.close()
        conn = self._conn
        if conn is None:
            return
        status = self._finished.status if self._finished is not None else None
        status = status or ("stopped" if stopped else "failed")
        try:
            with self._transaction() as writing:
                writing.execute(
                    "UPDATE runs SET status = ?, finished = ?, updated = ?, cost_usd = ?, "
                    "planning = ? WHERE run_id = ?",
                    (
                        status,
                        utc_stamp(),
                        utc_stamp(),
                        self._cost,
                        self._planning.model_dump_json(),
                        self.run_id,
                    ),
                )
                if self._lease is not None:
                    self._lease.release(writing, self.run_id)
        except JournalError:
            pass  # the run shows as interrupted; resuming it completes the record
        finally:
            self._conn = None
            if self._lease is not None:
                self._lease.release(None, self.run_id)
            conn.close()
