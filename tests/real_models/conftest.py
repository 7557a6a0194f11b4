"""Real small models for the `real_model` tests: llama.cpp servers started once a session.

The servers come from `scripts/local-models install` (see docs/local-models.md). Without that
build the tests skip with a message saying so, unless `ORCHESTRA_REAL_MODELS=required` (as in
CI), where a missing build fails them instead of hiding them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from orchestra.testing.local_models import LocalServers, missing

REQUIRED_ENV = "ORCHESTRA_REAL_MODELS"


@pytest.fixture(scope="session")
def local_servers() -> Iterator[LocalServers]:
    """A SmolLM2-135M and a Gemma-3-270m server on 127.0.0.1, for the whole session."""
    absent = missing()
    if absent is not None:
        message = (
            f"real-model tests need the local build ({absent}): run scripts/local-models install"
        )
        if os.environ.get(REQUIRED_ENV) == "required":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    with LocalServers(["smollm2", "gemma3"]) as servers:
        yield servers
