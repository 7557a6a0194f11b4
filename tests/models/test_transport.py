"""Provider bodies are bounded before litellm reads them, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import orchestra as oc
from orchestra.models.client import ModelClient
from orchestra.models.loader import load_litellm
from orchestra.models.transport import MAX_BODY_BYTES, MAX_ERROR_BYTES
from orchestra.testing.server import Error, OpenAICompatibleServer, Reply

pytestmark = pytest.mark.anyio

HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
def server() -> Iterator[OpenAICompatibleServer]:
    with OpenAICompatibleServer() as running:
        yield running


def _spec(server: OpenAICompatibleServer) -> oc.ModelSpec:
    return oc.ModelSpec(name="m", model="openai/m", api_base=server.url, api_key="k")


def test_litellm_builds_its_transports_where_orchestra_bounds_them() -> None:
    """The seam this relies on: litellm's async transports all come from one factory, which
    orchestra has wrapped once litellm is loaded."""
    load_litellm()
    from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler

    assert getattr(AsyncHTTPHandler.create_async_transport, "orchestra_bounded", False)


async def test_a_2mb_error_body_reaches_litellm_cut(server: OpenAICompatibleServer) -> None:
    """A 2 MB error body is cut to its first kilobyte before litellm scans it (it used to hold
    the event loop for seconds); the status and the provider's words survive."""
    server.script("m", [Error(500, "the server broke: " + "x" * 2_000_000)])
    with pytest.raises(oc.ModelError) as info:
        await ModelClient().complete(_spec(server), HELLO)
    message = str(info.value)
    assert "the server broke: xxx" in message
    assert info.value.status_code == 500 and info.value.transient
    assert len(message) < 1000


async def test_a_long_error_body_keeps_its_retry_after(server: OpenAICompatibleServer) -> None:
    """A rate limit with a long body is still a rate limit, with the wait it asked for."""
    server.script("m", [Error(429, "slow down " * 2000, retry_after=3)])
    with pytest.raises(oc.ModelError, match="rate limited") as info:
        await ModelClient().complete(_spec(server), HELLO)
    assert info.value.retry_after == 3
    assert len("slow down " * 2000) > MAX_ERROR_BYTES


async def test_a_short_error_body_passes_whole(server: OpenAICompatibleServer) -> None:
    """Error bodies within the bound reach litellm as they are (its mapping still works)."""
    server.script("m", [Error.context_overflow()])
    with pytest.raises(oc.ModelError) as info:
        await ModelClient().complete(_spec(server), HELLO)
    assert info.value.context_overflow and not info.value.transient


@pytest.mark.slow
async def test_an_answer_over_the_bound_fails_without_retry(
    server: OpenAICompatibleServer,
) -> None:
    """A successful body longer than MAX_BODY_BYTES is not read to its end: the call fails
    with a typed error that is not retried."""
    server.script("m", [Reply("y" * (MAX_BODY_BYTES + 1))])
    with pytest.raises(oc.ModelError, match="longer than 8,388,608 bytes") as info:
        await ModelClient().complete(_spec(server), HELLO)
    assert not info.value.transient


async def test_an_answer_litellm_cannot_read_is_refused_in_few_words(
    server: OpenAICompatibleServer,
) -> None:
    """A 1 MB answer whose tool arguments are nested past litellm's parser (litellm would
    put the whole body in its error, then scan it for seconds) fails with a short message
    naming the problem, never the body."""
    arguments = '{"tasks": [' * 90_000
    server.script("m", [Reply(None, tool_calls=[{"name": "add", "arguments": arguments}])])
    with pytest.raises(oc.ModelError, match="is not a usable chat completion") as info:
        await ModelClient().complete(_spec(server), HELLO)
    assert "litellm cannot read it: RecursionError" in str(info.value)
    assert len(str(info.value)) < 1000 and info.value.transient
