"""With DEBUG logging on, the request loggers of litellm, the OpenAI SDK and httpx never show
a secret: keys, header values, URL credentials."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

import orchestra as oc
from orchestra.models.client import ModelClient
from orchestra.testing.server import Error, OpenAICompatibleServer, RecordedRequest

pytestmark = pytest.mark.anyio

KEY = "sk-debug-logging-0123456789"
HEADER_SECRET = "hdr-debug-secret-987654"
PASSWORD = "debug-pa55word"
LOGGERS = ("LiteLLM", "openai", "httpx", "httpcore")


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def debug_logs() -> Iterator[Collect]:
    """Every request logger at DEBUG, collected (restored after the test)."""
    collect = Collect()
    before = {name: logging.getLogger(name).level for name in LOGGERS}
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
        logging.getLogger(name).addHandler(collect)
    yield collect
    for name, level in before.items():
        logging.getLogger(name).setLevel(level)
        logging.getLogger(name).removeHandler(collect)


async def test_debug_logs_hold_no_secret(debug_logs: Collect) -> None:
    """Calls failing with the secrets echoed back, one to a URL with a password, are logged at
    length, and none of the secrets is in the log."""

    def echo(request: RecordedRequest) -> Error:
        headers = request.headers
        return Error(500, f"echo {headers['authorization']} {headers['x-auth']}")

    with OpenAICompatibleServer() as server:
        server.handler = echo
        for base in (server.url, f"http://bob:{PASSWORD}@127.0.0.1:{server.port}/v1"):
            spec = oc.ModelSpec(
                name="m",
                model="openai/m",
                api_base=base,
                api_key=KEY,
                litellm_params={"extra_headers": {"X-Auth": HEADER_SECRET}},
            )
            with pytest.raises(oc.ModelError):
                await ModelClient().complete(spec, [{"role": "user", "content": "hi"}])
        assert server.requests[0].headers["x-auth"] == HEADER_SECRET
    logged = "\n".join(debug_logs.lines)
    # The SDK did log the request (its words vary between versions).
    assert "POST" in logged
    assert "Request options" in logged or "Sending HTTP Request" in logged
    for secret in (KEY, HEADER_SECRET, PASSWORD):
        assert secret not in logged
