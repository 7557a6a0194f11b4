"""What failed calls say and do, over real HTTP and the fake provider: the URL and the reason
(refused, DNS, TLS, auth), no retries where none can help, no secret anywhere in the error."""

from __future__ import annotations

import socket
import ssl
import traceback
from collections.abc import Iterator

import pytest

import orchestra as oc
from orchestra.events import BreakerChanged, Event, ModelCalled
from orchestra.models.client import ModelClient
from orchestra.models.failures import model_error
from orchestra.testing import FakeModel, FakeRequest, fake_constellation
from orchestra.testing.server import (
    Error,
    Malformed,
    OpenAICompatibleServer,
    RecordedRequest,
    Reply,
)

pytestmark = pytest.mark.anyio

KEY = "sk-live-abcdef0123456789"
HEADER_SECRET = "hdr-secret-value-987654"
PASSWORD = "pa55-w0rd-secret"
HELLO = [{"role": "user", "content": "hello"}]
ONE_TASK = oc.Plan(tasks=[oc.Task(id="q", agent="w", prompt="hello")])


@pytest.fixture
def server() -> Iterator[OpenAICompatibleServer]:
    with OpenAICompatibleServer(api_key=KEY) as running:
        yield running


def _spec(api_base: str, **fields: object) -> oc.ModelSpec:
    return oc.ModelSpec.parse(
        {"name": "m", "model": "openai/m", "api_base": api_base, "api_key": KEY, **fields}
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def everything_said(exc: BaseException) -> str:
    """The traceback as printed, and the repr and attributes of every exception chained."""
    text = "".join(traceback.format_exception(exc))
    seen: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and all(link is not s for s in seen):
        seen.append(link)
        text += repr(link) + repr(vars(link))
        link = link.__cause__ or link.__context__
    return text


async def test_an_unreachable_api_base_names_the_url_and_says_refused() -> None:
    """Nothing listening: the error names the URL and says the connection was refused."""
    port = _free_port()
    with pytest.raises(oc.ModelError) as info:
        await ModelClient().complete(_spec(f"http://127.0.0.1:{port}/v1"), HELLO)
    assert f"cannot reach http://127.0.0.1:{port}/v1" in str(info.value)
    assert "connection was refused" in str(info.value)
    assert info.value.transient and info.value.status_code is None


async def test_tls_to_a_plain_http_server_says_tls_and_is_not_retried(
    server: OpenAICompatibleServer,
) -> None:
    """https:// to a server speaking plain HTTP fails the handshake: said, and not transient."""
    with pytest.raises(oc.ModelError, match="the TLS handshake failed") as info:
        await ModelClient().complete(_spec(f"https://127.0.0.1:{server.port}/v1"), HELLO)
    assert f"https://127.0.0.1:{server.port}/v1" in str(info.value)
    assert not info.value.transient


@pytest.mark.parametrize(
    ("raised", "words", "transient"),
    [
        (socket.gaierror(-2, "Name or service not known"), "could not be resolved \\(DNS", True),
        (ConnectionRefusedError(111, "Connection refused"), "connection was refused", True),
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), "TLS handshake", False),
    ],
    ids=["dns", "refused", "tls"],
)
async def test_network_failures_inside_a_provider_are_named(
    fake: FakeModel, raised: OSError, words: str, transient: bool
) -> None:
    """A provider failing to connect (DNS, refused, TLS) is reported by its reason."""

    def fail(request: FakeRequest) -> str:
        raise raised

    fake.handler = fail
    spec = fake_constellation(fake)["fast"]
    with pytest.raises(oc.ModelError, match=words) as info:
        await ModelClient().complete(spec, HELLO)
    assert info.value.transient is transient


async def test_a_wrong_key_is_an_auth_failure_sent_once(server: OpenAICompatibleServer) -> None:
    """A 401 says authentication failed, and is not retried: one request, one attempt."""
    spec = _spec(server.url).model_copy(
        update={"api_key": oc.ModelSpec(name="k", model="k", api_key="sk-wrong-key-000").api_key}
    )
    orch = oc.Orchestra(models=[spec], agents=[oc.Agent(name="w")])
    with pytest.raises(oc.NodeFailed, match="authentication failed") as info:
        await orch.execute(ONE_TASK)
    assert len(server.requests) == 1
    cause = info.value.__cause__
    assert isinstance(cause, oc.ModelError) and not cause.transient and len(cause.attempts) == 1


async def test_a_missing_key_is_an_auth_failure_never_sent(
    server: OpenAICompatibleServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No api_key and no OPENAI_API_KEY: 'no API key', not a retried server error; nothing sent."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    spec = oc.ModelSpec(name="m", model="openai/m", api_base=server.url)
    orch = oc.Orchestra(models=[spec], agents=[oc.Agent(name="w")])
    with pytest.raises(oc.NodeFailed, match="authentication failed: no API key") as info:
        await orch.execute(ONE_TASK)
    assert server.requests == []
    cause = info.value.__cause__
    assert isinstance(cause, oc.ModelError) and cause.status_code == 401
    assert len(cause.attempts) == 1


async def test_a_client_side_error_is_not_retried_nor_counted_by_the_breaker(
    fake: FakeModel,
) -> None:
    """An error on the sending side (here text HTTP cannot carry) fails at once, and leaves
    the model's circuit closed for every other run."""

    def unsendable(request: FakeRequest) -> str:
        raise UnicodeEncodeError("ascii", "é", 0, 1, "ordinal not in range(128)")

    fake.handler = unsendable
    profiles = {"fast": {"breaker": {"failures": 1}, "retry": {"max_retries": 3}}}
    events: list[Event] = []
    orch = oc.Orchestra(
        models=fake_constellation(fake, profiles),
        agents=[oc.Agent(name="w", model="fast")],
        on_event=events.append,
    )
    for _ in range(3):
        with pytest.raises(oc.NodeFailed, match="could not be sent"):
            await orch.execute(ONE_TASK)
    assert len(fake.calls) == 3  # one call per run: never retried
    assert not [e for e in events if isinstance(e, BreakerChanged)]
    called = [e for e in events if isinstance(e, ModelCalled)]
    assert all("not the model's" in (e.error or "") for e in called)


async def test_a_unicode_run_id_travels_encoded_and_a_line_break_is_refused(
    server: OpenAICompatibleServer,
) -> None:
    """`café-报告-2026` runs (its Idempotency-Key percent-encoded); a CR/LF id is refused before
    any call; neither touches the model's breaker."""
    orch = oc.Orchestra(models=[_spec(server.url)], agents=[oc.Agent(name="w")])
    result = await orch.execute(ONE_TASK, run_id="café-报告-2026")
    assert result.status == "succeeded"
    key = server.requests[0].headers["idempotency-key"]
    assert key.startswith("caf%C3%A9-%E6%8A%A5%E5%91%8A-2026:q:")
    with pytest.raises(oc.ConfigError, match="control character or a line break"):
        await orch.execute(ONE_TASK, run_id="nightly\r\nX-Injected: yes")
    assert len(server.requests) == 1


async def test_no_secret_in_any_error_its_chain_or_traceback(
    server: OpenAICompatibleServer,
) -> None:
    """A provider echoing the key and a secret header in its error body: neither appears in the
    NodeFailed, anything chained to it, their attributes or the printed traceback."""

    def echo(request: RecordedRequest) -> Error:
        return Error(
            500, f"bad request from {request.headers['authorization']} {request.headers['x-auth']}"
        )

    server.handler = echo
    spec = _spec(
        server.url,
        litellm_params={"extra_headers": {"X-Auth": HEADER_SECRET}},
        retry={"max_retries": 1, "backoff": 0.01},
    )
    orch = oc.Orchestra(models=[spec], agents=[oc.Agent(name="w")])
    with pytest.raises(oc.NodeFailed) as info:
        await orch.execute(ONE_TASK)
    assert len(server.requests) == 2 and HEADER_SECRET in server.requests[0].headers["x-auth"]
    said = everything_said(info.value)
    assert "bad request from" in said
    assert KEY not in said and HEADER_SECRET not in said


async def test_url_credentials_never_show(server: OpenAICompatibleServer) -> None:
    """`user:password@` in api_base is kept out of errors, reprs and the journal's spec."""
    spec = _spec(f"http://bob:{PASSWORD}@127.0.0.1:{_free_port()}/v1")
    with pytest.raises(oc.ModelError) as info:
        await ModelClient().complete(spec, HELLO)
    assert PASSWORD not in everything_said(info.value)
    assert PASSWORD not in repr(spec) and PASSWORD not in str(spec.public())
    assert PASSWORD in spec.secrets()


async def test_a_good_call_still_answers(server: OpenAICompatibleServer) -> None:
    """The classification leaves successful calls alone."""
    server.script("m", [Reply("fine")])
    completion = await ModelClient().complete(_spec(server.url), HELLO)
    assert completion.content == "fine"


async def test_a_malformed_usage_block_is_told_without_a_traceback(
    server: OpenAICompatibleServer,
) -> None:
    """A usage block of the wrong types fails the call with words, not a Python traceback with
    site-packages paths."""
    body = (
        '{"id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": '
        '[{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": '
        '"stop"}], "usage": {"prompt_tokens": "lots", "completion_tokens": [1]}}'
    )
    server.script("m", [Malformed(body)])
    with pytest.raises(oc.ModelError) as info:
        await ModelClient().complete(_spec(server.url), HELLO)
    assert "Traceback" not in str(info.value) and "site-packages" not in str(info.value)


def _raised(message: str, cause: BaseException | None) -> BaseException:
    try:
        raise RuntimeError(message) from cause
    except RuntimeError as exc:
        return exc


@pytest.mark.parametrize("where", ["message", "cause"])
def test_litellms_own_unfinished_stream_error_reads_as_a_cut_stream(where: str) -> None:
    """litellm 1.107+ raises its own error for a stream that ends without a finish reason
    (earlier releases make one up and the client checks): the user reads the same retryable
    error either way, not litellm's wrapped and truncated chain."""
    said = "Stream ended before a finish_reason was received"
    exc = (
        _raised(f"litellm.MidStreamFallbackError: OpenAIException - {said}", None)
        if where == "message"
        else _raised("litellm.APIConnectionError", _raised(said, None))
    )
    error = model_error(_spec("http://127.0.0.1:9/v1"), exc)
    assert error.transient
    assert str(error) == (
        "model 'm' (openai/m): the stream ended without a finish reason (cut short by the "
        "server); the partial answer was discarded"
    )
