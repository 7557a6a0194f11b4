"""The pydantic base of orchestra's boundary models: bad input raises our typed errors."""

from __future__ import annotations

import ast
import functools
import inspect
import itertools
import textwrap
from collections.abc import Callable, Mapping, Sequence
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
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, OrchestraError):  # a nested model's own report: as it is
            lines.append(f"  - {where}: {cause}")
            continue
        lines.append(f"  - {where}: {err['msg']}{shown}")
    return "\n".join(lines)


@functools.cache
def _field_docstrings(cls: type[Any]) -> dict[str, str]:
    """The docstrings under a class's annotated fields, from its source (none without one)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):  # defined where no source is kept (a REPL, a frozen app)
        return {}
    body = tree.body[0].body if isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = inspect.cleandoc(after.value.value)
    return docs


def described(summary: str) -> Callable[[dict[str, Any], type[Any]], None]:
    """A `json_schema_extra` giving a model's schema `summary` as its description and each
    property its field's docstring.

    pydantic's `use_attribute_docstrings` does this too, but it reads the source when the class
    is created, on every `import orchestra`; this reads it when a schema is first asked for.

    Example:
        >>> from orchestra.plan import Task
        >>> Task.model_json_schema()["properties"]["agent"]["description"]
        'Name of the agent that performs the task.'
    """

    def extra(schema: dict[str, Any], cls: type[Any]) -> None:
        schema["description"] = summary
        docs = _field_docstrings(cls)
        properties: dict[str, dict[str, Any]] = schema.get("properties", {})
        for name, field in properties.items():
            if name in docs:
                field["description"] = docs[name]

    return extra


class Frozen(BaseModel):
    """Immutable, strict-keyed pydantic model whose validation errors are orchestra errors."""

    # `import orchestra` stays fast: validators are built on a model's first use; field
    # docstrings reach a schema only where a model reads it (`described`, on Plan and Task).
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)
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
        # Through `__init__`, which raises the typed error: `model_validate` calls it too (it is
        # overridden) and would wrap that error in a second report of the same problem.
        return cls(**data)
