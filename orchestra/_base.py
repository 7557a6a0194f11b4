"""The pydantic base of orchestra's boundary models: bad input raises our typed errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError
from typing_extensions import Self

from orchestra.errors import ConfigError, OrchestraError

# Fields typed as read-only collections accept lists and sets from callers (and type checkers),
# and are stored as tuples and frozensets so models stay immutable and hashable.
Names = Annotated[Sequence[str], AfterValidator(tuple)]
"""A sequence of names, stored as a tuple."""
Tags = Annotated[AbstractSet[str], AfterValidator(frozenset)]
"""A set of tags, stored as a frozenset."""


def describe_validation_error(what: str, exc: ValidationError) -> str:
    """Turn pydantic's report into one readable sentence per problem."""
    lines = [f"{what} is invalid:"]
    for err in exc.errors(include_url=False):
        where = ".".join(str(part) for part in err["loc"]) or "(value)"
        got: object = err.get("input")
        shown = "" if isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"  - {where}: {err['msg']}{shown}")
    return "\n".join(lines)


class Frozen(BaseModel):
    """Immutable, strict-keyed pydantic model whose validation errors are orchestra errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)
    error_type: ClassVar[type[OrchestraError]] = ConfigError

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise type(self).invalid(data, exc) from exc

    @classmethod
    def invalid(cls, data: dict[str, Any], exc: ValidationError) -> OrchestraError:
        """The typed error to raise when `data` does not validate as this model."""
        label = cls.__name__
        name = data.get("name") or data.get("id")
        if isinstance(name, str):
            label = f"{label} {name!r}"
        return cls.error_type(describe_validation_error(label, exc))

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Self:
        """Validate `data` as this model, raising the typed error on failure."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise cls.invalid(dict(data), exc) from exc
