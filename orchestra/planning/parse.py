"""Reading the boss's answer: a JSON plan, possibly in a code fence or among prose."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from orchestra._base import describe_validation_error
from orchestra.errors import PlanError
from orchestra.plan import Plan

__all__ = ["parse_plan"]

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
        PlanError: no JSON object in the answer, or one that is not a valid plan.
    """
    data: Any = None
    for candidate in _json_candidates(text):
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, dict):
            break
    if not isinstance(data, dict):
        raise PlanError("the answer holds no JSON object; answer with the plan as one JSON object")
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        raise PlanError(describe_validation_error("the plan", exc)) from exc
