"""`orchestra.toml`: a whole system — models, agents, boss, budget, router — in one file.

Example file:
    boss = "boss"

    [budget]
    max_usd = 0.50

    [router]
    policy = "cheapest"
    min_quality = 0.5

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

`[router]` names a policy and its settings: `cheapest` and `slack-aware` (`min_quality`),
`fixed` and `llm` (`model`), `cascades` (`cascades`: a file written by
`orchestra.routing.dump_cascades`, or a bundled preset's name). Every error names the file and
the field at fault.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Generator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from orchestra.agents import Agent
from orchestra.errors import ConfigError
from orchestra.models.budget import Budget
from orchestra.models.constellation import Constellation, read_toml
from orchestra.routing import Cheapest, Fixed, LLMRouter, SlackAware, load_cascades
from orchestra.routing.base import RoutingPolicy

__all__ = [
    "CONFIG_FILE",
    "ROUTERS",
    "Config",
    "budget_from",
    "config_path",
    "read_config",
    "router_from",
]

CONFIG_FILE = "orchestra.toml"
_KEYS = {"boss", "budget", "router", "models", "agents", "max_parallel"}

ROUTERS: dict[str, tuple[str, ...]] = {
    "cheapest": ("min_quality",),
    "slack-aware": ("min_quality",),
    "fixed": ("model",),
    "llm": ("model",),
    "cascades": ("cascades",),
}
"""The `[router]` policies and the settings each takes (besides `policy`)."""


@dataclass(frozen=True)
class Config:
    """An `orchestra.toml`, read and checked: what its Orchestra is built from."""

    source: str
    """Where it was read from (for messages)."""
    models: Constellation
    agents: tuple[Agent, ...] = ()
    boss: str | None = None
    budget: Budget = field(default_factory=Budget)
    router: Mapping[str, Any] | None = None
    """The `[router]` table, as written (`router_from` builds the policy)."""
    max_parallel: int | None = None

    def policy(self, router: Mapping[str, Any] | None = None) -> RoutingPolicy | None:
        """The routing policy of `router` (a `[router]` table), or of the file's (None: the
        Orchestra's default).

        Raises:
            ConfigError: an invalid router, naming the file.
        """
        table = router if router is not None else self.router
        return router_from(table, self.models.names, source=self.source) if table else None

    @contextmanager
    def named(self) -> Generator[None]:
        """ConfigErrors raised inside name this file (building its Orchestra, say)."""
        with _naming(self.source):
            yield


@contextmanager
def _naming(source: str) -> Generator[None]:
    """Prefix `source` to the ConfigErrors raised inside, unless they name it already."""
    try:
        yield
    except ConfigError as exc:
        if str(exc).startswith(source):
            raise
        raise ConfigError(f"{source}: {exc}") from exc


def read_config(path: str | os.PathLike[str]) -> Config:
    """Read and check a TOML file (see the module docstring for its shape).

    Raises:
        ConfigError: missing file, bad TOML, unknown keys, or invalid models, agents, budget or
            router; the message names the file and the field.
    """
    source = str(path)
    data = read_toml(path)
    unknown = sorted(data.keys() - _KEYS)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}"
        )
    with _naming(source):
        models = Constellation.from_mapping(data, source=source)
        agents: list[Agent] = []
        tables: dict[str, Any] = data.get("agents", {})
        for name, table in tables.items():
            if not isinstance(table, dict):  # pyright: ignore[reportUnnecessaryIsInstance] - TOML input
                raise ConfigError(f"agents.{name} must be a table of Agent fields")
            agents.append(Agent.parse({"name": name, **table}))
    budget = budget_from(data.get("budget", {}), f"{source}: [budget]")
    boss = data.get("boss")
    if boss is not None and not isinstance(boss, str):
        raise ConfigError(f"{source}: boss must be the name of a model, not {boss!r}")
    router: dict[str, Any] | None = data.get("router")
    if router is not None:
        if not isinstance(router, dict):  # pyright: ignore[reportUnnecessaryIsInstance] - TOML input
            raise ConfigError(f"{source}: router must be a table, e.g. [router] policy = ...")
        router_from(router, models.names, source=source)  # checked now, built per Orchestra
    max_parallel = data.get("max_parallel")
    if max_parallel is not None and not isinstance(max_parallel, int):
        raise ConfigError(f"{source}: max_parallel must be a whole number, not {max_parallel!r}")
    return Config(
        source=source,
        models=models,
        agents=tuple(agents),
        boss=boss,
        budget=budget,
        router=router,
        max_parallel=max_parallel,
    )


def budget_from(fields: object, where: str) -> Budget:
    """A Budget from its fields; errors are ConfigErrors naming `where` and the field.

    Example:
        >>> budget_from({"max_usd": 0.5}, "[budget]").max_usd
        0.5
    """
    if not isinstance(fields, Mapping):
        raise ConfigError(f"{where} must be a table of Budget fields, not {fields!r}")
    try:
        return Budget.parse(cast("Mapping[str, Any]", fields))
    except ConfigError as exc:
        raise ConfigError(f"{where} {str(exc).removeprefix('Budget ')}") from exc


def router_from(
    table: Mapping[str, Any], models: Collection[str], *, source: str = "router"
) -> RoutingPolicy:
    """The routing policy a `[router]` table (or `--router`) describes; `models` are the spec
    names a policy may name.

    Example:
        >>> router_from({"policy": "cheapest", "min_quality": 0.5}, ["fast", "boss"])
        Cheapest(min_quality=0.5)

    Raises:
        ConfigError: an unknown policy or setting, or a bad value; the message names it.
    """
    where = f"{source}: [router]"
    policy = table.get("policy")
    if policy not in ROUTERS:
        raise ConfigError(f"{where} policy must be one of {', '.join(ROUTERS)}, not {policy!r}")
    allowed = ROUTERS[policy]
    extra = sorted(set(table) - {"policy", *allowed})
    if extra:
        takes = ", ".join(allowed)
        raise ConfigError(f"{where} policy {policy!r} takes {takes}, not {', '.join(extra)}")
    if policy in ("cheapest", "slack-aware"):
        quality = table.get("min_quality", 0.0)
        if isinstance(quality, bool) or not isinstance(quality, (int, float)):
            raise ConfigError(f"{where} min_quality must be a number in [0, 1], not {quality!r}")
        if not 0 <= quality <= 1:
            raise ConfigError(f"{where} min_quality must be in [0, 1], not {quality!r}")
        made = Cheapest if policy == "cheapest" else SlackAware
        return made(min_quality=float(quality))
    if policy == "cascades":
        cascades = table.get("cascades")
        if not isinstance(cascades, str):
            raise ConfigError(f"{where} cascades must name a cascade file or preset")
        with _naming(where):
            return load_cascades(cascades)
    model = table.get("model")
    if not isinstance(model, str) or model not in models:
        known = ", ".join(models)
        raise ConfigError(
            f"{where} model must be a model of the constellation ({known}), not {model!r}"
        )
    return Fixed(model) if policy == "fixed" else LLMRouter(model)


def config_path(explicit: str | os.PathLike[str] | None) -> Path | None:
    """The config to use: `explicit`, else ./orchestra.toml if it exists, else None."""
    if explicit is not None:
        return Path(explicit)
    default = Path(CONFIG_FILE)
    return default if default.exists() else None
