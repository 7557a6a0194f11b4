"""The events of one run as an async iterator, for `Orchestra.stream`.

    async with orch.stream("Compare small and large models") as events:
        async for event in events:
            ...
    result = events.result

The run is a task of a task group that lives exactly as long as the `async with` block, so no
task outlives it: leaving the block early (a `break`, an exception) cancels the run. Events
reach the iterator through an unbounded anyio memory stream, so the run never waits for a slow
reader. The run's error (`NodeFailed`, `BudgetExceeded`, `PlanError`...) is raised by the
iteration once every event before it was delivered; the caller never sees an ExceptionGroup.

A plain async generator cannot give these guarantees: it would hold the task group open
across `yield`, and a consumer that stops iterating leaves it open in the wrong task (PEP 789).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from contextlib import suppress
from types import TracebackType
from typing import TYPE_CHECKING, final

import anyio
from anyio.abc import TaskGroup

from orchestra._groups import close_group, open_group
from orchestra.events import Event, Subscribers

if TYPE_CHECKING:
    from orchestra.results import RunResult

__all__ = ["EventStream"]


@final
class EventStream:
    """The events of one run, in order (see the module docstring).

    Args:
        start: starts the run and returns its result.
        sinks: the subscribers to join while the run goes on (left afterwards).
        run_id: the run's id; events of other runs are ignored.
    """

    def __init__(
        self, start: Callable[[], Awaitable[RunResult]], *, sinks: Subscribers, run_id: str
    ) -> None:
        self.run_id = run_id
        self.result: RunResult | None = None
        """The run's result, once it finished without error."""
        self._start = start
        self._sinks = sinks
        self._send, self._receive = anyio.create_memory_object_stream[Event](math.inf)
        self._error: Exception | None = None
        self._group: TaskGroup | None = None
        self._used = False

    def _sink(self, event: Event) -> None:
        if event.run_id == self.run_id:
            with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                self._send.send_nowait(event)  # the reader left early: drop what follows

    async def _drive(self) -> None:
        with self._send:
            try:
                self.result = await self._start()
            except Exception as exc:  # handed to the reader, never to the task group
                self._error = exc

    async def __aenter__(self) -> EventStream:
        if self._used:
            raise RuntimeError("an EventStream runs once; call stream() again for a new run")
        self._used = True
        self._sinks.add(self._sink)
        self._group = await open_group()
        self._group.start_soon(self._drive)
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
            return await close_group(group, exc_type, exc, tb)
        finally:
            self._sinks.discard(self._sink)
            self._receive.close()

    def __aiter__(self) -> EventStream:
        if self._group is None:
            raise TypeError(
                "enter the stream before iterating: "
                "`async with orch.stream(task) as events: async for event in events: ...`"
            )
        return self

    async def __anext__(self) -> Event:
        try:
            return await self._receive.receive()
        except anyio.EndOfStream:
            error, self._error = self._error, None
            if error is not None:
                raise error from None
            raise StopAsyncIteration from None
