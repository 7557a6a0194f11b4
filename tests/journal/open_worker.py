"""What each process of the open race runs (`test_schema.py`): open the same new files as the
other processes, each at the same moment as they do.

It is a module of its own so that `multiprocessing`'s spawn start method can import it in the
children (pytest imports test modules under names a child cannot import).
"""

from __future__ import annotations

import time
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

from orchestra.errors import JournalError
from orchestra.journal.cache import ResponseCache
from orchestra.journal.store import Journal


def open_each(
    kind: str, paths: list[Path], arrived: Synchronized[int], openers: int, out: Queue[str]
) -> None:
    """Open every path in turn as a journal or a response cache, each once all `openers` have
    arrived at it; put "ok" or the error on `out`."""
    for round_, path in enumerate(paths, start=1):
        with arrived.get_lock():
            arrived.value += 1
        # Spin: a lock or a sleep wakes each opener at a different moment, and they would
        # rarely meet. A peer that died is given up on after a minute.
        give_up = time.monotonic() + 60
        while arrived.value < openers * round_:
            if time.monotonic() > give_up:
                raise TimeoutError("the other openers never arrived")
        try:
            if kind == "journal":
                Journal(path).connect().close()
            else:
                ResponseCache(path, ttl=None).close()
        except JournalError as exc:
            out.put(str(exc))
        else:
            out.put("ok")
