"""Bounded HTTP responses for litellm: no provider body can hold the event loop.

litellm scans an error's text with dozens of secret-matching regular expressions, several
times, on the event loop: a 2 MB error body held the loop for about 8 s per attempt, so no
timeout or deadline could fire. Every async transport litellm builds (litellm 1.106 to 1.110
build them all in `AsyncHTTPHandler.create_async_transport`, for the OpenAI SDK's clients and
its own handlers alike) is wrapped here:

- an error body (status >= 400) longer than `MAX_ERROR_BYTES` is not read further; litellm
  gets an OpenAI-style error holding its first kilobyte, with the status and headers
  (Retry-After included) it came with;
- a successful body (streams included) longer than `MAX_BODY_BYTES` fails the call with
  `ResponseTooLarge`, a `ModelError` that is not retried;
- a whole (not streamed) chat completion longer than `CHECKED_BYTES` is first converted as
  litellm will convert it: when litellm cannot (a malformed usage block, tool arguments nested
  past its parser...), it would have put the whole body in its error and scanned it for
  secrets (a 1 MB answer held the loop 20 s); litellm gets a short 502 error instead.

Imported only once litellm is (it imports httpx).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import httpx

from orchestra.models.failures import ResponseTooLarge

__all__ = ["CHECKED_BYTES", "MAX_BODY_BYTES", "MAX_ERROR_BYTES", "bound_transports"]

MAX_ERROR_BYTES = 4096
"""The longest error body passed to litellm as it is (real providers' errors are far shorter)."""
MAX_BODY_BYTES = 8 * 1024 * 1024
"""The longest successful response body read (8 MiB, far above any real answer; streams count
every chunk). litellm decodes and converts a body in one go, holding the event loop for about
a tenth of a second per MB here: this is also what bounds the loop lag a provider can cause."""
CHECKED_BYTES = 2 * 1024
"""Whole chat completions longer than this are checked before litellm reads them (a failure
on a shorter one costs litellm a few hundredths of a second; the check costs about a
millisecond, saved on the usual short answers)."""
_KEPT_CHARS = 1024


class _Capped(httpx.AsyncByteStream):
    """A response body that fails once it grows past `limit` bytes."""

    def __init__(self, inner: httpx.AsyncByteStream, limit: int) -> None:
        self._inner = inner
        self._limit = limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size = 0
        async for chunk in self._inner:
            size += len(chunk)
            if size > self._limit:
                raise ResponseTooLarge(
                    f"the provider's answer is longer than {self._limit:,} bytes; "
                    "orchestra stopped reading it"
                )
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class _Bounded(httpx.AsyncBaseTransport):
    """A transport whose responses are bounded (see the module docstring)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if response.status_code < 400:
            # A transport's responses carry async streams (httpx's own contract).
            capped = _Capped(cast(httpx.AsyncByteStream, response.stream), MAX_BODY_BYTES)
            if not _whole_completion(request, response):
                response.stream = capped
                return response
            try:
                raw = b"".join([chunk async for chunk in capped])
            finally:
                await response.aclose()
            if len(raw) > CHECKED_BYTES:
                problem = _unreadable(_same(response, request, raw).read())
                if problem is not None:
                    return _refused(request, response, len(raw), problem)
            return _same(response, request, raw)
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in response.aiter_raw():
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_ERROR_BYTES:
                    break
        finally:
            await response.aclose()
        raw = b"".join(chunks)
        headers = response.headers
        if size > MAX_ERROR_BYTES:
            headers, raw = _cut(headers, raw)
        return httpx.Response(
            response.status_code,
            headers=headers,
            content=raw,
            request=request,
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


def _whole_completion(request: httpx.Request, response: httpx.Response) -> bool:
    """A chat completion answered in one JSON body (not a stream of events)."""
    kind = response.headers.get("content-type", "")
    return request.url.path.endswith("/chat/completions") and "event-stream" not in kind


def _same(response: httpx.Response, request: httpx.Request, raw: bytes) -> httpx.Response:
    """A fresh response with `response`'s status and headers and the raw body `raw`."""
    return httpx.Response(
        response.status_code,
        headers=response.headers,
        content=raw,
        request=request,
        extensions=response.extensions,
    )


def _unreadable(body: bytes) -> str | None:
    """Why litellm could not convert this chat completion (None when it can), in a few words:
    never the body itself."""
    try:
        data = json.loads(body)  # the parser the SDK will use, so it fails where it would
    except (ValueError, RecursionError) as exc:
        return f"not valid JSON ({type(exc).__name__})"
    if not isinstance(data, dict):
        return "not a JSON object"
    litellm: Any = importlib.import_module("litellm")
    converter: Any = importlib.import_module(
        "litellm.litellm_core_utils.llm_response_utils.convert_dict_to_response"
    )
    try:
        converter.convert_to_model_response_object(
            response_object=data, model_response_object=litellm.ModelResponse()
        )
    except Exception as exc:  # whatever litellm trips on, it would trip on it again
        root: BaseException = exc
        for _ in range(10):  # litellm wraps what went wrong: name that
            inner = root.__cause__ or root.__context__
            if inner is None:
                break
            root = inner
        return f"litellm cannot read it: {type(root).__name__}"
    return None


def _refused(
    request: httpx.Request, response: httpx.Response, size: int, problem: str
) -> httpx.Response:
    """The short error litellm gets instead of an unreadable answer."""
    message = f"the provider's answer ({size:,} bytes) is not a usable chat completion: {problem}"
    body = {"error": {"message": message, "type": "invalid_response", "code": None}}
    return httpx.Response(502, json=body, request=request, extensions=response.extensions)


def _cut(headers: httpx.Headers, raw: bytes) -> tuple[httpx.Headers, bytes]:
    """An error body too long to hand on: an OpenAI-style error holding its first kilobyte."""
    kept = httpx.Headers(
        [
            (name, value)
            for name, value in headers.multi_items()
            if name.lower() not in ("content-length", "content-encoding", "transfer-encoding")
        ]
    )
    kept["content-type"] = "application/json"
    encoded = "content-encoding" in headers
    start = "(compressed)" if encoded else raw[:_KEPT_CHARS].decode("utf-8", "replace")
    message = (
        f"{start} [... the provider's error body was longer than {MAX_ERROR_BYTES:,} bytes; "
        "orchestra cut it]"
    )
    body = {"error": {"message": message, "type": "error_body_too_long", "code": None}}
    return kept, json.dumps(body).encode()


def _bounded_factory(create: Callable[..., Any]) -> Callable[..., Any]:
    def create_async_transport(*args: Any, **kwargs: Any) -> Any:
        transport = create(*args, **kwargs)
        # None (litellm's aiohttp transport switched off) leaves httpx its default transport,
        # built from the client's own TLS settings: not bounded.
        return None if transport is None else _Bounded(transport)

    create_async_transport.orchestra_bounded = True  # type: ignore[attr-defined]
    return create_async_transport


def bound_transports() -> None:
    """Wrap litellm's transport factory (once per process; a test pins the seam)."""
    handler: Any = importlib.import_module("litellm.llms.custom_httpx.http_handler")
    create = handler.AsyncHTTPHandler.create_async_transport
    if not getattr(create, "orchestra_bounded", False):
        handler.AsyncHTTPHandler.create_async_transport = staticmethod(_bounded_factory(create))
