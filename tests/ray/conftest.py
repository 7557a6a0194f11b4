"""A two-node Ray cluster on this machine, for the tests marked `ray`.

Ray binds its servers to every interface and probes outside addresses to pick one, so these
tests run only inside a loopback-only network namespace, where every socket is on 127.0.0.1:
`scripts/ray-tests` runs them there (and in a PID namespace of their own, so that no Ray
process outlives them). Elsewhere they are skipped; with `ORCHESTRA_RAY_TESTS=required` (set
by that script) a missing Ray or namespace fails them instead.

The cluster is two nodes, as two machines would be: a head (`ray start --head`) and a worker
node (`ray start --address`), each one process group that a test may kill to lose a machine.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

PORT = 6390
ADDRESS = f"127.0.0.1:{PORT}"
# The namespace is ours alone: no token needed; nodes are declared dead after ~3 s of silence.
RAY_ENV = {
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_health_check_initial_delay_ms": "0",
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_OFFLINE_MODE": "true",
}


def _why_not() -> str | None:
    """Why the Ray tests cannot run here (None: they can)."""
    if importlib.util.find_spec("ray") is None:
        return "Ray is not installed (pip install -e '.[ray]')"
    if [name for _, name in socket.if_nameindex()] != ["lo"]:
        return "not in a loopback-only network namespace: run scripts/ray-tests"
    return None


@dataclass
class Cluster:
    """A two-node cluster: the head and worker node processes, and how to lose the worker."""

    temp_dir: str
    head: subprocess.Popen[bytes]
    address: str = ADDRESS
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list[subprocess.Popen[bytes]])

    @staticmethod
    def alive_nodes() -> list[str]:
        """Ids of the cluster's live nodes."""
        import ray

        return [node["NodeID"] for node in ray.nodes() if node["Alive"]]

    @property
    def head_node(self) -> str:
        """The head node's id (this driver's node)."""
        import ray

        return ray.get_runtime_context().get_node_id()

    def start_worker(self) -> None:
        """Add a worker node and wait until the cluster counts it alive."""
        self.workers.append(_ray_start("--address", ADDRESS))
        _wait_for(lambda: len(self.alive_nodes()) == 1 + len(self.workers), "the worker node")

    def lose_worker(self) -> None:
        """Kill the worker node's raylet and every process on it (its actors too: Ray starts
        them in sessions of their own), as a machine going down; returns once the cluster
        counts the node dead."""
        worker = self.workers.pop()
        doomed = _descendants(worker.pid)
        os.killpg(worker.pid, signal.SIGKILL)
        for pid in doomed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        worker.wait()
        _wait_for(lambda: len(self.alive_nodes()) == 1 + len(self.workers), "the node's death")

    def stop(self) -> None:
        for process in [*self.workers, self.head]:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _descendants(root: int) -> list[int]:
    """Every process below `root` (read from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _ray_start(*options: str) -> subprocess.Popen[bytes]:
    command = [str(Path(sys.executable).parent / "ray"), "start", *options]
    command += ["--num-cpus", "1", "--node-ip-address", "127.0.0.1", "--block"]
    return subprocess.Popen(
        command,
        start_new_session=True,  # its own process group: one killpg takes the whole node
        env={**os.environ, **RAY_ENV},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait_for(condition: Any, what: str, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """The two-node cluster, with this process connected as its driver."""
    reason = _why_not()
    if reason is not None:
        if os.environ.get("ORCHESTRA_RAY_TESTS") == "required":
            pytest.fail(f"the Ray tests cannot run: {reason}")
        pytest.skip(reason)
    import ray

    os.environ.update(RAY_ENV)
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths nest
    head = _ray_start(
        "--head",
        "--port",
        str(PORT),
        "--temp-dir",
        temp_dir,
        "--include-dashboard",
        "false",
        "--object-store-memory",
        str(200 * 1024 * 1024),
    )
    running = Cluster(temp_dir=temp_dir, head=head)
    try:
        _wait_for(lambda: head.poll() is None and _port_open(), "the head node")
        ray.init(address=ADDRESS, namespace="orchestra-tests", log_to_driver=False)
        running.start_worker()
        yield running
    finally:
        if ray.is_initialized():
            ray.shutdown()
        running.stop()


def _port_open() -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", PORT)) == 0
