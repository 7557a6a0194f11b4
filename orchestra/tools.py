"""Tools: plain typed Python functions (sync or async) that agents may call.

The function's signature becomes the JSON schema the model sees (through pydantic), its
docstring's first paragraph the description. Arguments are the model's untrusted JSON: bounded
in size and nesting, then validated strictly before the call (JSON `true` is not an `int`, `"3"`
is not a number); a tool that raises reports the error to the model as the tool's answer
instead of failing the node.

A plain (blocking) function runs in a worker thread, so the event loop goes on and the run's
deadlines (`Budget.max_seconds`, the retry deadline) still fire: on cancellation the node stops
waiting for it at once. Python cannot kill a thread, so the function itself runs on until it
returns; its result is dropped.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast, get_type_hints

import anyio.to_thread
from pydantic import BaseModel, ConfigDict, Field, create_model

from orchestra._untrusted import bounded, valid_text
from orchestra.errors import ConfigError

__all__ = ["Tool", "tool_from_function"]

ToolFunction = Callable[..., Any]


@dataclass(frozen=True)
class Tool:
    """A function the model may call, with its JSON schema."""

    name: str
    description: str
    function: ToolFunction
    arguments: type[BaseModel]

    def schema(self) -> dict[str, Any]:
        """The OpenAI-style tool definition litellm sends to the model."""
        parameters = self.arguments.model_json_schema()
        parameters.pop("title", None)
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": parameters,
            },
        }

    async def call(self, raw_arguments: str) -> str:
        """Run the tool on the model's JSON arguments; errors become the answer text."""
        try:
            text = bounded(raw_arguments or "{}", what=f"the arguments for {self.name}")
            # Strict JSON validation: the types the schema promised, no coercion.
            args = self.arguments.model_validate_json(text, strict=True)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            return f"error: invalid arguments for {self.name}: {exc}"
        # Fields have neutral internal names (p0, p1...) aliased to the parameters' names, so a
        # parameter may be called anything, even a name pydantic reserves (json, model_config).
        kwargs = {
            info.alias or field: getattr(args, field)
            for field, info in type(args).model_fields.items()
        }
        try:
            if inspect.iscoroutinefunction(self.function):
                result = await cast(Callable[..., Awaitable[Any]], self.function)(**kwargs)
            else:
                result = await anyio.to_thread.run_sync(
                    lambda: self.function(**kwargs), abandon_on_cancel=True
                )
                if inspect.isawaitable(result):  # a callable object whose call is async
                    result = await result
        except Exception as exc:  # a tool's failure is the model's to handle, not the run's
            return f"error: {type(exc).__name__}: {exc}"
        return _as_text(result)


def _as_text(result: Any) -> str:
    """A tool's result as the model reads it (valid text: it goes back in a request)."""
    if isinstance(result, str):
        return valid_text(result)
    if isinstance(result, BaseModel):
        try:
            return result.model_dump_json()
        except ValueError:  # text UTF-8 cannot hold: JSON escapes carry it
            return json.dumps(result.model_dump(mode="json"))
    try:
        return json.dumps(result, default=str)
    except (TypeError, ValueError):
        return valid_text(str(result))


def tool_from_function(function: ToolFunction) -> Tool:
    """Make a `Tool` of a typed function.

    Example:
        >>> def add(a: int, b: int = 1) -> int:
        ...     '''Add two integers.'''
        ...     return a + b
        >>> tool_from_function(add).schema()["function"]["parameters"]["required"]
        ['a']

    Raises:
        ConfigError: the function is not callable, takes *args/**kwargs or positional-only
            parameters, or has a parameter without a type hint.
    """
    if not callable(function):
        raise ConfigError(f"a tool must be a function, not {function!r}")
    name = getattr(function, "__name__", type(function).__name__)
    try:
        hints = get_type_hints(function)
    except Exception as exc:
        raise ConfigError(f"tool {name!r} has type hints that cannot be resolved: {exc}") from exc
    fields: dict[str, Any] = {}
    for index, param in enumerate(inspect.signature(function).parameters.values()):
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ConfigError(f"tool {name!r} takes *{param.name}; give it named parameters")
        if param.kind is param.POSITIONAL_ONLY:
            raise ConfigError(
                f"tool {name!r}: parameter {param.name!r} is positional-only; the model passes "
                "arguments by name, so drop the '/'"
            )
        if param.name not in hints:
            raise ConfigError(
                f"tool {name!r}: parameter {param.name!r} has no type hint; the model needs "
                "one to know what to pass"
            )
        default = ... if param.default is param.empty else param.default
        fields[f"p{index}"] = (hints[param.name], Field(default, alias=param.name))
    arguments = create_model(f"{name}_arguments", __config__=ConfigDict(extra="forbid"), **fields)
    doc = inspect.getdoc(function) or ""
    description = doc.split("\n\n", 1)[0].replace("\n", " ").strip() or name
    return Tool(name=name, description=description, function=function, arguments=arguments)
