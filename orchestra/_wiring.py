"""What an `Orchestra` is assembled from: its agents checked against its models, its limits
checked, and its journal, response cache and backend resolved from what the caller gave."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from orchestra.agents import Agent
from orchestra.errors import ConfigError
from orchestra.execution.backends import Backend
from orchestra.execution.backends.local import LocalBackend
from orchestra.execution.runner import NodeRunner
from orchestra.journal.cache import Cache
from orchestra.journal.store import Journal, default_journal_path
from orchestra.models.constellation import Constellation

__all__ = [
    "DEFAULT_AGENT",
    "agents_by_name",
    "bound_backend",
    "check_limits",
    "resolve_cache",
    "resolve_journal",
]

# Constructed without validation (the values are known good): validating here would build
# Agent's validator, and load pydantic's plugins, on every `import orchestra`.
DEFAULT_AGENT = Agent.model_construct(
    name="assistant",
    description="general-purpose agent: researches, analyses, writes, answers any sub-task",
)
"""The agent an Orchestra gets when it is given none."""


def agents_by_name(agents: Iterable[Agent], models: Constellation) -> dict[str, Agent]:
    """The agents by name (the default assistant when there are none).

    Raises:
        ConfigError: two agents share a name, or one is pinned to an unknown model.
    """
    named: dict[str, Agent] = {}
    for agent in agents:
        if agent.name in named:
            raise ConfigError(f"two agents are named {agent.name!r}; names must be unique")
        if agent.model is not None and agent.model not in models:
            raise ConfigError(
                f"agent {agent.name!r} is pinned to unknown model {agent.model!r}; "
                f"known models: {', '.join(models.names)}"
            )
        named[agent.name] = agent
    return named or {DEFAULT_AGENT.name: DEFAULT_AGENT}


def check_limits(
    *,
    max_parallel: int | None,
    max_concurrent_calls: int | None,
    plan_attempts: int,
    max_replans: int,
) -> None:
    """Raises `ConfigError` naming the first limit out of range."""
    if max_parallel is not None and max_parallel < 1:
        raise ConfigError(f"max_parallel must be at least 1, not {max_parallel}")
    if max_concurrent_calls is not None and max_concurrent_calls < 1:
        raise ConfigError(f"max_concurrent_calls must be at least 1, not {max_concurrent_calls}")
    if plan_attempts < 1:
        raise ConfigError(f"plan_attempts must be at least 1, not {plan_attempts}")
    if max_replans < 0:
        raise ConfigError(f"max_replans must be 0 or more, not {max_replans}")


def resolve_journal(journal: str | os.PathLike[str] | Journal | bool | None) -> Journal | None:
    """The journal runs are recorded in: given, the default one (True), or none."""
    if isinstance(journal, Journal):
        return journal
    if journal is True:
        path = default_journal_path()
        return None if path is None else Journal(path)
    if journal is None or journal is False:
        return None
    return Journal(journal)


def resolve_cache(cache: bool | Cache | None) -> Cache | None:
    """The cache's settings with its path resolved: given, `$ORCHESTRA_CACHE`, or beside the
    default journal."""
    if cache is None or cache is False:
        return None
    settings = Cache() if cache is True else cache
    if settings.path is not None:
        return settings
    place = os.environ.get("ORCHESTRA_CACHE")
    if place is None:
        journal = default_journal_path()
        folder = journal.parent if journal is not None else Path.cwd() / ".orchestra"
        place = str(folder / "cache.sqlite")
    return settings.model_copy(update={"path": str(Path(place).expanduser().absolute())})


def bound_backend(backend: Backend | None, runner: NodeRunner) -> Backend:
    """The backend nodes run on, given this Orchestra's node runner: a backend that runs
    nodes elsewhere (Ray) takes its models, agents and router from it (`bind`)."""
    if backend is None:
        return LocalBackend(runner)
    bind = getattr(backend, "bind", None)
    if callable(bind):
        bind(runner)
    return backend
