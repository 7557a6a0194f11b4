"""The one clock of results, events and the journal: timezone-aware UTC."""

from __future__ import annotations

from datetime import datetime, timezone

__all__ = ["utc_now", "utc_stamp"]


def utc_now() -> datetime:
    """Now, in UTC."""
    return datetime.now(timezone.utc)


def utc_stamp() -> str:
    """Now, in UTC, as ISO 8601 text (how the journal stores times)."""
    return utc_now().isoformat()
