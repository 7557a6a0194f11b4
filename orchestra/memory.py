"""Memory: notes shared by a run's nodes, and compaction of long inputs to fit a context window.

**Notes** are the "take notes, clear the context, read the notes" scaffolding: an agent with
`notes=True` gets two tools, `write_note` and `read_notes`, and any prompt may use `{notes}`
(every note written so far). Notes live as long as the run.

**Compaction** keeps a node within its model's context window: when a prompt filled with its
dependencies' outputs would exceed the model's `max_context` (less room for the answer), the
longest outputs are cut down first — truncated with a marker saying how much was cut, or
summarised by the cheapest model, per the agent's `compaction` setting.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from orchestra.tools import Tool, tool_from_function

__all__ = ["NOTES", "Notes", "Summarise", "compact", "context_budget", "truncate"]

NOTES = "notes"
"""The placeholder every prompt may use for the run's notes."""

# Room kept for the answer: a quarter of the window, at least 256 and at most 4,096 tokens.
_ANSWER_SHARE = 0.25


@dataclass
class Notes:
    """The run's notes, in the order written, each signed by its task."""

    entries: list[tuple[str, str]] = field(default_factory=list[tuple[str, str]])

    def write(self, author: str, text: str) -> None:
        """Add a note signed by task `author`."""
        self.entries.append((author, text.strip()))

    def read(self) -> str:
        """Every note so far, one per line (or a line saying there are none)."""
        if not self.entries:
            return "(no notes yet)"
        return "\n".join(f"- [{author}] {text}" for author, text in self.entries)

    def tools(self, author: str) -> tuple[Tool, Tool]:
        """The two note tools for one node: notes it writes are signed with its task id."""

        def write_note(text: str) -> str:
            """Write a note the run's other agents can read later (facts, decisions, to-dos)."""
            self.write(author, text)
            return "noted"

        def read_notes() -> str:
            """Read every note the run's agents have written so far."""
            return self.read()

        return tool_from_function(write_note), tool_from_function(read_notes)


def _tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def context_budget(max_context: int | None) -> int | None:
    """Prompt tokens a model with this window can take while leaving room for the answer."""
    if max_context is None:
        return None
    room = min(4096, max(256, int(max_context * _ANSWER_SHARE)))
    return max(1, max_context - room)


def truncate(text: str, tokens: int) -> str:
    """Cut `text` to about `tokens` tokens, keeping its start and end around a marker.

    Example:
        >>> truncate("a" * 100 + "z" * 100, 20)[:10]
        'aaaaaaaaaa'
    """
    limit = tokens * 4
    if len(text) <= limit:
        return text
    marker = f"\n[... {len(text) - limit} characters cut to fit the context window ...]\n"
    keep = max(limit - len(marker), limit // 2)
    head = keep * 2 // 3
    return text[:head] + marker + text[len(text) - (keep - head) :]


Summarise = Callable[[str, int], Awaitable[str]]


async def compact(
    fixed: str,
    values: Mapping[str, str],
    budget: int,
    summarise: Summarise | None = None,
) -> dict[str, str]:
    """Shorten the longest `values` until `fixed` plus them fits `budget` tokens.

    `fixed` is the rest of the prompt (the template and any system message). Values are cut
    longest first, each to an equal share of what is left; with `summarise` (text, token
    target) they are summarised instead of truncated. Values already short enough are kept.
    """
    result = dict(values)
    room = budget - _tokens(fixed)
    if sum(_tokens(v) for v in result.values()) <= room:
        return result
    order = sorted(result, key=lambda k: _tokens(result[k]))
    left = max(room, 0)
    for index, name in enumerate(order):
        share = left // (len(order) - index)
        text = result[name]
        if _tokens(text) > share:
            shorter = await summarise(text, share) if summarise is not None else ""
            result[name] = truncate(shorter or text, share)
        left -= _tokens(result[name])
    return result
