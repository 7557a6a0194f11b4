# pyright: strict
"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1, for tests.

It runs in a daemon thread of the test's own process, so `time.monotonic()` stamps on its
records compare directly with the test's clock. Standard library only.

Example:
    ```python
    with OpenAICompatibleServer() as server:
        server.script("m1", [Error(429, retry_after=1), Reply("hello")])
        await litellm.acompletion(
            model="openai/m1", api_base=server.url, api_key="k", messages=[...]
        )
        assert [r.status for r in server.requests_for("m1")] == [429, 200]
    ```
"""

from __future__ import annotations

import json
import socketserver
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from orchestra.testing._server_steps import (
    EmptyChoices,
    Error,
    Malformed,
    RecordedRequest,
    Reply,
    State,
    Step,
    StepSource,
    StreamCut,
    StreamStall,
    as_step,
    chunk,
    completion,
    error_payload,
    message_choice,
    parse_object,
    retry_after_header,
    stream_deltas,
    tool_call_entries,
    usage,
)

__all__ = [
    "EmptyChoices",
    "Error",
    "Malformed",
    "OpenAICompatibleServer",
    "RecordedRequest",
    "Reply",
    "Step",
    "StepSource",
    "StreamCut",
    "StreamStall",
]

_COMPLETION_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})
_MODELS_PATHS = frozenset({"/v1/models", "/models"})
_ZERO_USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    # The default backlog of 5 drops connections when a hundred clients connect at once.
    request_queue_size = 512

    def __init__(self, state: State, port: int = 0) -> None:
        self.state = state
        super().__init__(("127.0.0.1", port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, which can take seconds where DNS is
        # slow or absent, and nothing here uses it.
        socketserver.TCPServer.server_bind(self)
        self.server_name = "127.0.0.1"
        self.server_port = int(self.socket.getsockname()[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Dropped connections are the point of several steps and of stop(); only real bugs
        # deserve a traceback on stderr.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without it every keep-alive request waits ~40 ms (Nagle against delayed ACK).
    disable_nagle_algorithm = True
    # Bounds how long an idle keep-alive connection can hold a thread after its client left.
    timeout = 30
    server_version = "orchestra-test-server"
    sys_version = ""
    _status = 0
    _pending: tuple[RecordedRequest, Step] | None = None

    @property
    def _state(self) -> State:
        return cast("_HTTPServer", self.server).state

    def setup(self) -> None:
        super().setup()
        self._state.opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self._state.closed(self.connection)

    def log_message(self, format: str, *args: object) -> None:
        # An access log line per request would bury pytest's output.
        pass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path not in _MODELS_PATHS:
            self._send_json(404, error_payload(Error(404, f"Unknown path {path}")))
        elif not self._authorized():
            self._send_json(401, error_payload(Error(401)))
        else:
            with self._state.lock:
                names = list(self._state.scripts)
            data = [{"id": name, "object": "model", "owned_by": "orchestra"} for name in names]
            self._send_json(200, {"object": "list", "data": data})

    def do_POST(self) -> None:
        arrived = time.monotonic()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        # Read the body even for a 404 so the keep-alive connection stays in step.
        raw = self.rfile.read(length)
        path = self.path.split("?", 1)[0]
        if path in _COMPLETION_PATHS:
            self._complete(arrived, raw)
        else:
            self._send_json(404, error_payload(Error(404, f"Unknown path {path}")))

    def _complete(self, arrived: float, raw: bytes) -> None:
        state = self._state
        body = parse_object(raw)
        model = body.get("model", "") if body else ""
        listed = body.get("messages") if body else None
        messages = [
            cast("dict[str, object]", message)
            for message in (cast("list[object]", listed) if isinstance(listed, list) else [])
            if isinstance(message, dict)
        ]
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else str(value)
        request = RecordedRequest(
            model=model if isinstance(model, str) else str(model),
            body=body or {},
            messages=messages,
            stream=bool(body and body.get("stream") is True),
            headers=headers,
            arrived=arrived,
        )
        state.begin(request.model)
        step: Step = Error(400, "The request body is not a JSON object")
        self._status = 0
        self._pending = (request, step)
        try:
            if body is not None:
                step = state.next_step(request) if self._authorized() else Error(401)
                self._pending = (request, step)
            self._serve(step, request)
        except OSError:
            # The client went away mid-response; the record still shows what was attempted.
            self.close_connection = True
        finally:
            self._commit()

    def _commit(self) -> None:
        """Record the pending request and count it finished, once.

        Called just before the response's last write (or when it ends without one), so a client
        holding a whole answer always finds its record, and its request no longer in flight.
        """
        if self._pending is not None:
            request, step = self._pending
            self._pending = None
            finished = time.monotonic()
            self._state.end(replace(request, finished=finished, status=self._status, step=step))

    def _authorized(self) -> bool:
        key = self._state.api_key
        return key is None or self.headers.get("Authorization") == f"Bearer {key}"

    def _serve(self, step: Step, request: RecordedRequest) -> None:
        if isinstance(step, (Reply, Error)) and self._pause(step.delay):
            return
        if isinstance(step, Error):
            retry = step.retry_after
            extra = {} if retry is None else {"Retry-After": retry_after_header(retry)}
            self._send_json(step.status, error_payload(step), extra)
        elif isinstance(step, Malformed):
            # surrogatepass: a hostile body may hold bytes no valid UTF-8 text would.
            self._send(step.status, step.body.encode("utf-8", "surrogatepass"), "application/json")
        elif isinstance(step, EmptyChoices):
            ident, created = self._ident(), int(time.time())
            self._send_json(200, completion(ident, created, request.model, [], _ZERO_USAGE))
        elif request.stream:
            self._stream(step, request)
        else:
            self._whole(step, request)

    def _whole(self, step: Reply | StreamCut | StreamStall, request: RecordedRequest) -> None:
        reply = step if isinstance(step, Reply) else Reply(step.content)
        ident = self._ident()
        calls = tool_call_entries(reply.tool_calls, self._state.next_ids(len(reply.tool_calls)))
        choice = message_choice(reply.content, calls)
        payload = completion(
            ident, int(time.time()), request.model, [choice], usage(request, reply, calls)
        )
        body = json.dumps(payload).encode()
        if isinstance(step, Reply):
            self._send(200, body, "application/json")
            return
        half = len(body) // 2
        self._start(200, {"Content-Type": "application/json", "Content-Length": len(body)})
        self.wfile.write(body[:half])
        if isinstance(step, StreamCut) or self._pause(step.stall):
            self.close_connection = True
            return
        self._commit()
        self.wfile.write(body[half:])

    def _stream(self, step: Reply | StreamCut | StreamStall, request: RecordedRequest) -> None:
        reply = step if isinstance(step, Reply) else Reply(step.content)
        ident, created, model = self._ident(), int(time.time()), request.model
        calls = tool_call_entries(reply.tool_calls, self._state.next_ids(len(reply.tool_calls)))
        deltas = stream_deltas(reply.content, calls)
        self._start(
            200,
            {
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "Transfer-Encoding": "chunked",
            },
        )
        cut = len(deltas) if isinstance(step, Reply) else max(0, step.after_chunks)
        for index, delta in enumerate(deltas[:cut]):
            if index and self._pause(reply.chunk_delay):
                return
            self._chunk(chunk(ident, created, model, delta))
        if isinstance(step, StreamCut):
            # Closing without the zero-length chunk leaves the chunked body incomplete.
            self.close_connection = True
            return
        if isinstance(step, StreamStall) and self._pause(step.stall):
            return
        for delta in deltas[cut:]:
            if self._pause(reply.chunk_delay):
                return
            self._chunk(chunk(ident, created, model, delta))
        finish = "tool_calls" if calls else "stop"
        self._chunk(chunk(ident, created, model, {}, finish))
        options = request.body.get("stream_options")
        counts = usage(request, reply, calls)
        asked = isinstance(options, dict) and cast("dict[str, object]", options).get(
            "include_usage"
        )
        if asked and counts is not None:
            self._chunk(chunk(ident, created, model, None, usage=counts))
        self._commit()
        self._chunk(b"data: [DONE]\n\n", last=True)

    def _pause(self, seconds: float) -> bool:
        """Sleep unless stop() interrupts; if it does, drop the connection and return True."""
        if self._state.sleep(seconds):
            self.close_connection = True
            return True
        return False

    def _ident(self) -> str:
        return f"chatcmpl-{self._state.next_ids(1)}"

    def _start(self, status: int, headers: Mapping[str, object]) -> None:
        self.send_response(status)
        self._status = status
        for name, value in headers.items():
            self.send_header(name, str(value))
        self.end_headers()

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        headers = {"Content-Type": content_type, "Content-Length": len(body), **(extra or {})}
        self._start(status, headers)
        self._commit()
        self.wfile.write(body)

    def _send_json(
        self, status: int, payload: Mapping[str, object], extra: Mapping[str, object] | None = None
    ) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", extra)

    def _chunk(self, data: bytes, *, last: bool = False) -> None:
        # One write per frame (and the terminator with the last) keeps packets few.
        frame = b"%x\r\n%s\r\n" % (len(data), data)
        self.wfile.write(frame + b"0\r\n\r\n" if last else frame)


class OpenAICompatibleServer:
    """A scripted OpenAI-compatible `/v1/chat/completions` server on 127.0.0.1.

    Each request consumes the next step scripted for its model; when none is left, `handler`
    (if set) or `default` chooses. Every request is recorded, and in-flight peaks are tracked
    per model. Use it as a context manager, or call start() and stop().

    Args:
        api_key: If set, requests without `Authorization: Bearer <api_key>` get a 401.
        default: The step, or a function choosing the step, for requests with no script left.
        port: The port to bind on 127.0.0.1 (0, the default: any free one).
    """

    def __init__(
        self,
        api_key: str | None = None,
        default: Step | StepSource = Reply("ok"),  # noqa: B008 -- steps are frozen
        *,
        port: int = 0,
    ) -> None:
        self._state = State(api_key, default)
        self._port = port
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> OpenAICompatibleServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Bind the port (any free one by default) on 127.0.0.1 and serve from a daemon thread.

        Raises:
            RuntimeError: If the server is already running.
        """
        if self._httpd is not None:
            raise RuntimeError("the server is already running")
        self._state.stopping.clear()
        httpd = _HTTPServer(self._state, self._port)
        # A short poll interval keeps stop() fast: shutdown() waits for the next poll.
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"orchestra-test-server-{httpd.server_port}",
            daemon=True,
        )
        self._httpd = httpd
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, drop open connections and interrupt delays; safe to call twice."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self._httpd = self._thread = None
        self._state.stopping.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join()
        # Idle keep-alive connections would otherwise pin their threads until `timeout`.
        self._state.close_connections(timeout=2.0)

    @property
    def port(self) -> int:
        """The bound TCP port.

        Raises:
            RuntimeError: If the server is not running.
        """
        if self._httpd is None:
            raise RuntimeError("the server is not running; call start() first")
        return self._httpd.server_port

    @property
    def url(self) -> str:
        """The base URL to give clients as `api_base`: `http://127.0.0.1:{port}/v1`."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def handler(self) -> StepSource | None:
        """Chooses the step, instead of `default`, for a model with no scripted step left.

        It is called from a server thread with the request as recorded so far (`status` 0,
        `finished` 0.0); if it raises or returns a non-step, the client gets a 500 saying so.
        """
        return self._state.handler

    @handler.setter
    def handler(self, value: StepSource | None) -> None:
        self._state.handler = value

    def script(self, model: str, steps: Sequence[Step]) -> None:
        """Queue steps for `model`; each request for it consumes the next one.

        Args:
            model: The `model` field as the server receives it (`openai/qwen` arrives as `qwen`).
            steps: Steps appended after any still queued for the model.

        Raises:
            TypeError: If an element of `steps` is not a step.
        """
        for step in steps:
            if as_step(step) is None:
                raise TypeError(f"not a step: {step!r}")
        with self._state.lock:
            self._state.scripts.setdefault(model, deque()).extend(steps)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every finished request, in arrival order (a copy)."""
        with self._state.lock:
            records = list(self._state.records)
        return sorted(records, key=lambda record: record.arrived)

    def requests_for(self, model: str) -> list[RecordedRequest]:
        """The finished requests for `model`, in arrival order.

        Args:
            model: The `model` field as received.

        Returns:
            A new list of records.
        """
        return [record for record in self.requests if record.model == model]

    def peak_in_flight(self, model: str | None = None) -> int:
        """The most requests in flight at once since start or reset().

        Args:
            model: Count only this model's requests; None counts all.

        Returns:
            The peak count.
        """
        with self._state.lock:
            return self._state.peaks.get(model, 0)

    def reset(self) -> None:
        """Forget scripts, records and peaks; `handler` and `default` stay."""
        state = self._state
        with state.lock:
            state.scripts.clear()
            state.records.clear()
            state.counter = 0
            # Requests still in flight keep counting from where they are.
            state.peaks = {key: count for key, count in state.in_flight.items() if count}


if __name__ == "__main__":  # python -m orchestra.testing.server --script answers.json
    from orchestra.testing._server_script import main

    sys.exit(main())
