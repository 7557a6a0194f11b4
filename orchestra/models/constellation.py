"""`Constellation`: the models a run may use, by name, hot-swappable while runs go on."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from orchestra.errors import ConfigError
from orchestra.models.spec import ModelSpec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib  # pyright: ignore[reportMissingImports] - installed on 3.10 only

__all__ = ["Constellation", "read_toml"]


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML file, turning a missing file or bad syntax into a `ConfigError`."""
    file = Path(path)
    try:
        with file.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {str(file)!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(file)!r} is not valid TOML: {exc}") from exc


class Constellation:
    """The models of a system, by spec name.

    Calls look a spec up when they start, so `swap` is safe mid-run: calls in flight finish on
    the old spec, later calls use the new one.

    Example:
        >>> models = Constellation([ModelSpec(name="fast", model="groq/llama-3.1-8b-instant")])
        >>> models.swap("fast", ModelSpec(name="fast", model="cerebras/llama3.1-8b"))
        >>> models["fast"].model
        'cerebras/llama3.1-8b'
    """

    def __init__(self, specs: Iterable[ModelSpec]) -> None:
        """Build from specs; names must be unique and fallbacks must name specs given here.

        Raises:
            ConfigError: duplicate names, unknown fallbacks, or no specs at all.
        """
        self._specs: dict[str, ModelSpec] = {}
        for spec in specs:
            if not isinstance(spec, ModelSpec):  # pyright: ignore[reportUnnecessaryIsInstance]
                raise ConfigError(f"a Constellation holds ModelSpec objects, not {spec!r}")
            if spec.name in self._specs:
                raise ConfigError(f"two models are named {spec.name!r}; names must be unique")
            self._specs[spec.name] = spec
        if not self._specs:
            raise ConfigError("a Constellation needs at least one ModelSpec")
        for spec in self._specs.values():
            self._check_fallbacks(spec)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Constellation:
        """Load the `[models.NAME]` tables of a TOML file (e.g. `orchestra.toml`).

        Example file:
            [models.fast]
            model = "groq/llama-3.1-8b-instant"
            input_cost = 0.05
            output_cost = 0.08
            api_key = "${GROQ_API_KEY}"   # read from the environment at load time

        Raises:
            ConfigError: missing file, bad TOML, or an invalid model table.
        """
        return cls.from_mapping(read_toml(path), source=str(path))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "config") -> Constellation:
        """Build from a parsed config whose `models` table maps names to spec fields."""
        tables: dict[str, Any] | None = data.get("models")
        if not isinstance(tables, dict) or not tables:
            raise ConfigError(
                f"{source} has no [models.NAME] tables; add at least one, e.g.\n"
                '[models.fast]\nmodel = "groq/llama-3.1-8b-instant"'
            )
        specs: list[ModelSpec] = []
        for name, table in tables.items():
            if not isinstance(table, dict):
                raise ConfigError(f"{source}: models.{name} must be a table of ModelSpec fields")
            items: dict[str, Any] = table  # pyright: ignore[reportUnknownVariableType] - TOML
            fields = {key: _expand_env(value, source) for key, value in items.items()}
            specs.append(ModelSpec.parse({**fields, "name": name}))
        return cls(specs)

    def _check_fallbacks(self, spec: ModelSpec) -> None:
        hedge = spec.hedge.model if spec.hedge is not None else None
        if hedge is not None and hedge not in self._specs:
            raise ConfigError(
                f"model {spec.name!r} hedges with unknown model {hedge!r}; "
                f"known models: {', '.join(sorted(self._specs))}"
            )
        for fallback in spec.fallbacks:
            if fallback not in self._specs:
                raise ConfigError(
                    f"model {spec.name!r} falls back to unknown model {fallback!r}; "
                    f"known models: {', '.join(sorted(self._specs))}"
                )

    def swap(self, name: str, spec: ModelSpec) -> None:
        """Replace the spec called `name`; calls in flight finish on the old one.

        Raises:
            ConfigError: `name` is unknown, the new spec has another name, or its fallbacks
                are unknown.
        """
        if name not in self._specs:
            raise ConfigError(
                f"cannot swap unknown model {name!r}; "
                f"known models: {', '.join(sorted(self._specs))}"
            )
        if spec.name != name:
            raise ConfigError(
                f"the spec swapped in for {name!r} is named {spec.name!r}; give it the same name"
            )
        self._check_fallbacks(spec)
        self._specs[name] = spec

    def __getitem__(self, name: str) -> ModelSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise ConfigError(
                f"unknown model {name!r}; known models: {', '.join(sorted(self._specs))}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(list(self._specs.values()))

    def __len__(self) -> int:
        return len(self._specs)

    @property
    def names(self) -> list[str]:
        """Spec names, in the order given."""
        return list(self._specs)

    def __repr__(self) -> str:
        return f"Constellation({', '.join(self._specs)})"


def _expand_env(value: Any, source: str) -> Any:
    """Expand `${VAR}` in string values, so keys stay out of config files."""
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        var = value[2:-1]
        if var not in os.environ:
            raise ConfigError(f"{source} refers to ${{{var}}}, but the variable is not set")
        return os.environ[var]
    return value
