"""Reading a plan while the boss is still writing it.

`PlanStream` takes the boss's answer chunk by chunk and hands out each task object of the
`tasks` array as soon as its closing brace arrives (the LLMCompiler idea: dispatch before the
plan is finished). It scans JSON incrementally — strings and escapes included — so braces
inside prompts do not confuse it; text before the JSON (prose, a code fence) is skipped.
Nesting is counted, never recursed into, and scanning stops once the answer is longer than a
plan may be (`MAX_PLAN_CHARS`): the finished answer is then refused by `parse_plan`.
"""

from __future__ import annotations

from typing import Any

from orchestra._untrusted import load_json
from orchestra.planning.parse import MAX_PLAN_CHARS

__all__ = ["PlanStream"]


class PlanStream:
    """Incremental extraction of the task objects of a streamed JSON plan.

    Example:
        >>> stream = PlanStream()
        >>> stream.feed('{"tasks": [{"id": "a", "agent": "w", "prompt": "x {')
        []
        >>> stream.feed('y}"}, {"id": "b"')
        [{'id': 'a', 'agent': 'w', 'prompt': 'x {y}'}]
    """

    def __init__(self) -> None:
        self.text = ""
        self._pos = 0
        self._depth = 0
        self._in_string = False
        self._escaped = False
        self._started = False
        self._key: str | None = None
        self._last_string_start = -1
        self._in_tasks = False
        self._tasks_depth = -1
        self._item_start = -1

    def feed(self, chunk: str) -> list[dict[str, Any]]:
        """Add a chunk; return the task objects completed by it, in order."""
        if len(self.text) < MAX_PLAN_CHARS:
            self.text += chunk
        found: list[dict[str, Any]] = []
        text = self.text
        while self._pos < min(len(text), MAX_PLAN_CHARS):
            char = text[self._pos]
            if not self._started:
                if char == "{":
                    self._started = True
                    self._depth = 1
                self._pos += 1
                continue
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                elif char == "\\":
                    self._escaped = True
                elif char == '"':
                    self._in_string = False
                    if self._depth == 1 and not self._in_tasks:
                        self._key = text[self._last_string_start + 1 : self._pos]
                self._pos += 1
                continue
            if char == '"':
                self._in_string = True
                self._last_string_start = self._pos
            elif char in "{[":
                if char == "[" and self._depth == 1 and self._key == "tasks" and not self._in_tasks:
                    self._in_tasks = True
                    self._tasks_depth = self._depth + 1
                elif char == "{" and self._in_tasks and self._depth == self._tasks_depth:
                    self._item_start = self._pos
                self._depth += 1
            elif char in "}]":
                self._depth -= 1
                if self._in_tasks and char == "}" and self._depth == self._tasks_depth:
                    item = self._parse(text[self._item_start : self._pos + 1])
                    if item is not None:
                        found.append(item)
                elif self._in_tasks and char == "]" and self._depth == self._tasks_depth - 1:
                    self._in_tasks = False
            self._pos += 1
        return found

    @staticmethod
    def _parse(raw: str) -> dict[str, Any] | None:
        try:
            item = load_json(raw, what="a streamed task")
        except ValueError:
            return None
        return item if isinstance(item, dict) else None  # pyright: ignore[reportUnknownVariableType]
