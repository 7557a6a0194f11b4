"""The pydantic base of orchestra's boundary models: bad input raises our typed errors."""

from __future__ import annotations

import ast
import difflib
import functools
import inspect
import itertools
import re
import textwrap
from collections.abc import Callable, Collection, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Annotated, Any, ClassVar, cast

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError
from pydantic.config import ExtraValues
from pydantic_core import ErrorDetails
from typing_extensions import Self

from orchestra.errors import ConfigError, OrchestraError

# Fields typed as read-only collections accept lists and sets from callers (and type checkers),
# and are stored as tuples and frozensets so models stay immutable and hashable.
Names = Annotated[Sequence[str], AfterValidator(tuple)]
"""A sequence of names, stored as a tuple."""
Tags = Annotated[AbstractSet[str], AfterValidator(frozenset)]
"""A set of tags, stored as a frozenset."""


# Field names whose values are never echoed in an error: a misspelt or mistyped secret field
# (`apikey=`, TOML `api-key`) must not print the key it was given.
SECRET_NAME = re.compile(r"key|token|secret|passw|credential|auth|cookie|signature", re.I)
"""Names (of fields, options, headers, environment variables) whose values are secrets."""
USERINFO = re.compile(r"(?<=://)[^/\s@'\"]+@")
"""The `user:password@` part of a URL, which must never be shown."""
_SHOWN_CHARS = 80


def _shown(err: ErrorDetails, known: Collection[str]) -> str:
    """What an error report says about the offending value: its repr, a hint, or nothing."""
    where = [str(part) for part in err["loc"]]
    if err["type"] == "extra_forbidden":
        # An unknown field may be a misspelt secret: name the field, never its value.
        if len(where) != 1:
            return ""
        # Compared without case and with `-` as `_`: TOML's `api-key`, an env-style `API_KEY`.
        fields = {name.lower().replace("-", "_"): name for name in known}
        close = difflib.get_close_matches(where[0].lower().replace("-", "_"), fields, n=1)
        return f"; did you mean {fields[close[0]]!r}?" if close else ""
    got: object = err.get("input")
    if isinstance(got, (dict, list, tuple)) or any(SECRET_NAME.search(p) for p in where):
        return ""
    text = USERINFO.sub("***@", repr(got))
    return f" (got {text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + '...'})"


def describe_validation_error(what: str, exc: ValidationError, known: Collection[str] = ()) -> str:
    """Turn pydantic's report into one readable sentence per problem.

    Values are shown (shortened) except under unknown fields and fields named like secrets
    (`api_key`, `token`...), so a misspelt key field never puts the key in the message;
    `known` (the model's field names) gives unknown fields a did-you-mean.
    """
    lines = [f"{what} is invalid:"]
    for err in exc.errors(include_url=False):
        where = ".".join(str(part) for part in err["loc"]) or "(value)"
        inner = err.get("ctx", {}).get("error")
        if isinstance(inner, OrchestraError):  # a nested model's own report, as it is
            lines.append(f"  - {where}: {inner}")
            continue
        lines.append(f"  - {where}: {err['msg']}{_shown(err, known)}")
    return "\n".join(lines)


def _own_error(exc: ValidationError) -> OrchestraError | None:
    """Our own typed error, when pydantic only wrapped it (a model's `__init__` raising
    inside `model_validate`), so it is raised as it is rather than described twice."""
    errors = exc.errors(include_url=False)
    if len(errors) == 1 and not errors[0]["loc"]:
        inner = errors[0].get("ctx", {}).get("error")
        if isinstance(inner, OrchestraError):
            return inner
    return None


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
            error = type(self).invalid(data, exc)
        else:
            return
        # Raised outside the handler: pydantic's error, which holds the raw inputs (a
        # misspelt key field's value among them), is neither the cause nor the context.
        raise error

    @classmethod
    def invalid(cls, data: Any, exc: ValidationError) -> OrchestraError:
        """The typed error to raise when `data` does not validate as this model."""
        label = cls.__name__
        fields: Mapping[str, Any] = (
            cast(Mapping[str, Any], data) if isinstance(data, Mapping) else {}
        )
        name = fields.get("name") or fields.get("id")
        if isinstance(name, str):
            label = f"{label} {name!r}"
        return cls.error_type(describe_validation_error(label, exc, cls.model_fields))

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Self:
        """Validate `data` as this model, raising the typed error on failure."""
        return cls.model_validate(data)

    @classmethod
    def model_validate(
        cls,
        obj: Any,
        *,
        strict: bool | None = None,
        extra: ExtraValues | None = None,
        from_attributes: bool | None = None,
        context: Any | None = None,
        by_alias: bool | None = None,
        by_name: bool | None = None,
    ) -> Self:
        """Validate `obj` as this model, raising the typed error (`error_type`) on failure."""
        try:
            return super().model_validate(
                obj,
                strict=strict,
                extra=extra,
                from_attributes=from_attributes,
                context=context,
                by_alias=by_alias,
                by_name=by_name,
            )
        except ValidationError as exc:
            error = _own_error(exc) or cls.invalid(obj, exc)
        raise error

    @classmethod
    def model_validate_json(
        cls,
        json_data: str | bytes | bytearray,
        *,
        strict: bool | None = None,
        extra: ExtraValues | None = None,
        context: Any | None = None,
        by_alias: bool | None = None,
        by_name: bool | None = None,
    ) -> Self:
        """Validate JSON text as this model, raising the typed error on failure."""
        try:
            return super().model_validate_json(
                json_data,
                strict=strict,
                extra=extra,
                context=context,
                by_alias=by_alias,
                by_name=by_name,
            )
        except ValidationError as exc:
            error = _own_error(exc) or cls.invalid(None, exc)
        raise error

    @classmethod
    def model_validate_strings(
        cls,
        obj: Any,
        *,
        strict: bool | None = None,
        extra: ExtraValues | None = None,
        context: Any | None = None,
        by_alias: bool | None = None,
        by_name: bool | None = None,
    ) -> Self:
        """Validate string data as this model, raising the typed error on failure."""
        try:
            return super().model_validate_strings(
                obj, strict=strict, extra=extra, context=context, by_alias=by_alias, by_name=by_name
            )
        except ValidationError as exc:
            error = _own_error(exc) or cls.invalid(obj, exc)
        raise error
