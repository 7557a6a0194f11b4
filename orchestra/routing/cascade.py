"""Cascades: ask cheap models first, and stronger ones only when a check rejects the answers.

A cascade is a list of **stages**; each names models asked in parallel and a check
(`orchestra.checks`) that judges *every* answer the node has so far. The classic agreement
cascade asks two cheap models, accepts when they agree, and otherwise asks a strong one:

    Cascade([Stage(("deepseek", "mini"), Agree(2)), Stage(("gpt-4o",), Vote())])

At each request the cascade runs the first stage that still has a model not asked yet and
usable (circuit closed, affordable with the budget left); a stage with none is skipped. The
last stage's check has the last word: when it rejects, its best guess is kept.

Cascades serialise to plain JSON (`to_dict`, `from_dict`), and a policy per agent of them loads
from a file or a bundled preset (`load_cascades`); `orchestra.routing.fit` fits them on
recorded answers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from orchestra.checks import Aggregate, Agree, Check, Verify, Vote, answer_key
from orchestra.errors import ConfigError
from orchestra.routing.base import RouteDecision, RouteRequest, RoutingPolicy
from orchestra.routing.policies import Cheapest, PerAgent
from orchestra.routing.scored import Scored

__all__ = ["Cascade", "Stage", "dump_cascades", "load_cascades"]


@dataclass(frozen=True)
class Stage:
    """Models asked at the same time, and the check that judges the answers so far.

    List the models weakest first: among equally supported answers, checks keep the one of the
    model asked last.
    """

    models: Sequence[str]
    """The models to ask (stored as a tuple)."""
    check: Check | None = None
    """None: keep the first model's answer (no check, no escalation)."""

    def __post_init__(self) -> None:
        if isinstance(self.models, str):
            raise ConfigError(f"Stage models must be a sequence of names, not {self.models!r}")
        object.__setattr__(self, "models", tuple(self.models))
        if not self.models:
            raise ConfigError("a cascade stage needs at least one model")


@dataclass(frozen=True)
class Cascade:
    """Ask the stages in order until a check accepts (see the module docstring).

    Example:
        >>> import orchestra as oc
        >>> policy = oc.routing.Cascade([
        ...     oc.routing.Stage(("fast", "fast-wafer"), oc.checks.Agree(2)),
        ...     oc.routing.Stage(("boss",), oc.checks.Vote()),
        ... ])
        >>> [stage.models for stage in policy.stages]
        [('fast', 'fast-wafer'), ('boss',)]
    """

    stages: Sequence[Stage]
    """The stages, in order (stored as a tuple)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(self.stages))
        if not self.stages:
            raise ConfigError("a cascade needs at least one stage")

    def choose(self, request: RouteRequest) -> RouteDecision:
        """The next stage with a model not asked yet, usable models first.

        Raises:
            ConfigError: on the first request, no model of any stage is a candidate.
        """
        known = {s.name for s in request.candidates}
        usable = {s.name for s in request.usable()}
        asked = request.asked
        fresh = [[m for m in st.models if m in known and m not in asked] for st in self.stages]
        live = [[m for m in models if m in usable] for models in fresh]
        index = next((i for i, models in enumerate(live) if models), None)
        if index is None:
            # Nothing usable is left: ask what is not asked yet anyway (the breaker or budget
            # will answer), or, when every model has answered, repeat the last stage, which the
            # runner recognises as nothing new to ask.
            index = next((i for i, models in enumerate(fresh) if models), None)
            if index is None:
                if not request.answers:
                    names = ", ".join(m for st in self.stages for m in st.models)
                    raise ConfigError(
                        f"no model of the cascade ({names}) is a candidate for agent "
                        f"{request.agent.name!r}; check the constellation and the agent's tags"
                    )
                last = self.stages[-1]
                return RouteDecision(last.models[0], "cascade: nothing left to ask")
            models = fresh[index]
        else:
            models = live[index]
        stage = self.stages[index]
        skipped = [m for m in stage.models if m not in models and m not in asked]
        reason = f"cascade stage {index + 1}/{len(self.stages)}: {', '.join(models)}"
        if skipped:
            reason += f" (skipped {', '.join(skipped)}: unavailable or over budget)"
        later = any(fresh[index + 1 :])
        return RouteDecision(
            models[0], reason, also=tuple(models[1:]), check=stage.check, escalate=later
        )

    def to_dict(self) -> dict[str, Any]:
        """The cascade as plain JSON-ready data (see `from_dict`).

        Raises:
            ConfigError: a check is not one of `Agree`, `Vote`, `Scored`, `Verify`,
            `Aggregate` with default settings.
        """
        return {
            "stages": [
                {"models": list(st.models), "check": _check_to_dict(st.check)} for st in self.stages
            ]
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cascade:
        """Build a cascade from `to_dict`'s form.

        Example:
            >>> Cascade.from_dict({"stages": [
            ...     {"models": ["a", "b"], "check": {"kind": "agree", "min_agree": 2}},
            ...     {"models": ["c"], "check": {"kind": "vote"}}]}).stages[1].models
            ('c',)

        Raises:
            ConfigError: the data is not a valid cascade.
        """
        stages = data.get("stages")
        if not isinstance(stages, list) or not stages:
            raise ConfigError("a cascade needs a non-empty 'stages' list")
        built: list[Stage] = []
        for position, raw in enumerate(cast(list[Any], stages), start=1):
            if not isinstance(raw, dict):
                raise ConfigError(f"cascade stage {position} must be an object")
            stage = cast(dict[str, Any], raw)
            models = stage.get("models")
            if not isinstance(models, list) or not all(
                isinstance(m, str) for m in cast(list[Any], models)
            ):
                raise ConfigError(f"cascade stage {position} needs 'models': a list of names")
            names = tuple(cast(list[str], models))
            built.append(Stage(names, _check_from_dict(stage.get("check"), position)))
        return cls(tuple(built))


def _check_to_dict(check: Check | None) -> dict[str, Any] | None:
    if check is None:
        return None
    if isinstance(check, Agree) and check.key is answer_key:
        return {"kind": "agree", "min_agree": check.min_agree}
    if isinstance(check, Vote) and check.key is answer_key:
        return {"kind": "vote"}
    if isinstance(check, Scored) and check.key is answer_key:
        return check.to_dict()
    if isinstance(check, Verify) and check.template == Verify(check.model).template:
        return {"kind": "verify", "model": check.model}
    default = Aggregate(check.model) if isinstance(check, Aggregate) else None
    if isinstance(check, Aggregate) and check == default:
        return {"kind": "aggregate", "model": check.model}
    raise ConfigError(
        f"cannot save check {check!r}: only Agree, Vote, Scored, Verify and Aggregate with their "
        "default answer key and prompt are saved; build custom checks in code"
    )


def _check_from_dict(data: Any, position: int) -> Check | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ConfigError(f"cascade stage {position}: 'check' must be an object or null")
    spec = cast(dict[str, Any], data)
    kind = spec.get("kind")
    try:
        if kind == "agree":
            return Agree(int(spec.get("min_agree", 2)))
        if kind == "vote":
            return Vote()
        if kind == "scored":
            return Scored.from_dict(spec)
        if kind == "verify":
            return Verify(str(spec["model"]))
        if kind == "aggregate":
            return Aggregate(str(spec["model"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"cascade stage {position}: bad {kind} check: {exc}") from exc
    raise ConfigError(
        f"cascade stage {position}: unknown check kind {kind!r}; "
        "use agree, vote, scored, verify or aggregate"
    )


_PRESETS = "presets"


def load_cascades(source: str | os.PathLike[str]) -> PerAgent:
    """A cascade per agent, from a JSON file or a bundled preset's name.

    The file holds `{"agents": {name: cascade}, "default": cascade or null}` (each cascade in
    `Cascade.to_dict` form); agents it does not name use `default`, else `Cheapest()`.
    Bundled: `"zeroeval"`, fitted on the dev split of the recorded routing data (GSM8K, MATH
    level 5 and CRUXEval answers of 25 real models; agents `gsm`, `math-l5`, `crux`).

    Example:
        >>> policy = load_cascades("zeroeval")
        >>> sorted(policy.policies)
        ['crux', 'gsm', 'math-l5']

    Raises:
        ConfigError: no such preset or file, or the file is not valid.
    """
    text = _read(source)
    try:
        data: Any = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"cascade file {source}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(cast(dict[str, Any], data).get("agents"), dict):
        raise ConfigError(f"cascade file {source}: needs an 'agents' object")
    body = cast(dict[str, Any], data)
    agents = cast(dict[str, Any], body["agents"])
    policies: dict[str, RoutingPolicy] = {
        name: Cascade.from_dict(cascade) for name, cascade in agents.items()
    }
    default = body.get("default")
    return PerAgent(policies, Cascade.from_dict(default) if default else Cheapest())


def _read(source: str | os.PathLike[str]) -> str:
    name = os.fspath(source)
    if os.sep not in name and "/" not in name and not name.endswith(".json"):
        presets = Path(__file__).with_name(_PRESETS)
        preset = presets / f"{name}.json"
        if not preset.is_file():
            bundled = sorted(p.stem for p in presets.glob("*.json"))
            raise ConfigError(
                f"no bundled cascade preset {name!r}; bundled: {', '.join(bundled)} "
                "(or give a path to a JSON file)"
            )
        return preset.read_text(encoding="utf-8")
    try:
        return Path(name).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read cascade file {name}: {exc.strerror}") from exc


def dump_cascades(
    cascades: Mapping[str, Cascade],
    path: str | os.PathLike[str],
    *,
    default: Cascade | None = None,
    about: Mapping[str, Any] | Sequence[str] | str = "",
) -> None:
    """Write cascades per agent to a JSON file that `load_cascades` reads.

    Args:
        cascades: a cascade per agent name.
        path: the file to write.
        default: the cascade for agents not named (None: `Cheapest()` when loaded).
        about: how the cascades were made (data, split, settings), kept in the file.
    """
    data = {
        "about": about,
        "agents": {name: cascade.to_dict() for name, cascade in sorted(cascades.items())},
        "default": None if default is None else default.to_dict(),
    }
    Path(path).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
