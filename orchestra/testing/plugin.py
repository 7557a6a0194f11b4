"""orchestra's pytest plugin (registered as the `orchestra` entry point).

On import — before any test module can import litellm — it switches litellm's network look-ups
off (cost map, Hugging Face tokenizers). During every test it refuses connections to anything
but loopback and fails the test that tried, unless the test is marked `allow_network`; and it
points the default run journal (`$ORCHESTRA_JOURNAL`) at a fresh temporary file, so runs never
litter the project and no test sees another's runs. Fixtures: `fake_models` (a fresh
`FakeModel`), `openai_server` (a started `OpenAICompatibleServer`).
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from orchestra.journal.store import JOURNAL_ENV
from orchestra.testing.fake import FakeModel
from orchestra.testing.server import OpenAICompatibleServer

for _name, _value in {
    "LITELLM_OFFLINE_MODE": "true",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "HF_HUB_OFFLINE": "1",
}.items():
    os.environ.setdefault(_name, _value)


def pytest_configure(config: pytest.Config) -> None:
    """Register the plugin's marker, and ignore litellm's warning about a cancelled call."""
    config.addinivalue_line(
        "markers", "allow_network: the test may open connections beyond loopback"
    )
    # litellm creates each call's coroutine in a worker thread and awaits it afterwards; a call
    # cancelled in between (a deadline, a lost hedge, a stop) leaves that coroutine un-awaited,
    # and Python warns when it is collected. Harmless, not the test's doing, and timing-bound:
    # under `filterwarnings = error` it would fail a test now and then.
    for line in (
        "ignore:coroutine '.*acompletion' was never awaited:RuntimeWarning",
        "ignore:Exception ignored in. <coroutine object .*acompletion"
        ":pytest.PytestUnraisableExceptionWarning",
    ):
        config.addinivalue_line("filterwarnings", line)


def _is_local(address: Any) -> bool:
    if not isinstance(address, tuple) or not address:
        return True  # Unix sockets and other non-IP families stay on this machine
    items: tuple[object, ...] = address  # pyright: ignore[reportUnknownVariableType] - socket API
    raw = items[0]
    host = raw.decode() if isinstance(raw, bytes) else str(raw)
    if host in ("", "localhost"):
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False  # a host name: resolving it would already leave the machine


class _Guard:
    def __init__(self) -> None:
        self.blocked: list[str] = []

    def refuse(self, address: Any) -> None:
        target = f"{address[0]}:{address[1]}" if isinstance(address, tuple) else str(address)
        self.blocked.append(target)
        raise ConnectionRefusedError(
            f"orchestra's pytest plugin blocked a connection to {target}: tests must stay "
            "offline (use FakeModel or OpenAICompatibleServer, or mark the test allow_network)"
        )


@pytest.fixture(autouse=True)
def _orchestra_network_guard(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Refuse non-loopback connections, and fail the test that tried one."""
    if request.node.get_closest_marker("allow_network") is not None:
        yield
        return
    guard = _Guard()
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex
    getaddrinfo = socket.getaddrinfo

    def guarded_getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        # Refuse before resolving: a DNS query for a remote host already leaves the machine.
        if host is not None and not _is_local((host, port)):
            guard.refuse((host, port))
        return getaddrinfo(host, port, *args, **kwargs)

    def guarded_connect(sock: socket.socket, address: Any) -> None:
        if not _is_local(address):
            guard.refuse(address)
        connect(sock, address)

    def guarded_connect_ex(sock: socket.socket, address: Any) -> int:
        if not _is_local(address):
            guard.refuse(address)
        return connect_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    yield
    if guard.blocked:
        pytest.fail(
            f"the test tried to reach {', '.join(guard.blocked)}; tests must stay offline "
            "(mark it allow_network if it really must)",
            pytrace=False,
        )


_journals = itertools.count()


@pytest.fixture(scope="session", autouse=True)
def _orchestra_session_journal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Runs made by session-scoped fixtures record into the session's temporary directory."""
    folder = tmp_path_factory.getbasetemp() / "orchestra-journals" / "session"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(JOURNAL_ENV, str(folder / "runs.sqlite"))
        yield


@pytest.fixture(autouse=True)
def _orchestra_journal(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test's runs record into a journal of its own (created only if a run writes)."""
    folder = tmp_path_factory.getbasetemp() / "orchestra-journals" / str(next(_journals))
    monkeypatch.setenv(JOURNAL_ENV, str(folder / "runs.sqlite"))


@pytest.fixture
def fake_models() -> Iterator[FakeModel]:
    """A fresh `FakeModel` (answers "ok" until scripted); closed after the test."""
    fake = FakeModel()
    yield fake
    fake.close()


@pytest.fixture
def openai_server() -> Iterator[OpenAICompatibleServer]:
    """A started `OpenAICompatibleServer` on 127.0.0.1; stopped after the test."""
    with OpenAICompatibleServer() as server:
        yield server


@pytest.fixture
def anyio_backend() -> str:
    """litellm needs asyncio: run `@pytest.mark.anyio` tests on it."""
    return "asyncio"
