"""`orchestra.toml`: a whole system — models, agents, boss, budget — in one file.

Example file:
    boss = "boss"

    [budget]
    max_usd = 0.50

    [models.boss]
    model = "openai/gpt-4o"
    input_cost = 2.5
    output_cost = 10.0
    api_key = "${OPENAI_API_KEY}"

    [models.fast]
    model = "groq/llama-3.1-8b-instant"
    input_cost = 0.05
    output_cost = 0.08

    [agents.researcher]
    description = "finds facts"
"""

from __future__ import annotations

import os
from typing import Any

from orchestra.agents import Agent
from orchestra.errors import ConfigError
from orchestra.events import EventSink
from orchestra.models.budget import Budget
from orchestra.models.constellation import Constellation, read_toml
from orchestra.orchestra import Orchestra

__all__ = ["CONFIG_FILE", "load_orchestra"]

CONFIG_FILE = "orchestra.toml"
_KEYS = {"boss", "budget", "models", "agents", "max_parallel"}


def load_orchestra(path: str | os.PathLike[str], *, on_event: EventSink | None = None) -> Orchestra:
    """Build an Orchestra from a TOML file (see the module docstring for its shape).

    Raises:
        ConfigError: missing file, bad TOML, unknown keys, or invalid models/agents/budget.
    """
    data = read_toml(path)
    source = str(path)
    unknown = sorted(data.keys() - _KEYS)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}"
        )
    models = Constellation.from_mapping(data, source=source)
    agents: list[Agent] = []
    tables: dict[str, Any] = data.get("agents", {})
    for name, table in tables.items():
        if not isinstance(table, dict):  # pyright: ignore[reportUnnecessaryIsInstance] - TOML input
            raise ConfigError(f"{source}: agents.{name} must be a table of Agent fields")
        agents.append(Agent.parse({"name": name, **table}))
    try:
        budget = Budget.model_validate(data.get("budget", {}))
    except ConfigError as exc:
        raise ConfigError(f"{source}: [budget]: {exc}") from None
    boss = data.get("boss")
    if boss is not None and not isinstance(boss, str):
        raise ConfigError(f"{source}: boss must be the name of a model, not {boss!r}")
    return Orchestra(
        models=models,
        agents=agents,
        boss=boss,
        budget=budget,
        max_parallel=data.get("max_parallel"),
        on_event=on_event,
    )
