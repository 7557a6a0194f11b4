"""A task group that an object holds open from its `__aenter__` to its `__aexit__`.

`EventStream` and `MapStream` run their work in such a group, so that no task outlives the
caller's `async with` block.
"""

from __future__ import annotations

from types import TracebackType

import anyio
from anyio.abc import TaskGroup

__all__ = ["close_group", "open_group"]


async def open_group() -> TaskGroup:
    """A task group, entered."""
    group = anyio.create_task_group()
    await group.__aenter__()
    return group


async def close_group(
    group: TaskGroup,
    exc_type: type[BaseException] | None,
    exc: BaseException | None,
    tb: TracebackType | None,
) -> bool | None:
    """Cancel what still runs in `group` and leave it, as the caller's `__aexit__` does.

    The caller's own error leaves the block as it is: handed to the task group, it would come
    out in an ExceptionGroup.
    """
    group.cancel_scope.cancel()  # a no-op when the work already ended
    if exc is None or isinstance(exc, anyio.get_cancelled_exc_class()):
        return await group.__aexit__(exc_type, exc, tb)
    await group.__aexit__(None, None, None)
    return None
