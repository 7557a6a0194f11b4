"""The one bridge from sync code to orchestra's async API."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from orchestra.errors import OrchestraError
from orchestra.models.loader import flush_litellm_logs

__all__ = ["run_sync"]

T = TypeVar("T")


def run_sync(function: Callable[[], Awaitable[T]], *, name: str) -> T:
    """Run `function` to completion on a fresh asyncio event loop (litellm needs asyncio);
    before the loop ends, litellm's callbacks hear the calls made on it.

    Raises:
        OrchestraError: called from inside a running event loop, where blocking would
            deadlock it; `await` the async method instead.
    """
    try:
        anyio.get_current_task()
    except RuntimeError:
        pass  # no event loop here: the normal case
    else:
        raise OrchestraError(
            f"{name}_sync() was called inside a running event loop; use `await {name}(...)` there"
        )

    async def body() -> T:
        try:
            result = await function()
        except Exception:
            await flush_litellm_logs()  # failure callbacks hear the failed calls
            raise
        await flush_litellm_logs()  # not on Ctrl-C: that must stop at once
        return result

    return anyio.run(body, backend="asyncio")
