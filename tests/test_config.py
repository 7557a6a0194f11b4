"""orchestra.toml into an Orchestra: Orchestra.from_file and from_config."""

from __future__ import annotations

from pathlib import Path

import pytest

import orchestra as oc
from orchestra.config import read_config

TOML = """
boss = "big"

[budget]
max_usd = 0.5

[router]
policy = "fixed"
model = "small"

[models.big]
model = "openai/big"
input_cost = 2.5
output_cost = 10.0

[models.small]
model = "openai/small"
input_cost = 0.1
output_cost = 0.2

[agents.researcher]
description = "finds facts"
"""


@pytest.fixture
def toml(tmp_path: Path) -> Path:
    path = tmp_path / "orchestra.toml"
    path.write_text(TOML)
    return path


def test_from_file_builds_what_the_file_says(toml: Path) -> None:
    """Models, boss, agents, budget and router all come from the file."""
    orch = oc.Orchestra.from_file(toml)
    assert orch.boss == "big"
    assert orch.budget.max_usd == 0.5
    assert list(orch.agents) == ["researcher"]
    assert isinstance(orch.router, oc.routing.Fixed)


def test_from_config_replaces_budget_and_router(toml: Path) -> None:
    """A budget and a [router] table given to from_config replace the file's."""
    orch = oc.Orchestra.from_config(
        read_config(toml),
        budget=oc.Budget(max_usd=2.0),
        router={"policy": "cheapest", "min_quality": 0.2},
    )
    assert orch.budget.max_usd == 2.0
    assert isinstance(orch.router, oc.routing.Cheapest)


def test_a_router_naming_an_unknown_model_names_the_file(toml: Path) -> None:
    """A replacement router that names a model the file lacks is a ConfigError naming it."""
    with pytest.raises(oc.ConfigError, match=r"orchestra\.toml.*router"):
        oc.Orchestra.from_config(read_config(toml), router={"policy": "fixed", "model": "gone"})


def test_an_agent_on_an_unknown_model_names_the_file(tmp_path: Path) -> None:
    """Agents that do not fit the models fail with the file's name in the message."""
    path = tmp_path / "bad.toml"
    path.write_text(TOML + '\n[agents.writer]\nmodel = "gone"\n')
    with pytest.raises(oc.ConfigError, match=r"bad\.toml"):
        oc.Orchestra.from_file(path)
