# pyright: strict
"""Step types, response payloads and shared state of the scripted test server.

Kept apart from the HTTP machinery in `orchestra.testing.server`, which re-exports the public
names; import them from there.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import socket
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TypeAlias, cast

__all__ = [
    "EmptyChoices",
    "Error",
    "Malformed",
    "RecordedRequest",
    "Reply",
    "Step",
    "StepSource",
    "StreamCut",
    "StreamStall",
]


@dataclass(frozen=True)
class Reply:
    """A successful chat completion (HTTP 200), streamed as SSE when the request asks for it.

    Attributes:
        content: The assistant's text; None for a tool-call-only answer.
        tool_calls: Entries `{"name": str, "arguments": dict | str}`; the server adds `id`
            (`call_<n>`, unless the entry has one) and `type`, and JSON-encodes dict arguments.
        input_tokens: Reported `prompt_tokens`; None estimates ceil(chars / 4) of all message
            contents (at least 1).
        output_tokens: Reported `completion_tokens`; None estimates ceil(chars / 4) of the
            content plus tool-call names and arguments.
        delay: Seconds to wait before answering, to simulate a slow or hung model.
        chunk_delay: Seconds between SSE chunks when streaming.
        usage: The `usage` object sent as it is, instead of the counts above (for broken
            providers: negative or mistyped counts).
        no_usage: Send no `usage` at all, as some servers do.
    """

    content: str | None = "ok"
    tool_calls: Sequence[Mapping[str, object]] = ()
    input_tokens: int | None = None
    output_tokens: int | None = None
    delay: float = 0.0
    chunk_delay: float = 0.0
    usage: Mapping[str, object] | None = None
    no_usage: bool = False


@dataclass(frozen=True)
class Error:
    """An OpenAI-style JSON error response.

    Attributes:
        status: The HTTP status code.
        message: The error message; empty picks a default for the status.
        retry_after: Value of the `Retry-After` header: seconds, or an HTTP-date string.
        delay: Seconds to wait before answering.
    """

    status: int
    message: str = ""
    retry_after: str | float | None = None
    delay: float = 0.0

    @classmethod
    def context_overflow(cls, max_tokens: int = 8192) -> Error:
        """A 400 worded like OpenAI's, which litellm maps to `ContextWindowExceededError`.

        Args:
            max_tokens: The context length the message claims the model has.

        Returns:
            The error step.
        """
        # +808 so that the default reads exactly like OpenAI's own documented example.
        return cls(
            400,
            f"This model's maximum context length is {max_tokens} tokens. "
            f"However, your messages resulted in {max_tokens + 808} tokens.",
        )


@dataclass(frozen=True)
class Malformed:
    """A response whose `application/json` body is sent exactly as given: by default a 200
    whose body is not valid JSON; any body (a hostile one) with any status.

    Attributes:
        body: The raw body sent, truncated JSON by default.
        status: The HTTP status sent with it.
    """

    body: str = '{"id": "x", "choices": ['
    status: int = 200


@dataclass(frozen=True)
class EmptyChoices:
    """A 200 with a well-formed completion whose `choices` list is empty and usage is zero."""


@dataclass(frozen=True)
class StreamCut:
    """A response whose connection drops mid-body.

    Streaming requests get `after_chunks` SSE content chunks (one per word of `content`), then
    the connection closes without the terminating zero-length chunk. Non-streaming requests get
    a `Content-Length` larger than the part of the body sent before the close.

    Attributes:
        content: The answer the chunks are cut from.
        after_chunks: How many content chunks go out before the cut.
    """

    content: str = "partial answer that never"
    after_chunks: int = 2


@dataclass(frozen=True)
class StreamStall:
    """A response that pauses mid-body, then finishes normally.

    Streaming requests get `after_chunks` SSE content chunks, a pause of `stall` seconds, then
    the rest. Non-streaming requests get the first half of the body, the pause, then the rest.
    stop() interrupts the pause and drops the connection.

    Attributes:
        content: The full answer.
        after_chunks: How many content chunks go out before the pause.
        stall: Seconds of silence.
    """

    content: str = "stalled answer"
    after_chunks: int = 1
    stall: float = 5.0


Step: TypeAlias = Reply | Error | Malformed | EmptyChoices | StreamCut | StreamStall
STEP_TYPES = (Reply, Error, Malformed, EmptyChoices, StreamCut, StreamStall)


@dataclass(frozen=True)
class RecordedRequest:
    """One chat-completion request as the server saw and answered it.

    Attributes:
        model: The body's `model` field as received (litellm strips an `openai/` prefix).
        body: The parsed JSON body (empty if it did not parse).
        messages: The body's `messages`.
        stream: Whether the body asked for `"stream": true`.
        headers: Request headers, names lower-cased.
        arrived: `time.monotonic()` when the server started reading the request.
        finished: `time.monotonic()` just before the response's last write (so a client holding
            the whole answer always finds this record), or when the exchange ended early.
        status: HTTP status sent; 0 if none was (stop() interrupted a delay).
        step: The step served.
    """

    model: str
    body: dict[str, object]
    messages: list[dict[str, object]]
    stream: bool
    headers: dict[str, str]
    arrived: float
    finished: float = 0.0
    status: int = 0
    step: Step = field(default_factory=Reply)

    @property
    def last_user_message(self) -> str:
        """The text of the last `user` message, or "" if there is none."""
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return content_text(message.get("content"))
        return ""


StepSource: TypeAlias = Callable[[RecordedRequest], Step]
"""A function choosing the step for a request that has no scripted step left."""

_DEFAULT_MESSAGES = {400: "Bad request", 401: "Invalid API key", 429: "Rate limit exceeded"}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "requests",
}
_ERROR_CODES = {401: "invalid_api_key", 404: "not_found", 429: "rate_limit_exceeded"}


def error_message(step: Error) -> str:
    """The message `step` sends: its own, or the default for its status."""
    if step.message:
        return step.message
    if step.status >= 500:
        return "Server error"
    if step.status in _DEFAULT_MESSAGES:
        return _DEFAULT_MESSAGES[step.status]
    try:
        return HTTPStatus(step.status).phrase
    except ValueError:
        return "Error"


def error_payload(step: Error) -> dict[str, object]:
    """The OpenAI-shaped JSON error body for `step`."""
    message = error_message(step)
    # litellm maps any body saying "invalid_request_error" to BadRequestError whatever the
    # status, so only a 400 may use that type; the others must map by their status code.
    kind = "server_error" if step.status >= 500 else _ERROR_TYPES.get(step.status, "api_error")
    code = _ERROR_CODES.get(step.status)
    if "maximum context length" in message:
        code = "context_length_exceeded"
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def retry_after_header(value: str | float) -> str:
    """Render a `Retry-After` value; whole seconds print without a decimal point."""
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def content_text(content: object) -> str:
    """The text of a message's `content`, whether a string or a list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = cast("list[object]", content)
        texts = [
            str(cast("dict[str, object]", part).get("text", ""))
            for part in parts
            if isinstance(part, dict)
        ]
        return "".join(texts)
    return ""


def estimate_tokens(text: str) -> int:
    """The server's deterministic token estimate: ceil(characters / 4)."""
    return math.ceil(len(text) / 4)


def words(text: str) -> list[str]:
    """Split `text` into stream pieces, one per word with its trailing whitespace."""
    return re.findall(r"\s*\S+\s*", text) or [text]


def stream_deltas(content: str | None, calls: list[dict[str, object]]) -> list[dict[str, object]]:
    """The deltas a streamed answer is sent as: one per word, then all tool calls in one."""
    # A tool-call-only answer has no text delta; an empty answer still needs one.
    pieces = words(content) if content else ([] if calls else [""])
    deltas: list[dict[str, object]] = [{"role": "assistant", "content": p} for p in pieces]
    if calls:
        indexed = [{"index": index, **call} for index, call in enumerate(calls)]
        deltas.append({"role": "assistant", "content": None, "tool_calls": indexed})
    return deltas


def tool_call_entries(
    calls: Sequence[Mapping[str, object]], first_id: int
) -> list[dict[str, object]]:
    """OpenAI `tool_calls` entries for a Reply's compact `{"name", "arguments"}` entries."""
    entries: list[dict[str, object]] = []
    for offset, call in enumerate(calls):
        arguments = call.get("arguments", {})
        encoded = arguments if isinstance(arguments, str) else json.dumps(arguments)
        entries.append(
            {
                "id": str(call.get("id", f"call_{first_id + offset}")),
                "type": "function",
                "function": {"name": str(call.get("name", "")), "arguments": encoded},
            }
        )
    return entries


def usage(
    request: RecordedRequest, step: Reply, tool_calls: list[dict[str, object]]
) -> Mapping[str, object] | None:
    """The `usage` object for answering `request` with `step` (None: send none)."""
    if step.no_usage:
        return None
    if step.usage is not None:
        return step.usage
    prompt = step.input_tokens
    if prompt is None:
        text = "".join(content_text(message.get("content")) for message in request.messages)
        prompt = max(1, estimate_tokens(text))
    completion = step.output_tokens
    if completion is None:
        # Tool calls cost completion tokens on real APIs; count them so budgets see them.
        text = step.content or ""
        for call in tool_calls:
            function = cast("dict[str, str]", call["function"])
            text += function["name"] + function["arguments"]
        completion = estimate_tokens(text)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def completion(
    ident: str,
    created: int,
    model: str,
    choices: list[object],
    usage: Mapping[str, object] | None,
) -> dict[str, object]:
    """A non-streaming `chat.completion` body (without `usage` when it is None)."""
    body: dict[str, object] = {
        "id": ident,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
        # As OpenAI and Groq send it; litellm's Groq client fails on an answer without it.
        "service_tier": "default",
    }
    if usage is not None:
        body["usage"] = dict(usage)
    return body


def message_choice(content: str | None, tool_calls: list[dict[str, object]]) -> dict[str, object]:
    """The single choice of a non-streaming completion."""
    message: dict[str, object] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "index": 0,
        "message": message,
        "finish_reason": "tool_calls" if tool_calls else "stop",
    }


def chunk(
    ident: str,
    created: int,
    model: str,
    delta: Mapping[str, object] | None,
    finish_reason: str | None = None,
    usage: Mapping[str, object] | None = None,
) -> bytes:
    """One SSE event carrying a `chat.completion.chunk`; a None delta makes the usage chunk."""
    body: dict[str, object] = {
        "id": ident,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": []
        if delta is None
        else [{"index": 0, "delta": dict(delta), "finish_reason": finish_reason}],
    }
    if usage is not None:
        body["usage"] = dict(usage)
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def shut(connection: socket.socket) -> None:
    """Shut a connection down both ways, so a thread blocked reading it wakes up."""
    with contextlib.suppress(OSError):  # Already closed by the peer.
        connection.shutdown(socket.SHUT_RDWR)


def as_step(value: object) -> Step | None:
    """`value` if it is a step, else None."""
    return value if isinstance(value, STEP_TYPES) else None


def parse_object(raw: bytes) -> dict[str, object] | None:
    """The JSON object in `raw`, or None if `raw` is not one."""
    try:
        parsed: object = json.loads(raw)
    except ValueError:
        return None
    return cast("dict[str, object]", parsed) if isinstance(parsed, dict) else None


class State:
    """Everything the handler threads share; one lock guards all of its mutable parts."""

    def __init__(self, api_key: str | None, default: Step | StepSource) -> None:
        self.api_key = api_key
        self.default = default
        self.handler: StepSource | None = None
        self.lock = threading.Lock()
        self.drained = threading.Condition(self.lock)
        self.stopping = threading.Event()
        self.scripts: dict[str, deque[Step]] = {}
        self.records: list[RecordedRequest] = []
        # Keyed by model; the None key counts every model together.
        self.in_flight: dict[str | None, int] = {}
        self.peaks: dict[str | None, int] = {}
        self.connections: set[socket.socket] = set()
        self.counter = 0

    def next_ids(self, count: int) -> int:
        """Reserve `count` consecutive ids and return the first."""
        with self.lock:
            first = self.counter + 1
            self.counter += count
            return first

    def begin(self, model: str) -> None:
        """Count a request as in flight."""
        with self.lock:
            for key in (model, None):
                now = self.in_flight.get(key, 0) + 1
                self.in_flight[key] = now
                self.peaks[key] = max(self.peaks.get(key, 0), now)

    def end(self, record: RecordedRequest) -> None:
        """Count a request as finished and keep its record."""
        with self.lock:
            for key in (record.model, None):
                self.in_flight[key] -= 1
            self.records.append(record)

    def next_step(self, request: RecordedRequest) -> Step:
        """Pop the model's next scripted step, or ask the handler or default."""
        with self.lock:
            queue = self.scripts.get(request.model)
            if queue:
                return queue.popleft()
            source = self.default if self.handler is None else self.handler
        if isinstance(source, STEP_TYPES):
            return source
        # Called outside the lock so that a handler may inspect the server.
        try:
            chosen: object = source(request)
        except Exception as exc:
            # A bug in test code should fail the test loudly, not hang the client.
            return Error(500, f"step handler raised {exc!r}")
        step = as_step(chosen)
        if step is None:
            return Error(500, f"step handler returned {chosen!r}, which is not a step")
        return step

    def sleep(self, seconds: float) -> bool:
        """Wait `seconds` unless stop() comes first; True if it did."""
        return seconds > 0 and self.stopping.wait(seconds)

    def opened(self, connection: socket.socket) -> None:
        """Track a connection so stop() can wake a thread idling on it."""
        with self.lock:
            self.connections.add(connection)
            if self.stopping.is_set():
                shut(connection)

    def closed(self, connection: socket.socket) -> None:
        """Forget a connection once its thread is done with it."""
        with self.lock:
            self.connections.discard(connection)
            self.drained.notify_all()

    def close_connections(self, timeout: float) -> None:
        """Shut every open connection down and wait, bounded, for their threads to finish."""
        with self.lock:
            for connection in self.connections:
                shut(connection)
            self.drained.wait_for(lambda: not self.connections, timeout)
