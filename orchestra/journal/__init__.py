"""Durable runs: the SQLite journal, resume after a crash, the response cache (storage only).
Not here: the scheduling itself (`orchestra.execution`), rendering of runs (`orchestra.observe`),
the `runs` and `resume` commands (`orchestra.cli`).

See docs/durability.md for the guarantee. The writer (`orchestra.journal.recorder`) is wired in
by `Orchestra` (`orchestra._launch`); this package's front door holds what users touch.
"""

from orchestra.journal.cache import Cache, ResponseCache
from orchestra.journal.records import NodeRecord, RunRecord
from orchestra.journal.store import DEFAULT_JOURNAL, JOURNAL_ENV, Journal, default_journal_path

__all__ = [
    "DEFAULT_JOURNAL",
    "JOURNAL_ENV",
    "Cache",
    "Journal",
    "NodeRecord",
    "ResponseCache",
    "RunRecord",
    "default_journal_path",
]
