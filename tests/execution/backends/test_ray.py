"""The Ray backend without a cluster: what it says when Ray is missing or misconfigured."""

from __future__ import annotations

import sys

import pytest

import orchestra as oc


def test_without_ray_the_backend_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """With Ray not installed, `oc.backends.Ray()` raises ImportError saying what to install."""
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees when it is missing
    with pytest.raises(ImportError, match=r"pip install 'orchestra-dag\[ray\]'"):
        oc.backends.Ray()


def test_bad_pool_sizes_are_refused() -> None:
    """Fewer than one actor, or an actor concurrency below one, raise ConfigError."""
    with pytest.raises(oc.ConfigError, match="at least 1 actor"):
        oc.backends.Ray(actors=0)
    with pytest.raises(oc.ConfigError, match="actor_concurrency must be at least 1"):
        oc.backends.Ray(actor_concurrency=0)


def test_import_orchestra_does_not_import_ray() -> None:
    """`import orchestra` (and `oc.backends`) leave Ray unimported until a backend is made."""
    import subprocess

    code = "import sys, orchestra as oc; oc.backends; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
