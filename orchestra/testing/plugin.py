"""orchestra's pytest plugin (registered as the `orchestra` entry point).

Installing orchestra installs this plugin into every pytest run of the environment, so it does
nothing to a test that did not ask for it. A test that uses `fake_models` or `openai_server`,
or is marked `orchestra_offline`, or every test of a project whose pytest configuration sets
`orchestra_offline = true`, is *offline*: its connections to anything but loopback (and its
host-name look-ups) are refused, and the test that tried fails, unless it is marked
`allow_network`. With `orchestra_offline = true`, litellm's network look-ups at import (cost
map, Hugging Face tokenizers) are switched off too. Every test's default run journal
(`$ORCHESTRA_JOURNAL`) is a fresh temporary file, so runs never litter the project and no test
sees another's runs. `-p no:orchestra` turns the plugin off altogether.
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

OFFLINE_OPTION = "orchestra_offline"
_OFFLINE_FIXTURES = frozenset({"fake_models", "openai_server"})
# Set before any test module imports litellm, which reads them at import.
_OFFLINE_ENV = {
    "LITELLM_OFFLINE_MODE": "true",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "HF_HUB_OFFLINE": "1",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    """The `orchestra_offline` ini option (off unless a project turns it on)."""
    parser.addini(
        OFFLINE_OPTION,
        type="bool",
        default=False,
        help="orchestra: every test stays offline (mark one allow_network to let it out)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the plugin's markers, keep litellm offline in an offline project, and ignore
    litellm's warning about a cancelled call."""
    config.addinivalue_line(
        "markers", "allow_network: the test may open connections beyond loopback"
    )
    config.addinivalue_line(
        "markers", f"{OFFLINE_OPTION}: orchestra refuses the test's non-loopback connections"
    )
    if config.getini(OFFLINE_OPTION):
        for name, value in _OFFLINE_ENV.items():
            os.environ.setdefault(name, value)
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


def _offline(request: pytest.FixtureRequest) -> bool:
    """Whether the test asked to stay offline (see the module docstring)."""
    if request.node.get_closest_marker("allow_network") is not None:
        return False
    return bool(
        request.config.getini(OFFLINE_OPTION)
        or request.node.get_closest_marker(OFFLINE_OPTION) is not None
        or _OFFLINE_FIXTURES & set(request.fixturenames)
    )


@pytest.fixture(autouse=True)
def _orchestra_network_guard(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """In an offline test, refuse non-loopback connections and fail the test that tried one."""
    if not _offline(request):
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
