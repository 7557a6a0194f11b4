"""orchestra's pytest plugin, run on small inner test files: the offline guard and the fixtures.

Most inner runs set `orchestra_offline = true`, as this project does; the last tests show a
project that did not ask for it is left alone."""

from __future__ import annotations

import os

import pytest

from orchestra.models.loader import load_litellm

pytest_plugins = ["pytester"]

BLOCKED = """
import socket

import pytest


def test_reach_out():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(1)
    try:
        sock.connect(("93.184.216.34", 80))
    finally:
        sock.close()
"""


@pytest.fixture(autouse=True, scope="module")
def _litellm_imported_first() -> None:
    """Import litellm before any `pytester` fixture snapshots sys.meta_path.

    Importing litellm imports the `importlib_metadata` backport, which appends its finder to
    sys.meta_path and disables the stdlib's; if that happened inside a pytester run, the
    snapshot restored afterwards would drop the finder and break `importlib.metadata` for the
    rest of the session.
    """
    load_litellm()


_QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:pytest_cov")


def _run(pytester: pytest.Pytester, *args: str, offline: bool = True) -> pytest.RunResult:
    """Run the inner tests in this process (every test offline unless `offline=False`),
    without plugins that would import heavy modules the run's module snapshot then drops
    again (hypothesis: 1.5 s per inner run)."""
    option = ("-o", "orchestra_offline=true") if offline else ()
    return pytester.runpytest(*_QUIET, *option, *args)


def test_non_loopback_connection_fails_the_test(pytester: pytest.Pytester) -> None:
    """A test connecting beyond loopback fails, saying tests must stay offline."""
    pytester.makepyfile(test_inner_blocked=BLOCKED)
    result = _run(pytester)
    result.assert_outcomes(failed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*the test tried to reach 93.184.216.34:80; tests must stay offline*"]
    )
    result.stdout.fnmatch_lines(
        [
            "*ConnectionRefusedError: orchestra's pytest plugin blocked a connection to "
            "93.184.216.34:80: tests must stay offline*"
        ]
    )


def test_guard_refuses_before_connecting(pytester: pytest.Pytester) -> None:
    """The guard raises before the socket connects, for connect, connect_ex and host names,
    and a test that swallows the refusal is still failed."""
    pytester.makepyfile(
        test_inner_swallowed="""
        import socket

        import pytest


        @pytest.mark.parametrize("address", [("93.184.216.34", 80), ("example.com", 443)])
        def test_swallow(address):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.settimeout(1)
                with pytest.raises(ConnectionRefusedError, match="tests must stay offline"):
                    sock.connect(address)
                with pytest.raises(ConnectionRefusedError, match="tests must stay offline"):
                    sock.connect_ex(address)
                with pytest.raises(OSError):
                    sock.getpeername()  # never connected: no packet left
        """
    )
    result = _run(pytester)
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*the test tried to reach 93.184.216.34:80, 93.184.216.34:80; tests must stay offline*",
            "*the test tried to reach example.com:443, example.com:443; tests must stay offline*",
        ]
    )


# The inner test checks that no guard is installed, which the outer guard would contradict; no
# connection is opened by either test.
@pytest.mark.allow_network
def test_allow_network_marker_lifts_the_guard(pytester: pytest.Pytester) -> None:
    """A test marked allow_network runs with the socket methods untouched (marker registered)."""
    pytester.makepyfile(
        test_inner_allowed="""
        import _socket
        import socket

        import pytest


        @pytest.mark.allow_network
        def test_unguarded():
            assert socket.socket.connect is _socket.socket.connect
            assert socket.socket.connect_ex is _socket.socket.connect_ex


        def test_guarded():
            assert socket.socket.connect is not _socket.socket.connect
        """
    )
    result = _run(pytester, "--strict-markers")
    result.assert_outcomes(passed=2)


def test_loopback_connections_are_allowed(pytester: pytest.Pytester) -> None:
    """Connections to 127.0.0.1 and localhost go through."""
    pytester.makepyfile(
        test_inner_loopback="""
        import socket


        def test_local_server():
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
                server.bind(("127.0.0.1", 0))
                server.listen(2)
                port = server.getsockname()[1]
                for host in ("127.0.0.1", "localhost"):
                    with socket.create_connection((host, port), timeout=1) as client:
                        peer, _ = server.accept()
                        client.sendall(b"ping")
                        assert peer.recv(4) == b"ping"
                        peer.close()
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as raw:
                    raw.settimeout(1)
                    assert raw.connect_ex(("127.0.0.1", port)) == 0
                    server.accept()[0].close()
        """
    )
    _run(pytester).assert_outcomes(passed=1)


def test_fake_models_fixture_in_async_test(pytester: pytest.Pytester) -> None:
    """fake_models gives a fresh FakeModel to an anyio test on asyncio, and closes it after."""
    pytester.makepyfile(
        test_inner_fixture="""
        import pytest

        import orchestra as oc
        from orchestra.models.client import ModelClient
        from orchestra.testing import FakeModel, fake_constellation

        seen = []


        @pytest.mark.anyio
        async def test_run(fake_models, anyio_backend):
            assert anyio_backend == "asyncio"
            assert isinstance(fake_models, FakeModel) and fake_models.calls == []
            fake_models.responses = {"a": "hi"}
            orch = oc.Orchestra(models=fake_constellation(fake_models), agents=[oc.Agent(name="a")])
            result = await orch.execute(oc.Plan(tasks=[oc.Task(id="t", agent="a", prompt="x")]))
            assert result.output == "hi"
            assert len(fake_models.calls) == 1
            seen.append(fake_models)


        @pytest.mark.anyio
        async def test_closed_after(fake_models):
            assert fake_models is not seen[0]
            spec = oc.ModelSpec(name="m", model=seen[0].model("m"))
            with pytest.raises(oc.ModelError, match="closed"):
                await ModelClient().complete(spec, [{"role": "user", "content": "x"}])
        """
    )
    _run(pytester).assert_outcomes(passed=2)


def test_openai_server_fixture_is_started(pytester: pytest.Pytester) -> None:
    """openai_server gives a started server on 127.0.0.1."""
    pytester.makepyfile(
        test_inner_server="""
        from orchestra.testing import OpenAICompatibleServer


        def test_server(openai_server):
            assert isinstance(openai_server, OpenAICompatibleServer)
            assert "127.0.0.1" in openai_server.url
        """
    )
    _run(pytester).assert_outcomes(passed=1)


OFFLINE_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_OFFLINE_MODE": "true",
    "HF_HUB_OFFLINE": "1",
}


def test_plugin_sets_offline_env_vars() -> None:
    """Once the plugin is loaded, litellm's and Hugging Face's offline switches are on."""
    for name in OFFLINE_ENV:
        assert os.environ.get(name, "").lower() in {"true", "1"}, name


@pytest.mark.slow
def test_plugin_sets_offline_env_vars_in_fresh_process(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a fresh process without them, loading the plugin sets the offline variables."""
    for name in OFFLINE_ENV:
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(
        test_inner_env=f"""
        import os


        def test_env():
            names = {list(OFFLINE_ENV)!r}
            assert {{name: os.environ.get(name) for name in names}} == {OFFLINE_ENV!r}
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-o", "orchestra_offline=1")
    result.assert_outcomes(passed=1)


def test_guard_refuses_name_lookups_of_remote_hosts(pytester: pytest.Pytester) -> None:
    """Resolving a remote host name is refused before any DNS query; localhost still resolves."""
    pytester.makepyfile(
        test_inner_dns="""
        import socket

        import pytest


        def test_lookup():
            assert socket.getaddrinfo("localhost", 80)
            with pytest.raises(ConnectionRefusedError, match="tests must stay offline"):
                socket.getaddrinfo("example.com", 443)
        """
    )
    result = _run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*the test tried to reach example.com:443*"])


def test_litellm_cancelled_call_warning_is_ignored_and_no_other(pytester: pytest.Pytester) -> None:
    """Under `filterwarnings = error`, a collected un-awaited `acompletion` coroutine (litellm's,
    left by a cancelled call) does not fail a test; any other un-awaited coroutine still does."""
    pytester.makeini("[pytest]\nfilterwarnings =\n    error\n")
    pytester.makepyfile(
        test_inner_unawaited="""
        import gc


        async def acompletion():
            return None


        async def forgotten():
            return None


        def test_cancelled_litellm_call():
            acompletion()
            gc.collect()


        def test_our_own_bug():
            forgotten()
            gc.collect()
        """
    )
    _run(pytester).assert_outcomes(passed=1, failed=1)


UNRELATED = """
import socket

import pytest


def test_unrelated_resolves_its_host_name():
    assert socket.getaddrinfo(socket.gethostname(), None)


def test_with_fake_models(fake_models):
    with pytest.raises(ConnectionRefusedError, match="tests must stay offline"):
        socket.getaddrinfo("example.com", 443)


@pytest.mark.orchestra_offline
def test_marked_offline():
    with pytest.raises(ConnectionRefusedError, match="tests must stay offline"):
        socket.getaddrinfo("example.com", 443)
"""


@pytest.mark.slow
def test_a_project_that_did_not_ask_is_left_alone(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In another project of the same environment (no `orchestra_offline`), an unrelated test
    resolves host names, no offline variable is set; a test using orchestra's fixtures or
    marked `orchestra_offline` is still guarded (and failed for trying)."""
    for name in OFFLINE_ENV:  # set in this session, which is offline: not in the other one
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(test_inner_unrelated=UNRELATED)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--strict-markers")
    result.assert_outcomes(passed=3, errors=2)
    assert "the test tried to reach example.com:443" in result.stdout.str()
    pytester.makepyfile(
        test_inner_env="""
        import os


        def test_env_untouched():
            assert "LITELLM_OFFLINE_MODE" not in os.environ
        """
    )
    env_result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_inner_env.py")
    env_result.assert_outcomes(passed=1)


# As above: the inner test checks that nothing is guarded, which the outer guard would contradict.
@pytest.mark.allow_network
def test_the_plugin_can_be_turned_off(pytester: pytest.Pytester) -> None:
    """`-p no:orchestra` unloads the plugin: its fixtures are gone, nothing is guarded."""
    pytester.makepyfile(
        test_inner_off="""
        import _socket
        import socket


        def test_unguarded():
            assert socket.socket.connect is _socket.socket.connect


        def test_fixture_gone(fake_models):
            pass
        """
    )
    result = _run(pytester, "-p", "no:orchestra", offline=False)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*fixture 'fake_models' not found*"])
