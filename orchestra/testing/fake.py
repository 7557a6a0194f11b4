"""`FakeModel`: a scripted model that runs through the real litellm call path.

It is a litellm custom provider, so everything between orchestra and the provider (litellm's
argument handling, response objects, exception mapping) runs as it does live. Answers come from
`responses` (keyed by task id, agent name or model name; the boss plans as agent `plan`) or from
a `handler` function. One fake serves any number of model names: `fake.model("fast")`.
"""

from __future__ import annotations

import inspect
import itertools
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from orchestra.models.loader import load_litellm, when_litellm_loaded

__all__ = ["FakeFailure", "FakeModel", "FakeReply", "FakeRequest", "FakeToolCall", "fakes_in"]

PROVIDER = "orchestra-fake"
# Strong references: a constellation holds only model strings, yet its fake must stay alive.
# `FakeModel.close` (called by the pytest fixture) lets one go.
_instances: dict[str, FakeModel] = {}
_ids = itertools.count(1)


@dataclass(frozen=True)
class FakeToolCall:
    """A tool call for a scripted reply to ask for."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict[str, Any])


@dataclass(frozen=True)
class FakeReply:
    """A scripted answer: content and/or tool calls, with optional token counts and latency."""

    content: str | None = None
    tool_calls: Sequence[FakeToolCall] = ()
    input_tokens: int | None = None
    """Prompt tokens to report (default: about one per four characters of the messages)."""
    output_tokens: int | None = None
    """Completion tokens to report (default: about one per four characters of the content)."""
    latency: float | None = None
    """Seconds to wait before answering (default: the FakeModel's latency)."""
    finish_reason: str | None = None
    """Why the model stopped (default: `tool_calls` or `stop`); `length` scripts a reply cut
    off at the output token limit."""


@dataclass(frozen=True)
class FakeFailure:
    """A scripted failure: the call raises litellm's own error for `status`.

    Example:
        >>> FakeFailure(429, retry_after=2.0).status
        429
    """

    status: int = 500
    retry_after: float | None = None
    """Seconds sent as the `Retry-After` header."""
    context_overflow: bool = False
    """Fail as a prompt too long for the model (litellm's ContextWindowExceededError)."""
    latency: float = 0.0
    """Seconds before failing."""


@dataclass(frozen=True)
class FakeRequest:
    """One call the fake received."""

    model: str
    """The model name given to `FakeModel.model`."""
    agent: str | None
    """The agent making the call (`plan` for the boss)."""
    task_id: str | None
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    index: int
    """Position of this call among all the fake's calls, from 0."""

    @property
    def prompt(self) -> str:
        """The last user message."""
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return str(message.get("content") or "")
        return ""

    @property
    def tool_results(self) -> list[str]:
        """Contents of the tool messages so far (what the tools answered)."""
        return [str(m.get("content")) for m in self.messages if m.get("role") == "tool"]


Answer = str | FakeReply | FakeFailure
Handler = Callable[[FakeRequest], Answer | Awaitable[Answer]]
Latency = float | Callable[[FakeRequest, FakeReply], float]
Script = Answer | Sequence[Answer]


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


class FakeModel:
    """A scripted model behind litellm: give it `responses`, a `handler`, or both.

    Example:
        >>> fake = FakeModel(responses={"researcher": ["first answer", "second answer"]},
        ...                  latency=0.0, fail_first=0)
        >>> fake.model("fast").startswith("orchestra-fake/")
        True

    Args:
        responses: answers by task id, agent name or model name (looked up in that order); a
            list is answered in order, its last item repeating.
        handler: called for requests `responses` does not cover; may be async.
        latency: seconds before each answer, or a function of the request and reply.
        fail_first: the first N calls fail with HTTP `fail_status` (through litellm's errors).
        fail_status: the status of those failures (429, 500, 503, 401, 400...).
        default: the answer when neither responses nor handler cover a request.
    """

    def __init__(
        self,
        *,
        responses: Mapping[str, Script] | None = None,
        handler: Handler | None = None,
        latency: Latency = 0.0,
        fail_first: int = 0,
        fail_status: int = 500,
        default: Answer = "ok",
    ) -> None:
        self.responses: dict[str, Script] = dict(responses or {})
        self.handler = handler
        self.latency = latency
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.default = default
        self.calls: list[FakeRequest] = []
        self._used: dict[str, int] = {}
        self.id = f"f{next(_ids)}"
        _instances[self.id] = self
        # Registered when litellm is imported: building a fake does not import it.
        when_litellm_loaded(_register)

    def model(self, name: str) -> str:
        """The litellm model string that reaches this fake as model `name`."""
        return f"{PROVIDER}/{self.id}/{name}"

    def close(self) -> None:
        """Unregister the fake; later calls to its models fail with a clear error."""
        _instances.pop(self.id, None)

    def __getstate__(self) -> dict[str, Any]:
        # Sent to another process (a Ray actor): the script goes, not the calls made here.
        return {**self.__dict__, "calls": [], "_used": {}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickled in another process: the fake answers its model strings there too (its
        calls are recorded where they are made)."""
        self.__dict__.update(state)
        _instances[self.id] = self
        when_litellm_loaded(_register)

    def calls_for(self, key: str) -> list[FakeRequest]:
        """The calls made for task `key`, by agent `key` or to model `key`."""
        return [c for c in self.calls if key in (c.agent, c.task_id, c.model)]

    async def _answer(self, request: FakeRequest) -> FakeReply | FakeFailure:
        answer: Answer | None = None
        for key in (request.task_id, request.agent, request.model):
            if key is not None and key in self.responses:
                answer = self._next(key)
                break
        if answer is None and self.handler is not None:
            produced = self.handler(request)
            answer = await produced if inspect.isawaitable(produced) else produced
        if answer is None:
            answer = self.default
        return FakeReply(content=answer) if isinstance(answer, str) else answer

    def _next(self, key: str) -> Answer:
        script = self.responses[key]
        if isinstance(script, (str, FakeReply, FakeFailure)):
            return script
        used = self._used.get(key, 0)
        self._used[key] = used + 1
        return script[min(used, len(script) - 1)]

    async def _reply(
        self,
        model: str,
        messages: list[dict[str, Any]],
        metadata: Mapping[str, Any],
        tools: list[dict[str, Any]],
    ) -> tuple[FakeReply, float]:
        """Record the call; return the reply and its latency, or raise its scripted failure."""
        litellm = load_litellm()
        request = FakeRequest(
            model=model,
            agent=metadata.get("agent"),
            task_id=metadata.get("task_id"),
            messages=messages,
            tools=tools,
            index=len(self.calls),
        )
        self.calls.append(request)
        if request.index < self.fail_first:
            raise _error(litellm, FakeFailure(self.fail_status), model)
        reply = await self._answer(request)
        if isinstance(reply, FakeFailure):
            if reply.latency > 0:
                await anyio.sleep(reply.latency)
            raise _error(litellm, reply, model)
        wait = self.latency(request, reply) if callable(self.latency) else self.latency
        return reply, reply.latency if reply.latency is not None else wait

    async def complete(
        self,
        model: str,
        messages: list[dict[str, Any]],
        *,
        metadata: Mapping[str, Any],
        tools: list[dict[str, Any]],
    ) -> Any:
        """Answer one litellm call (the custom provider's entry point)."""
        reply, wait = await self._reply(model, messages, metadata, tools)
        if wait > 0:
            await anyio.sleep(wait)
        return _response(load_litellm(), model, messages, reply)

    async def stream(
        self,
        model: str,
        messages: list[dict[str, Any]],
        *,
        metadata: Mapping[str, Any],
        tools: list[dict[str, Any]],
    ) -> AsyncIterator[dict[str, Any]]:
        """Answer one streaming litellm call: the content in word chunks, the latency spread
        evenly over them, usage in the last chunk."""
        reply, wait = await self._reply(model, messages, metadata, tools)
        text = reply.content or ""
        words = text.split(" ")
        pieces = [" ".join(words[i : i + 4]) for i in range(0, len(words), 4)]
        pieces = [p + (" " if i < len(pieces) - 1 else "") for i, p in enumerate(pieces)]
        usage = _usage(messages, reply)
        for index, piece in enumerate(pieces):
            if wait > 0:
                await anyio.sleep(wait / len(pieces))
            last = index == len(pieces) - 1
            yield {
                "text": piece,
                "is_finished": last,
                "finish_reason": (reply.finish_reason or "stop") if last else None,
                "usage": usage if last else None,
                "index": 0,
                "tool_use": None,
            }


def fakes_in(models: Iterable[str]) -> list[FakeModel]:
    """The live fakes answering these litellm model strings, e.g. to send them along with a
    constellation to another process (a Ray actor), where they answer too."""
    ids = {m.split("/")[1] for m in models if m.startswith(f"{PROVIDER}/") and m.count("/") >= 2}
    return [_instances[i] for i in sorted(ids) if i in _instances]


def _error(litellm: Any, failure: FakeFailure, model: str) -> Exception:
    kinds: dict[int, str] = {
        400: "BadRequestError",
        401: "AuthenticationError",
        404: "NotFoundError",
        429: "RateLimitError",
        503: "ServiceUnavailableError",
    }
    if failure.context_overflow:
        return litellm.ContextWindowExceededError(
            message="This model's maximum context length is 8192 tokens (scripted failure)",
            llm_provider=PROVIDER,
            model=model,
        )
    kind = getattr(litellm, kinds.get(failure.status, "InternalServerError"))
    error = kind(message=f"scripted failure {failure.status}", llm_provider=PROVIDER, model=model)
    if failure.status not in kinds:
        error.status_code = failure.status
    if failure.retry_after is not None:
        error.litellm_response_headers = {"retry-after": str(failure.retry_after)}
    return error


def _response(litellm: Any, model: str, messages: list[dict[str, Any]], reply: FakeReply) -> Any:
    tool_calls = [
        {
            "id": f"call_{i}",
            "type": "function",
            "function": {"name": call.name, "arguments": json.dumps(dict(call.arguments))},
        }
        for i, call in enumerate(reply.tool_calls)
    ]
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return litellm.ModelResponse(
        model=model,
        choices=[
            {
                "index": 0,
                "message": message,
                "finish_reason": reply.finish_reason or ("tool_calls" if tool_calls else "stop"),
            }
        ],
        usage=_usage(messages, reply),
    )


def _usage(messages: list[dict[str, Any]], reply: FakeReply) -> dict[str, int]:
    prompt = " ".join(str(m.get("content") or "") for m in messages)
    input_tokens = reply.input_tokens if reply.input_tokens is not None else _tokens(prompt)
    output_tokens = (
        reply.output_tokens if reply.output_tokens is not None else _tokens(reply.content or "")
    )
    return {
        "prompt_tokens": input_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }


_registered = False


def _register(litellm: Any) -> None:
    """Add the fake provider to litellm's custom providers (once per process)."""
    global _registered
    if _registered:
        return

    def target(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[FakeModel, str, Any]:
        model = str(kwargs.get("model", args[0] if args else ""))
        instance_id, _, name = model.partition("/")
        fake = _instances.get(instance_id)
        if fake is None:
            raise litellm.BadRequestError(
                message=f"no live FakeModel {instance_id!r} (it was closed)",
                llm_provider=PROVIDER,
                model=model,
            )
        litellm_params: dict[str, Any] = kwargs.get("litellm_params") or {}
        options: dict[str, Any] = kwargs.get("optional_params") or {}
        call: dict[str, Any] = {
            "messages": list(kwargs.get("messages") or []),
            "metadata": litellm_params.get("metadata") or {},
            "tools": list(options.get("tools") or []),
        }
        return fake, name, call

    class _Provider(litellm.CustomLLM):  # type: ignore[misc,name-defined]
        async def acompletion(self, *args: Any, **kwargs: Any) -> Any:  # pyright: ignore[reportIncompatibleMethodOverride]
            fake, name, call = target(args, kwargs)
            return await fake.complete(
                name, call["messages"], metadata=call["metadata"], tools=call["tools"]
            )

        async def astreaming(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:  # pyright: ignore[reportIncompatibleMethodOverride]
            fake, name, call = target(args, kwargs)
            async for chunk in fake.stream(
                name, call["messages"], metadata=call["metadata"], tools=call["tools"]
            ):
                yield chunk

    existing: list[dict[str, Any]] = litellm.custom_provider_map or []
    providers = [p for p in existing if p.get("provider") != PROVIDER]
    litellm.custom_provider_map = [
        *providers,
        {"provider": PROVIDER, "custom_handler": _Provider()},
    ]
    _registered = True
