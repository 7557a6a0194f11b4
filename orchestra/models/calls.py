"""The one door for model calls: admission (concurrency, rate windows), then the client."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from orchestra.models.admission import ModelLimits
from orchestra.models.client import Completion, ModelClient
from orchestra.models.spec import ModelSpec
from orchestra.models.tokens import estimate_tokens

__all__ = ["complete_within"]


async def complete_within(
    limits: ModelLimits,
    client: ModelClient,
    spec: ModelSpec,
    messages: Sequence[Mapping[str, Any]],
    *,
    tools: Sequence[Mapping[str, Any]] = (),
    metadata: Mapping[str, Any] | None = None,
    on_text: Callable[[str], None] | None = None,
    response_format: Mapping[str, Any] | None = None,
    tool_choice: str | Mapping[str, Any] | None = None,
) -> Completion:
    """One model call inside the model's concurrency and rate limits."""
    estimate = sum(estimate_tokens(str(m.get("content") or "")) for m in messages)
    async with limits.acquire(spec, tokens=estimate) as sent:
        completion = await client.complete(
            spec,
            messages,
            tools=tools,
            metadata=metadata,
            on_text=on_text,
            response_format=response_format,
            tool_choice=tool_choice,
        )
        sent.tokens = completion.input_tokens + completion.output_tokens
    return completion
