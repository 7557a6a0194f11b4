"""Reading the boss's answer: a JSON plan, possibly in a code fence or among prose.

The answer is untrusted text: it is bounded in size and nesting before it is parsed
(`orchestra._untrusted`), so a broken or hostile boss gets a `PlanError` back, never a crash.
"""

from __future__ import annotations

import re
from typing import Any

from orchestra._untrusted import load_json
from orchestra.errors import PlanError
from orchestra.plan import Plan

__all__ = ["MAX_PLAN_CHARS", "parse_plan"]

MAX_PLAN_CHARS = 1_000_000
"""The longest boss answer read as a plan (a plan of a thousand tasks is a tenth of this)."""

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n(.*?)```", re.DOTALL)


def _json_candidates(text: str) -> list[str]:
    candidates = [m.group(1) for m in _FENCE.finditer(text)]
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        candidates.append(text[start : end + 1])
    candidates.append(text)
    return candidates


def parse_plan(text: str) -> Plan:
    """The plan in the boss's answer: bare JSON, a fenced block, or the outermost `{...}`.

    Example:
        >>> answer = 'Here it is: {"tasks": [{"id": "a", "agent": "w", "prompt": "hi"}]}'
        >>> parse_plan(answer).tasks[0].id
        'a'

    Raises:
        PlanError: an answer too long, no JSON object in it, or one that is not a valid plan.
    """
    if len(text) > MAX_PLAN_CHARS:
        raise PlanError(
            f"the answer is {len(text):,} characters long; a plan must fit in "
            f"{MAX_PLAN_CHARS:,}: answer with the plan as one compact JSON object"
        )
    data: Any = None
    reason = ""
    for candidate in _json_candidates(text):
        try:
            data = load_json(candidate, what="the answer")
        except ValueError as exc:
            reason = reason or f" ({exc})"
            continue
        if isinstance(data, dict):
            break
    if not isinstance(data, dict):
        raise PlanError(
            f"the answer holds no JSON object{reason}; answer with the plan as one JSON object"
        )
    return Plan.model_validate(data)
