"""The model client: every model call reaches litellm here.

litellm's own retries are switched off (`max_retries=0, num_retries=0`): otherwise it retries
behind our back and a request can be sent 2N+1 times. Its errors become `ModelError`s that keep
the status and the provider's message (with any API key removed). An answer with no choices, or
with neither content nor tool calls, is an error, not an empty answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import quote

import anyio

from orchestra._untrusted import valid_text
from orchestra.errors import ModelError
from orchestra.models.failures import model_error, scrub, stream_unfinished
from orchestra.models.guard import remember
from orchestra.models.loader import load_litellm, prices_per_request
from orchestra.models.resilience import within
from orchestra.models.spec import ModelSpec
from orchestra.models.tokens import estimate_tokens
from orchestra.results import Usage

__all__ = [
    "AnsweredEmpty",
    "Completion",
    "ModelClient",
    "ToolCall",
    "UsageInvalid",
    "idempotency_headers",
    "model_error",
    "scrub",
]


def _quiet_switch(litellm: Any) -> ContextVar[bool] | None:
    """litellm's switch that skips its own per-call logging (the async success handler, its
    logging worker and thread pool, standard logging payloads), when nothing listens to it:
    orchestra records, prices and traces calls itself. None when something is registered with
    litellm (callbacks, a cache), or this litellm has no such switch."""
    listening = (
        litellm.callbacks
        or litellm.success_callback
        or litellm.failure_callback
        or litellm._async_success_callback
        or litellm._async_failure_callback
        or litellm.cache is not None
    )
    if listening:
        return None
    try:
        from litellm._internal_context import is_internal_call
    except ImportError:  # another litellm: it logs as it always did
        return None
    return is_internal_call


@dataclass(frozen=True)
class ToolCall:
    """A tool call the model asked for."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Completion:
    """One answered model call: content or tool calls, tokens and cost."""

    model: str
    content: str | None
    tool_calls: tuple[ToolCall, ...] = ()
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0
    raw_message: dict[str, Any] = field(default_factory=dict[str, Any])
    extra: Usage = field(default_factory=Usage)
    """Spending on the way to this answer beyond its own tokens (cancelled hedges)."""
    cached: bool = False
    """True when the answer came from the response cache: no request was sent."""
    finish_reason: str | None = None
    """Why the model stopped, as the provider said (`stop`, `length`, `tool_calls`...)."""
    estimated: bool = False
    """True when the provider reported no usage and the token counts are orchestra's estimate."""

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


class UsageInvalid(ModelError):
    """The provider answered with a usage block that is negative or not numbers.

    The call failed (its answer cannot be priced); the door charges its estimated cost, never
    a refund.
    """


class AnsweredEmpty(ModelError):
    """The provider answered with neither content nor tool calls: a failed call, but a paid
    one. `input_tokens`, `output_tokens` and `cost_usd` are what it reported (or the estimate,
    `estimated`), which the door charges."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    estimated: bool = False


# litellm providers that speak OpenAI's HTTP API, where an `Idempotency-Key` header is accepted
# (and ignored by servers that do not dedupe); others may sign or reject unknown headers.
_IDEMPOTENT_PROVIDERS = frozenset(
    {
        "azure",
        "cerebras",
        "deepinfra",
        "deepseek",
        "fireworks_ai",
        "groq",
        "hosted_vllm",
        "lm_studio",
        "mistral",
        "openai",
        "openrouter",
        "together_ai",
        "xai",
    }
)


_HEADER_SAFE = "".join(chr(code) for code in range(0x21, 0x7F) if chr(code) != "%")


def idempotency_headers(spec: ModelSpec, metadata: Mapping[str, Any]) -> dict[str, str] | None:
    """The request's headers with its idempotency key (`metadata["idempotency_key"]`), for
    providers that accept one; None when there is nothing to add."""
    key = metadata.get("idempotency_key")
    provider = spec.model.split("/", 1)[0] if "/" in spec.model else None
    if key is None or provider not in _IDEMPOTENT_PROVIDERS:
        return None
    headers: dict[str, str] = dict(spec.litellm_params.get("extra_headers") or {})
    # HTTP headers carry visible ASCII only: anything else in a run id is percent-encoded.
    return {**headers, "Idempotency-Key": quote(str(key), safe=_HEADER_SAFE)}


def _request_prices(spec: ModelSpec) -> dict[str, float]:
    """The spec's prices as litellm takes them with a request (USD per token), when this
    litellm keeps them to that request (`loader.prices_per_request`): it then prices the answer
    with them rather than searching its price list for the model, work orchestra does not need
    (it prices calls itself). Empty for a spec without prices."""
    if not spec.priced or not prices_per_request():
        return {}
    return {
        "input_cost_per_token": (spec.input_cost or 0.0) / 1_000_000,
        "output_cost_per_token": (spec.output_cost or 0.0) / 1_000_000,
    }


def _stream_finish_reason(stream: Any, chunks: Sequence[Any]) -> str | None:
    """Why a stream ended, as the provider said; None when it never said.

    litellm's stream wrapper adds a final chunk saying `stop` when the provider sent no finish
    reason, so its record of what the provider actually sent is what counts.
    """
    if hasattr(stream, "received_finish_reason"):
        sent = stream.received_finish_reason or getattr(stream, "intermittent_finish_reason", None)
        return cast(str | None, sent)
    choices = cast(list[Any], getattr(chunks[-1], "choices", None) or [])
    return cast(str | None, getattr(choices[0], "finish_reason", None)) if choices else None


class ModelClient:
    """Calls models through `litellm.acompletion`; one instance serves a whole Orchestra.

    One call, one request: retries, fallbacks and breakers are `orchestra.models.resilience`'s.
    """

    async def complete(
        self,
        spec: ModelSpec,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]] = (),
        metadata: Mapping[str, Any] | None = None,
        on_text: Callable[[str], None] | None = None,
        response_format: Mapping[str, Any] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
    ) -> Completion:
        """Send one chat completion to `spec` and return its answer.

        With `spec.stream` the answer is streamed and only returned once complete: a stream
        cut, stalled (no chunk for `spec.stream_timeout` s) or broken mid-way is an error, never
        half an answer. `spec.timeout` bounds the whole call.

        Args:
            spec: the model to call.
            messages: the chat messages, OpenAI style.
            tools: OpenAI-style tool definitions the model may call.
            metadata: facts about the call (task id, agent) that reach custom providers such
                as `orchestra.testing.FakeModel`; never sent to the provider's API, except
                `idempotency_key`, sent as the `Idempotency-Key` header to OpenAI-compatible
                providers.
            on_text: called with each piece of content as it streams in (the call streams
                even if the spec does not); the returned Completion still holds the whole answer.
            response_format: structured output request passed to the provider as it is.
            tool_choice: OpenAI-style `tool_choice`, sent with `tools` (None: the provider's
                default).

        Raises:
            ModelError: the call failed, or answered nothing usable.
        """
        litellm = load_litellm()
        remember(spec)  # its secrets are replaced in the request loggers' records
        kwargs: dict[str, Any] = {
            **spec.litellm_params,
            "model": spec.model,
            "messages": list(messages),
            "max_retries": 0,
            "num_retries": 0,
            "metadata": dict(metadata or {}),
        }
        kwargs.update(_request_prices(spec))
        if spec.api_base is not None:
            kwargs["api_base"] = spec.api_base
        headers = idempotency_headers(spec, kwargs["metadata"])
        if headers is not None:
            kwargs["extra_headers"] = headers
        if spec.api_key is not None:
            kwargs["api_key"] = spec.secret()
        if spec.timeout is not None:
            kwargs["timeout"] = spec.timeout
        if response_format is not None:
            kwargs["response_format"] = dict(response_format)
        if tools:
            kwargs["tools"] = list(tools)
            if tool_choice is not None:
                kwargs["tool_choice"] = (
                    tool_choice if isinstance(tool_choice, str) else dict(tool_choice)
                )
            # litellm (1.106 to 1.110) routes any call with tools through its MCP gateway
            # check, which imports the optional `mcp` package; plain function tools need none.
            kwargs["_skip_mcp_handler"] = True
        started = time.monotonic()
        # litellm's own timeout fires late (about 1.4 s for timeout=1): enforce ours too.
        limit = None if spec.timeout is None else spec.timeout * 1.5 + 0.1
        quiet = _quiet_switch(litellm)
        hush = quiet.set(True) if quiet is not None else None
        try:
            with within(limit):
                if spec.stream or on_text is not None:
                    response, reported = await self._streamed(spec, kwargs, on_text)
                else:
                    response = await litellm.acompletion(**kwargs)
                    reported = None
        except TimeoutError:
            raise ModelError(
                f"model {spec.name!r} ({spec.model}): timed out after {spec.timeout} s",
                model=spec.name,
                status_code=408,
                transient=True,
            ) from None
        except ModelError:
            raise
        except Exception as exc:  # every provider failure becomes one typed error
            error = model_error(spec, exc)
        else:
            return self._completion(
                spec, response, time.monotonic() - started, messages=messages, reported=reported
            )
        finally:
            if quiet is not None and hush is not None:
                quiet.reset(hush)
        # Raised outside the handler: litellm's exception holds the request, API key included,
        # and must not travel as this error's cause or context.
        raise error

    async def _streamed(
        self, spec: ModelSpec, kwargs: dict[str, Any], on_text: Callable[[str], None] | None
    ) -> tuple[Any, bool]:
        """The stream's assembled response, and whether the provider reported usage (litellm
        makes up counts when it did not)."""
        litellm = load_litellm()
        stream = await litellm.acompletion(
            **kwargs, stream=True, stream_options={"include_usage": True}
        )
        chunks: list[Any] = []
        iterator = stream.__aiter__()
        while True:
            try:
                with anyio.fail_after(spec.stream_timeout):
                    chunk = await iterator.__anext__()
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise ModelError(
                    f"model {spec.name!r} ({spec.model}): the stream stalled (no chunk for "
                    f"{spec.stream_timeout} s); the partial answer was discarded",
                    model=spec.name,
                    status_code=408,
                    transient=True,
                ) from None
            chunks.append(chunk)
            if on_text is not None:
                choices = cast(list[Any], getattr(chunk, "choices", None) or [])
                piece = getattr(choices[0].delta, "content", None) if choices else None
                if piece:
                    on_text(str(piece))
        if not chunks:
            raise ModelError(
                f"model {spec.name!r} ({spec.model}) streamed no chunks",
                model=spec.name,
                transient=True,
            )
        if _stream_finish_reason(stream, chunks) is None:
            raise stream_unfinished(spec)
        # litellm keeps the provider's own chunks apart from the ones it adds at the end: only
        # there does a usage chunk prove the provider counted the tokens.
        raw = cast(list[Any], getattr(stream, "chunks", None) or [])
        reported = any(getattr(c, "usage", None) is not None for c in raw)
        return litellm.stream_chunk_builder(chunks, messages=kwargs["messages"]), reported

    def _completion(
        self,
        spec: ModelSpec,
        response: Any,
        seconds: float,
        *,
        messages: Sequence[Mapping[str, Any]],
        reported: bool | None,
    ) -> Completion:
        choices = cast(list[Any], getattr(response, "choices", None) or [])
        if not choices:
            raise ModelError(
                f"model {spec.name!r} ({spec.model}) answered with no choices",
                model=spec.name,
                transient=True,
            )
        message = choices[0].message
        raw_calls = cast(list[Any], getattr(message, "tool_calls", None) or [])
        calls = tuple(
            ToolCall(
                id=str(call.id),
                name=str(call.function.name),
                arguments=valid_text(str(call.function.arguments or "")),
            )
            for call in raw_calls
        )
        # A lone surrogate (JSON allows "\ud800") would fail every later write of the answer.
        content = valid_text(cast(str | None, getattr(message, "content", None)))
        input_tokens, output_tokens = _usage(spec, getattr(response, "usage", None))
        # Without usage litellm reports zeros (or, on streams, counts of its own): an answer
        # said to cost nothing in and out was not counted.
        unreported = input_tokens == 0 and output_tokens == 0
        estimated = not reported if reported is not None else unreported
        if estimated:
            input_tokens = sum(estimate_tokens(str(m.get("content") or "")) for m in messages)
            output_tokens = estimate_tokens(
                (content or "") + "".join(c.name + c.arguments for c in calls)
            )
        cost = spec.cost(input_tokens=input_tokens, output_tokens=output_tokens)
        if not calls and not content:
            empty = AnsweredEmpty(
                f"model {spec.name!r} ({spec.model}) answered with empty content",
                model=spec.name,
                transient=True,
            )
            empty.input_tokens, empty.output_tokens = input_tokens, output_tokens
            empty.cost_usd, empty.estimated = cost, estimated
            raise empty
        raw: dict[str, Any] = {"role": "assistant", "content": content}
        if calls:
            # Sent back in the next turn: servers whose chat template reads `content` (llama.cpp)
            # fail on a missing one, and some refuse null, so a tool turn says "".
            raw["content"] = content or ""
            raw["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in calls
            ]
        return Completion(
            model=spec.name,
            content=content,
            tool_calls=calls,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=cost,
            seconds=seconds,
            raw_message=raw,
            finish_reason=cast(str | None, getattr(choices[0], "finish_reason", None)),
            estimated=estimated,
        )


def _usage(spec: ModelSpec, usage: Any) -> tuple[int, int]:
    """The provider's prompt and completion token counts.

    Raises:
        UsageInvalid: a count is negative or not a whole number.
    """
    counts: list[int] = []
    for field_name in ("prompt_tokens", "completion_tokens"):
        value: Any = getattr(usage, field_name, None) or 0
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UsageInvalid(
                f"model {spec.name!r} ({spec.model}) reported unusable usage: {field_name}="
                f"{str(value)[:40]!r}; the answer cannot be priced, so the call counts as failed "
                "and its estimated cost is charged",
                model=spec.name,
            )
        counts.append(value)
    return counts[0], counts[1]
