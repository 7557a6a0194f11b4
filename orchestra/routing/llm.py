"""`LLMRouter`: a small fast model reads the node and picks the model that should answer it.

The router model is shown the node's agent and prompt (cut to `prompt_chars`) and the usable
candidates with their quality, price and tags, and asked for a JSON object naming one of them
with a short reason. Its reply is parsed tolerantly: a fenced or bare JSON object, broken JSON
with a `"model": "..."` field, or a reply that is just a candidate's name, matched without
regard to case. When the router call fails, or its reply names no usable candidate, the
`fallback` policy decides, and the reason says why.

The router's call is a call of the node: it is in the node's usage and emits a `model_called`
event. Because the call is async, the runner awaits `achoose` (see
`orchestra.routing.base.decide`); `choose`, for synchronous callers, only asks the fallback.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, cast

from orchestra.checks import AskModel, shorten
from orchestra.errors import OrchestraError
from orchestra.models.spec import ModelSpec
from orchestra.routing.base import RouteDecision, RouteRequest, RoutingPolicy, decide
from orchestra.routing.policies import Cheapest

__all__ = ["LLMRouter", "parse_choice"]

_ROUTER_PROMPT = """You route tasks to language models. Pick the cheapest model that will \
answer this task correctly; pay for a stronger model only when the task needs it.

## Task (agent {agent})
{prompt}

## Models (quality 0-1; price in USD per 1M input / output tokens)
{models}

Reply with only a JSON object: {"model": "<one name from the list>", "reason": "<a few words>"}"""


def _describe(spec: ModelSpec) -> str:
    tags = f"; tags: {', '.join(sorted(spec.tags))}" if spec.tags else ""
    return (
        f"- {spec.name}: quality {spec.quality:.2f}; price {spec.input_cost:g} / "
        f"{spec.output_cost:g}{tags}"
    )


_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\n(.*?)```", re.DOTALL)
_MAX_REPLY_CHARS = 2_000
_FIELD = re.compile(r'"(model|reason)"\s*:\s*"((?:[^"\\]|\\.)*)"', re.DOTALL)


def _objects(text: str) -> list[dict[str, Any]]:
    """Every JSON object in `text`: fenced blocks first, then any `{` that starts one."""
    found: list[dict[str, Any]] = []
    decoder = json.JSONDecoder(strict=False)
    blocks = [*_FENCE.findall(text), text]
    for block in blocks:
        for start in (i for i, char in enumerate(block) if char == "{"):
            try:
                value, _ = decoder.raw_decode(block, start)
            except (ValueError, RecursionError):  # nested past the parser's stack: not a choice
                continue
            if isinstance(value, dict):
                found.append(cast(dict[str, Any], value))
    return found


def parse_choice(reply: str, names: list[str]) -> tuple[str | None, str]:
    """The candidate a router's reply names (None: none), and its reason ("" if none given).

    Example:
        >>> parse_choice('Sure: {"model": "MID", "reason": "needs algebra"}', ["fast", "mid"])
        ('mid', 'needs algebra')
        >>> parse_choice("fast", ["fast", "mid"])
        ('fast', '')
        >>> parse_choice('{"model": "gpt-9"}', ["fast", "mid"])
        (None, '')
    """
    # A choice fits in a line: the rest of a runaway (or hostile) reply is not read, since the
    # JSON search tries every `{`.
    reply = reply[:_MAX_REPLY_CHARS]
    by_folded = {name.casefold(): name for name in names}
    picked: str | None = None
    reason = ""
    for value in _objects(reply):
        model = value.get("model", value.get("name"))
        if isinstance(model, str):
            picked = model
            reason = str(value.get("reason", ""))
            break
    if picked is None:
        # Broken JSON: take the fields as written.
        fields = dict(_FIELD.findall(reply))
        picked = fields.get("model")
        reason = fields.get("reason", "")
    if picked is None:
        picked = reply  # perhaps the reply is just a name
    bare = picked.strip()
    # Quotes, backticks or a full stop around the name are not part of it, unless they are.
    name = by_folded.get(bare.casefold()) or by_folded.get(bare.strip("\"'`.").strip().casefold())
    return name, " ".join(reason.split())


@dataclass(frozen=True)
class LLMRouter:
    """A small fast model (`model`, a spec name) reads the node and picks a candidate.

    Args:
        model: the router model's spec name; it must be in the constellation (it need not be
            a candidate of the agent).
        fallback: decides when the router fails or names no usable candidate.
        template: the router's prompt, with `{agent}`, `{prompt}` and `{models}` filled in.
        prompt_chars: at most this many characters of the node's prompt are shown (the
            router's cost grows with them; the start of a task usually says what it is).

    Example:
        >>> import orchestra as oc
        >>> policy = oc.routing.LLMRouter("fast", fallback=oc.routing.Cheapest(min_quality=0.5))
    """

    model: str
    fallback: RoutingPolicy = field(default_factory=Cheapest)
    template: str = _ROUTER_PROMPT
    prompt_chars: int = 4000

    def choose(self, request: RouteRequest) -> RouteDecision:
        """Without a model call (synchronous callers): the fallback's decision, said so."""
        decision = self.fallback.choose(request)
        return _annotated(decision, f"router {self.model!r} not asked (no model call here)")

    async def achoose(self, request: RouteRequest, ask: AskModel) -> RouteDecision:
        """Ask the router model which usable candidate should answer the node.

        An escalation (answers already in, from a fallback that escalates) goes straight to
        the fallback: the router has placed the node once.
        """
        if request.answers:
            return await decide(self.fallback, request, ask)
        usable = request.usable()
        fill = {
            "agent": request.agent.name,
            "prompt": request.prompt[: self.prompt_chars],
            "models": "\n".join(_describe(s) for s in usable),
        }
        # One pass, so a prompt that quotes "{models}" is not expanded again.
        prompt = re.sub(r"\{(agent|prompt|models)\}", lambda m: fill[m.group(1)], self.template)
        try:
            reply = await ask(self.model, prompt)
        except OrchestraError as exc:
            why = f"router {self.model!r} failed ({shorten(str(exc), 60)})"
            return _annotated(await decide(self.fallback, request, ask), why)
        name, reason = parse_choice(reply, [s.name for s in usable])
        if name is None:
            why = f"router {self.model!r} named no usable model ({shorten(reply, 60)!r})"
            return _annotated(await decide(self.fallback, request, ask), why)
        return RouteDecision(name, f"router {self.model!r} chose {name}: {reason or 'no reason'}")


def _annotated(decision: RouteDecision, why: str) -> RouteDecision:
    return RouteDecision(
        decision.model,
        f"{why}; fallback: {decision.reason}",
        also=decision.also,
        check=decision.check,
        escalate=decision.escalate,
    )
