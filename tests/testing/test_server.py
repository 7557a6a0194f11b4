"""Tests of the scripted OpenAI-compatible test server, over plain HTTP and through litellm."""

from __future__ import annotations

import email.utils
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import anyio
import httpx
import litellm
import pytest
from litellm.exceptions import MidStreamFallbackError

from orchestra.testing.server import (
    EmptyChoices,
    Error,
    Malformed,
    OpenAICompatibleServer,
    RecordedRequest,
    Reply,
    Step,
    StreamCut,
    StreamStall,
    StreamUnfinished,
)

litellm.suppress_debug_info = True

# litellm builds pydantic models lazily on its first call, and pydantic warns about litellm's
# own TypedDicts; pyproject turns warnings into errors, and this one is not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:.*is using the `ReadOnly` qualifier:UserWarning")

HELLO = [{"role": "user", "content": "hi there"}]
# One client for the module: building an httpx client (its SSL context) costs ~30 ms.
HTTP = httpx.Client(timeout=5)


@pytest.fixture(scope="module", autouse=True)
def _close_http() -> Iterator[None]:
    yield
    HTTP.close()


@pytest.fixture
def server() -> Iterator[OpenAICompatibleServer]:
    with OpenAICompatibleServer() as running:
        yield running


def post(server: OpenAICompatibleServer, model: str = "m1", **body: Any) -> httpx.Response:
    body.setdefault("messages", HELLO)
    return HTTP.post(f"{server.url}/chat/completions", json={"model": model, **body})


def content(response: httpx.Response) -> Any:
    return response.json()["choices"][0]["message"]["content"]


def complete(server: OpenAICompatibleServer, model: str = "m1", **kwargs: Any) -> Any:
    """Run one litellm.acompletion against the server and return its result."""
    kwargs.setdefault("messages", HELLO)

    async def call() -> Any:
        return await litellm.acompletion(
            model=f"openai/{model}",
            api_base=server.url,
            api_key="k",
            max_retries=0,
            num_retries=0,
            **kwargs,
        )

    return anyio.run(call)


def stream_through_litellm(server: OpenAICompatibleServer) -> tuple[list[Any], Exception | None]:
    """Stream one completion through litellm; return the chunks seen and what it raised."""

    async def call() -> tuple[list[Any], Exception | None]:
        chunks: list[Any] = []
        response = await litellm.acompletion(
            model="openai/m1",
            api_base=server.url,
            api_key="k",
            messages=HELLO,
            max_retries=0,
            num_retries=0,
            stream=True,
            stream_options={"include_usage": True},
        )
        try:
            async for piece in response:
                chunks.append(piece)
        except Exception as exc:
            return chunks, exc
        return chunks, None

    return anyio.run(call)


def read_all(connection: socket.socket) -> bytes:
    with connection.makefile("rb") as stream:
        return stream.read()


def sse_events(text: str) -> list[Any]:
    events = [line.removeprefix("data: ") for line in text.split("\n\n") if line]
    assert events[-1] == "[DONE]"
    return [json.loads(event) for event in events[:-1]]


# --- replies ----------------------------------------------------------------------------


def test_reply_content_and_estimated_usage(server: OpenAICompatibleServer) -> None:
    """A Reply answers 200 with its content and ceil(chars/4) token estimates."""
    server.script("m1", [Reply("hello world")])
    body = post(server).json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "m1"
    assert body["id"].startswith("chatcmpl-")
    assert body["choices"][0] == {
        "index": 0,
        "message": {"role": "assistant", "content": "hello world"},
        "finish_reason": "stop",
    }
    assert body["usage"] == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}


def test_reply_explicit_token_counts(server: OpenAICompatibleServer) -> None:
    """Explicit input/output token counts replace the estimate."""
    server.script("m1", [Reply("x", input_tokens=100, output_tokens=7)])
    usage = post(server).json()["usage"]
    assert usage == {"prompt_tokens": 100, "completion_tokens": 7, "total_tokens": 107}


def test_reply_tool_calls(server: OpenAICompatibleServer) -> None:
    """Tool calls get ids and a function type, dict arguments become JSON strings."""
    calls = [{"name": "search", "arguments": {"q": "x"}}, {"name": "noop", "arguments": "{}"}]
    server.script("m1", [Reply(None, tool_calls=calls)])
    choice = post(server).json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    made = choice["message"]["tool_calls"]
    assert [call["type"] for call in made] == ["function", "function"]
    assert [call["id"] for call in made] == ["call_2", "call_3"]
    assert made[0]["function"] == {"name": "search", "arguments": '{"q": "x"}'}
    assert made[1]["function"] == {"name": "noop", "arguments": "{}"}


def test_tool_calls_through_litellm(server: OpenAICompatibleServer) -> None:
    """litellm parses the tool calls of a non-streaming reply."""
    server.script("m1", [Reply(None, tool_calls=[{"name": "f", "arguments": {"a": 1}}])])
    message = complete(server).choices[0].message
    assert message.tool_calls[0].function.name == "f"
    assert json.loads(message.tool_calls[0].function.arguments) == {"a": 1}


def test_script_is_per_model_fifo_then_default(server: OpenAICompatibleServer) -> None:
    """Each model consumes its own queue in order, then falls back to the default."""
    server.script("m1", [Reply("a1"), Reply("a2")])
    server.script("m2", [Reply("b1")])
    server.script("m1", [Reply("a3")])
    assert content(post(server, "m2")) == "b1"
    assert [content(post(server, "m1")) for _ in range(4)] == ["a1", "a2", "a3", "ok"]
    assert content(post(server, "m2")) == "ok"


def test_default_step_and_callable_default() -> None:
    """The constructor's default may be a step or a function of the request."""
    with OpenAICompatibleServer(default=Error(503)) as server:
        assert post(server).status_code == 503
    echo = OpenAICompatibleServer(default=lambda request: Reply(request.last_user_message))
    with echo as server:
        assert content(post(server)) == "hi there"


def test_handler_replaces_default_after_script(server: OpenAICompatibleServer) -> None:
    """The handler answers once the script is exhausted, and sees the request."""
    seen: list[RecordedRequest] = []

    def handler(request: RecordedRequest) -> Step:
        seen.append(request)
        return Reply(f"{request.model}: {request.last_user_message}")

    server.handler = handler
    server.script("m1", [Reply("scripted")])
    assert content(post(server)) == "scripted"
    assert content(post(server)) == "m1: hi there"
    assert [request.body["model"] for request in seen] == ["m1"]
    server.handler = None
    assert content(post(server)) == "ok"


def test_handler_bug_becomes_500(server: OpenAICompatibleServer) -> None:
    """A handler that raises or returns a non-step answers 500 naming the problem."""

    def broken(request: RecordedRequest) -> Step:
        raise ValueError("boom")

    server.handler = broken
    response = post(server)
    assert response.status_code == 500
    assert "boom" in response.json()["error"]["message"]


def test_script_rejects_non_steps(server: OpenAICompatibleServer) -> None:
    """Scripting something that is not a step fails at once."""
    with pytest.raises(TypeError):
        server.script("m1", "oops")  # pyright: ignore[reportArgumentType]


# --- errors -------------------------------------------------------------------------------


def test_429_with_retry_after(server: OpenAICompatibleServer) -> None:
    """An Error sets its status, OpenAI error body and Retry-After header."""
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    server.script(
        "m1", [Error(429, retry_after=2), Error(429, retry_after=0.5), Error(429, "x", date)]
    )
    first = post(server)
    assert first.status_code == 429
    assert first.headers["retry-after"] == "2"
    assert first.json() == {
        "error": {
            "message": "Rate limit exceeded",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    assert post(server).headers["retry-after"] == "0.5"
    assert post(server).headers["retry-after"] == date
    assert "retry-after" not in {key.lower() for key in post(server).headers}


@pytest.mark.parametrize(
    ("status", "message"),
    [(400, "Bad request"), (401, "Invalid API key"), (500, "Server error"), (503, "Server error")],
)
def test_error_default_messages(server: OpenAICompatibleServer, status: int, message: str) -> None:
    """Each status has a default message."""
    server.script("m1", [Error(status)])
    response = post(server)
    assert response.status_code == status
    assert response.json()["error"]["message"] == message


@pytest.mark.parametrize(
    ("status", "raised"),
    [
        (400, litellm.BadRequestError),
        (401, litellm.AuthenticationError),
        (404, litellm.NotFoundError),
        (429, litellm.RateLimitError),
        (500, litellm.InternalServerError),
        (502, litellm.BadGatewayError),
        (503, litellm.ServiceUnavailableError),
    ],
)
def test_errors_through_litellm(
    server: OpenAICompatibleServer, status: int, raised: type[Exception]
) -> None:
    """litellm maps each error status to its own exception class."""
    server.script("m1", [Error(status)])
    with pytest.raises(raised) as caught:
        complete(server)
    assert getattr(caught.value, "status_code", None) == status


def test_context_overflow_through_litellm(server: OpenAICompatibleServer) -> None:
    """Error.context_overflow() makes litellm raise ContextWindowExceededError."""
    server.script("m1", [Error.context_overflow()])
    with pytest.raises(litellm.ContextWindowExceededError) as caught:
        complete(server)
    assert caught.value.status_code == 400
    assert "maximum context length is 8192 tokens" in str(caught.value)


def test_wrong_api_key_is_401_and_recorded() -> None:
    """With api_key set, a wrong bearer token gets 401 and does not consume the script."""
    with OpenAICompatibleServer(api_key="sekrit") as server:
        server.script("m1", [Reply("scripted")])
        assert post(server).status_code == 401
        with pytest.raises(litellm.AuthenticationError):
            complete(server)
        auth = {"Authorization": "Bearer sekrit"}
        response = HTTP.post(
            f"{server.url}/chat/completions", json={"model": "m1", "messages": HELLO}, headers=auth
        )
        assert content(response) == "scripted"
        assert [request.status for request in server.requests] == [401, 401, 200]
        assert server.requests[0].step == Error(401)


def test_unknown_path_is_404_and_models_are_listed(server: OpenAICompatibleServer) -> None:
    """Unknown paths get a JSON 404; GET /v1/models lists the scripted models."""
    response = HTTP.post(f"{server.url}/completions", json={})
    assert response.status_code == 404
    assert "error" in response.json()
    server.script("alpha", [Reply()])
    server.script("beta", [])
    listed = HTTP.get(f"{server.url}/models").json()
    assert [model["id"] for model in listed["data"]] == ["alpha", "beta"]


def test_body_that_is_not_json_is_400(server: OpenAICompatibleServer) -> None:
    """A body that is not a JSON object answers 400 and is recorded with an empty model."""
    response = HTTP.post(f"{server.url}/chat/completions", content=b"{nope")
    assert response.status_code == 400
    (request,) = server.requests
    assert (request.model, request.body, request.status) == ("", {}, 400)


# --- malformed answers ----------------------------------------------------------------------


def test_empty_choices(server: OpenAICompatibleServer) -> None:
    """EmptyChoices is a valid completion with no choices; litellm passes it through."""
    server.script("m1", [EmptyChoices(), EmptyChoices()])
    body = post(server).json()
    assert body["choices"] == []
    assert body["usage"]["total_tokens"] == 0
    assert complete(server).choices == []


def test_malformed_through_litellm(server: OpenAICompatibleServer) -> None:
    """A truncated JSON body makes litellm raise InternalServerError (500)."""
    server.script("m1", [Malformed()])
    raw = post(server, "m2")
    assert raw.status_code == 200
    server.script("m2", [Malformed("{not json")])
    assert post(server, "m2").text == "{not json"
    with pytest.raises(litellm.InternalServerError) as caught:
        complete(server)
    assert caught.value.status_code == 500


def test_stream_cut_without_streaming(server: OpenAICompatibleServer) -> None:
    """A non-streaming StreamCut promises more body than it sends, then closes."""
    server.script("m1", [StreamCut(), StreamCut()])
    with pytest.raises(httpx.RemoteProtocolError):
        post(server)
    with pytest.raises(litellm.InternalServerError):
        complete(server)
    assert [request.status for request in server.requests] == [200, 200]


# --- streaming ----------------------------------------------------------------------------


def test_stream_wire_format(server: OpenAICompatibleServer) -> None:
    """Streaming answers are chunked SSE chunk events, then a usage event on request, then DONE."""
    server.script("m1", [Reply("one two three"), Reply("one two three")])
    plain = post(server, stream=True)
    assert plain.headers["content-type"] == "text/event-stream"
    assert plain.headers["transfer-encoding"] == "chunked"
    events = sse_events(plain.text)
    deltas = [event["choices"][0]["delta"].get("content") for event in events]
    assert deltas == ["one ", "two ", "three", None]
    assert events[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(event["object"] == "chat.completion.chunk" for event in events)
    with_usage = sse_events(post(server, stream=True, stream_options={"include_usage": True}).text)
    assert with_usage[-1]["choices"] == []
    assert with_usage[-1]["usage"] == {
        "prompt_tokens": 2,
        "completion_tokens": 4,
        "total_tokens": 6,
    }


def test_streaming_through_litellm(server: OpenAICompatibleServer) -> None:
    """litellm reassembles a streamed reply and reports its usage."""
    server.script("m1", [Reply("streamed reply text", output_tokens=9)])
    chunks, raised = stream_through_litellm(server)
    assert raised is None
    built: Any = litellm.stream_chunk_builder(chunks)
    assert built.choices[0].message.content == "streamed reply text"
    assert built.usage.prompt_tokens == 2
    assert built.usage.completion_tokens == 9
    assert server.requests[0].stream


def test_streamed_tool_calls_through_litellm(server: OpenAICompatibleServer) -> None:
    """Tool calls stream in one delta that litellm reassembles."""
    server.script("m1", [Reply(None, tool_calls=[{"name": "f", "arguments": {"a": 1}}])])
    chunks, raised = stream_through_litellm(server)
    assert raised is None
    built: Any = litellm.stream_chunk_builder(chunks)
    assert built.choices[0].finish_reason == "tool_calls"
    assert built.choices[0].message.tool_calls[0].function.arguments == '{"a": 1}'


def test_stream_cut_through_litellm(server: OpenAICompatibleServer) -> None:
    """StreamCut makes litellm raise mid-stream, after the chunks sent before the cut."""
    server.script("m1", [StreamCut("partial answer that never", after_chunks=2)])
    chunks, raised = stream_through_litellm(server)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == "partial answer "
    assert isinstance(raised, MidStreamFallbackError)
    assert isinstance(raised, litellm.ServiceUnavailableError)
    assert raised.status_code == 500
    assert "APIConnectionError" in str(raised)


def test_stream_unfinished_ends_cleanly_without_a_finish_reason(
    server: OpenAICompatibleServer,
) -> None:
    """StreamUnfinished sends some chunks and a clean [DONE], but no finish reason or usage."""
    server.script("m1", [StreamUnfinished("one two three four", after_chunks=2)])
    response = post(server, stream=True, stream_options={"include_usage": True})
    assert response.text.rstrip().endswith("data: [DONE]")
    events = sse_events(response.text)
    assert [event["choices"][0]["delta"]["content"] for event in events] == ["one ", "two "]
    assert all(event["choices"][0]["finish_reason"] is None for event in events)
    assert all("usage" not in event for event in events)


def test_stream_unfinished_without_streaming(server: OpenAICompatibleServer) -> None:
    """A non-streaming StreamUnfinished answers the partial text with a null finish reason."""
    server.script("m1", [StreamUnfinished("one two three", after_chunks=1)])
    body = post(server).json()
    assert body["choices"][0]["message"]["content"] == "one "
    assert body["choices"][0]["finish_reason"] is None
    assert "usage" not in body


def test_reply_finish_reason_and_missing_usage(server: OpenAICompatibleServer) -> None:
    """A Reply can say it was truncated (`length`) and leave its usage out, streamed or not."""
    cut = Reply("cut short", finish_reason="length", no_usage=True)
    server.script("m1", [cut, cut])
    body = post(server).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert "usage" not in body
    events = sse_events(post(server, stream=True, stream_options={"include_usage": True}).text)
    assert events[-1]["choices"][0]["finish_reason"] == "length"
    assert all("usage" not in event for event in events)


def test_stream_stall_pauses_then_finishes(server: OpenAICompatibleServer) -> None:
    """StreamStall sends its first chunks, goes silent for `stall`, then completes."""
    server.script("m1", [StreamStall("a b c", after_chunks=1, stall=0.15)])
    arrivals: list[tuple[float, str]] = []
    body = {"model": "m1", "messages": HELLO, "stream": True}
    started = time.monotonic()
    with HTTP.stream("POST", f"{server.url}/chat/completions", json=body) as response:
        for line in response.iter_lines():
            if line:
                arrivals.append((time.monotonic(), line))
    assert arrivals[-1][1] == "data: [DONE]"
    # A lower bound that holds under any load: the chunk after the stall cannot arrive sooner
    # (the gap between two arrivals can shrink when the client reads both at once).
    assert arrivals[1][0] - started >= 0.15
    assert json.loads(arrivals[0][1].removeprefix("data: "))["choices"][0]["delta"]["content"]


def test_stream_stall_through_litellm(server: OpenAICompatibleServer) -> None:
    """litellm waits out a short stall and gets the whole answer."""
    server.script("m1", [StreamStall("stalled answer", stall=0.1)])
    chunks, raised = stream_through_litellm(server)
    assert raised is None
    built: Any = litellm.stream_chunk_builder(chunks)
    assert built.choices[0].message.content == "stalled answer"


# --- records and concurrency ----------------------------------------------------------------


def test_records_times_headers_and_delay(server: OpenAICompatibleServer) -> None:
    """Records carry monotonic times on the test's clock, delay included, and the request."""
    server.script("m1", [Reply("slow", delay=0.1)])
    before = time.monotonic()
    messages = [
        {"role": "system", "content": "be brief"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "parts "}, {"type": "text", "text": "x"}],
        },
    ]
    response = HTTP.post(
        f"{server.url}/chat/completions",
        json={"model": "m1", "messages": messages},
        headers={"X-Trace": "t1"},
    )
    after = time.monotonic()
    assert content(response) == "slow"
    (request,) = server.requests_for("m1")
    assert before <= request.arrived <= request.finished <= after
    assert request.finished - request.arrived >= 0.1
    assert request.headers["x-trace"] == "t1"
    assert request.last_user_message == "parts x"
    assert request.messages == messages
    assert (request.status, request.step, request.stream) == (200, Reply("slow", delay=0.1), False)
    assert server.requests_for("other") == []


def test_peak_in_flight_counts_concurrent_requests(server: OpenAICompatibleServer) -> None:
    """Five concurrent requests delayed 1 s each peak at five in flight (1 s: the five must all
    arrive before the first answers, which 0.2 s did not always allow on a loaded machine)."""
    server.script("m1", [Reply(delay=1.0)] * 5)
    with ThreadPoolExecutor(max_workers=5) as pool:
        statuses = list(pool.map(lambda _: post(server).status_code, range(5)))
    post(server, "m2")
    assert statuses == [200] * 5
    assert server.peak_in_flight("m1") == 5
    assert server.peak_in_flight("m2") == 1
    assert server.peak_in_flight() == 5
    assert server.peak_in_flight("unknown") == 0
    first = min(request.finished for request in server.requests_for("m1"))
    assert max(request.arrived for request in server.requests_for("m1")) < first


def test_a_hundred_simultaneous_connections(server: OpenAICompatibleServer) -> None:
    """A hundred clients connecting at once are all served (the backlog is large enough)."""
    server.script("m1", [Reply(delay=0.1)] * 100)
    body = json.dumps({"model": "m1", "messages": HELLO}).encode()
    head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
    request = head.encode() + b"Connection: close\r\n\r\n" + body
    # Connect them all before sending anything, so they wait in the listen backlog together.
    connections = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(100)]
    try:
        for connection in connections:
            connection.sendall(request)
        answers = [read_all(connection) for connection in connections]
    finally:
        for connection in connections:
            connection.close()
    assert all(answer.startswith(b"HTTP/1.1 200 ") for answer in answers)
    assert server.peak_in_flight("m1") > 1


def test_keep_alive_connection_serves_many_requests(server: OpenAICompatibleServer) -> None:
    """One keep-alive connection serves request after request, with Nagle's algorithm off
    (it would add ~40 ms to each; benchmarks/server.py measures the difference)."""
    from orchestra.testing.server import _Handler  # pyright: ignore[reportPrivateUsage]

    assert _Handler.disable_nagle_algorithm is True
    with httpx.Client(base_url=server.url) as client:
        body = {"model": "m1", "messages": HELLO}
        for _ in range(20):
            assert client.post("/chat/completions", json=body).status_code == 200
    assert len(server.requests) == 20


def test_reset_clears_scripts_records_and_peaks(server: OpenAICompatibleServer) -> None:
    """reset() forgets scripts, records and peaks but keeps serving."""
    server.script("m1", [Reply("scripted")])
    server.script("m2", [Reply("scripted")])
    post(server, "m2")
    server.reset()
    assert server.requests == []
    assert server.peak_in_flight() == 0
    assert content(post(server)) == "ok"
    assert len(server.requests) == 1


# --- lifecycle ----------------------------------------------------------------------------


def test_url_and_port_need_a_running_server() -> None:
    """url and port exist only while running; stop() is idempotent."""
    server = OpenAICompatibleServer()
    with pytest.raises(RuntimeError):
        _ = server.url
    server.start()
    assert server.url == f"http://127.0.0.1:{server.port}/v1"
    with pytest.raises(RuntimeError):
        server.start()
    server.stop()
    server.stop()
    with pytest.raises(RuntimeError):
        _ = server.port


def test_stop_is_quick_while_a_request_stalls() -> None:
    """stop() interrupts a stalled stream and returns promptly."""
    server = OpenAICompatibleServer(default=StreamStall(stall=30))
    server.start()
    failures: list[BaseException] = []

    def client() -> None:
        try:
            post(server, stream=True)
        except httpx.HTTPError as exc:
            failures.append(exc)

    thread = threading.Thread(target=client)
    thread.start()
    deadline = time.monotonic() + 2
    while server.peak_in_flight() == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    start = time.monotonic()
    server.stop()
    assert time.monotonic() - start < 10  # a hang guard, not a speed claim
    thread.join(timeout=2)
    assert failures
    (request,) = server.requests
    assert request.status == 200
    assert request.finished - request.arrived < 10  # a hang guard, not a speed claim


def test_stop_interrupts_a_delay_and_closes_idle_keep_alive() -> None:
    """stop() cuts a delayed request and idle keep-alive connections without waiting."""
    server = OpenAICompatibleServer()
    server.start()
    server.script("slow", [Reply(delay=30)])
    failures: list[BaseException] = []

    def client() -> None:
        try:
            post(server, "slow")
        except httpx.HTTPError as exc:
            failures.append(exc)

    with httpx.Client(base_url=server.url) as idle:
        idle.post("/chat/completions", json={"model": "m1", "messages": HELLO})
        thread = threading.Thread(target=client)
        thread.start()
        deadline = time.monotonic() + 2
        while server.peak_in_flight("slow") == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        start = time.monotonic()
        server.stop()
        assert time.monotonic() - start < 10  # a hang guard, not a speed claim
        thread.join(timeout=2)
    assert failures
    assert [(request.model, request.status) for request in server.requests] == [
        ("m1", 200),
        ("slow", 0),
    ]
