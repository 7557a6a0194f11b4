"""Structured output: asking a model for JSON of a given schema, and holding it to it.

Servers ask for a schema in different dialects, and litellm cannot tell which one a server at a
custom `api_base` speaks, so a spec declares it (`ModelSpec.structured_output`):

- `json_schema`: OpenAI's structured outputs,
  `{"type": "json_schema", "json_schema": {"name": ..., "schema": ...}}` (OpenAI, vLLM, Ollama,
  LM Studio);
- `json_object`: llama.cpp's constrained decoding, `{"type": "json_object", "schema": ...}`
  (llama-cpp-python's server refuses the OpenAI form);
- `none`: the server cannot be asked; the schema goes in the prompt only.

Left unset, a model litellm knows to support response schemas gets `json_schema`, any other
`none`. `response_format` turns a spec and a JSON schema into the request's `response_format`;
workers (an agent's `output_type`) and the planner both use it.

Whatever the server promised, the answer is validated: a reply that is not valid (prose around
the JSON, a truncated object, a wrong field) is sent back with the problems, at most
`REASKS` times, before the call counts as failed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ValidationError

from orchestra._base import describe_validation_error
from orchestra.errors import ModelError

if TYPE_CHECKING:
    from orchestra.models.client import Completion
    from orchestra.models.spec import ModelSpec

__all__ = [
    "REASKS",
    "OutputCheck",
    "StructuredOutput",
    "json_object",
    "response_format",
    "schema_instruction",
]

StructuredOutput = Literal["json_schema", "json_object", "none"]
"""How a server is asked for JSON of a schema (see the module docstring)."""

REASKS = 2
"""Times an answer that fails its output type is sent back before the call fails."""

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n(.*?)```", re.DOTALL)
_NAME = re.compile(r"[^A-Za-z0-9_-]")


def dialect(spec: ModelSpec) -> StructuredOutput:
    """The structured-output dialect of `spec`: declared, else what litellm knows."""
    if spec.structured_output is not None:
        return spec.structured_output
    from orchestra.models.loader import load_litellm

    try:
        supported = bool(load_litellm().supports_response_schema(model=spec.model))
    except Exception:  # litellm raises for models it does not know: nothing to ask for then
        return "none"
    return "json_schema" if supported else "none"


def response_format(
    spec: ModelSpec, schema: Mapping[str, Any], *, name: str = "output"
) -> dict[str, Any] | None:
    """The `response_format` that asks `spec`'s server for JSON valid against `schema`
    (None when it cannot be asked).

    Example:
        >>> from orchestra.models.spec import ModelSpec
        >>> local = ModelSpec(name="local", model="openai/smollm2", structured_output="json_object")
        >>> response_format(local, {"type": "object"})
        {'type': 'json_object', 'schema': {'type': 'object'}}
    """
    kind = dialect(spec)
    if kind == "json_schema":
        # Not strict: OpenAI's strict mode refuses schemas with optional fields, which
        # pydantic models have; the answer is validated here anyway.
        named = _NAME.sub("_", name)[:64] or "output"
        return {
            "type": "json_schema",
            "json_schema": {"name": named, "schema": dict(schema), "strict": False},
        }
    if kind == "json_object":
        return {"type": "json_object", "schema": dict(schema)}
    return None


def schema_instruction(schema: Mapping[str, Any]) -> str:
    """The prompt's request for JSON of `schema` (sent even where the server enforces it:
    the model writes better JSON when it knows what the fields mean)."""
    compact = json.dumps(schema, separators=(",", ":"))
    return (
        "Answer with one JSON object valid against this JSON schema, and nothing else:\n" + compact
    )


def json_object(text: str) -> dict[str, Any] | None:
    """The JSON object in a model's answer: bare, in a code fence, or the outermost `{...}`
    among prose (None when there is none).

    A raw control character inside a string is accepted: llama-cpp-python's grammar for a JSON
    string lets a raw newline through, and the intent of such an answer is plain.

    Example:
        >>> json_object('Sure! ```json\\n{"a": 1}\\n``` Anything else?')
        {'a': 1}
        >>> json_object('{"name": "two\\nlines"}')
        {'name': 'two\\nlines'}
    """
    candidates = [m.group(1) for m in _FENCE.finditer(text)]
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        candidates.append(text[start : end + 1])
    candidates.append(text)
    for candidate in candidates:
        try:
            data: Any = json.loads(candidate, strict=False)
        except ValueError:
            continue
        if isinstance(data, dict):
            return data  # pyright: ignore[reportUnknownVariableType] - json gives Any
    return None


@dataclass
class OutputCheck:
    """Holds one node's answers to its agent's `output_type`, re-asking on a bad one.

    `validate` gives an answer's instance or what is wrong with it; `follow_up` returns the
    messages that ask again, or raises once `REASKS` re-asks are spent.
    """

    output_type: type[BaseModel]
    task_id: str
    reasks: int = field(default=0, init=False)

    @property
    def schema(self) -> dict[str, Any]:
        """The output type's JSON schema."""
        return self.output_type.model_json_schema()

    def response_format(self, spec: ModelSpec) -> dict[str, Any] | None:
        """The request's `response_format` on `spec`."""
        return response_format(spec, self.schema, name=self.output_type.__name__)

    def validate(self, text: str | None) -> BaseModel | str:
        """The answer as an instance of the output type, or what is wrong with it."""
        data = json_object(text or "")
        name = self.output_type.__name__
        if data is None:
            return f"the answer holds no JSON object; answer with one {name} object"
        try:
            return self.output_type.model_validate(data)
        except ValidationError as exc:
            return describe_validation_error(f"the {name} object", exc)

    def parse(self, text: str | None, *, model: str) -> BaseModel:
        """The answer `model` gave as an instance of the output type.

        Raises:
            ModelError: the answer holds no valid instance (the message lists the problems).
        """
        output = self.validate(text)
        if isinstance(output, str):
            raise ModelError(
                f"task {self.task_id!r}: the answer of model {model!r} is not a valid "
                f"{self.output_type.__name__}: {output}",
                model=model,
            )
        return output

    def follow_up(self, completion: Completion) -> list[dict[str, Any]] | None:
        """None when `completion` holds a valid output; else the messages asking again.

        Raises:
            ModelError: the answer is still invalid after `REASKS` re-asks.
        """
        problem = self.validate(completion.content)
        if not isinstance(problem, str):
            return None
        if completion.finish_reason == "length":
            problem += " (the answer was truncated at the token limit)"
        if self.reasks >= REASKS:
            raise ModelError(
                f"task {self.task_id!r}: model {completion.model!r} gave no answer valid "
                f"against {self.output_type.__name__} in {self.reasks + 1} tries: {problem}. "
                "Simplify the output type, raise max_tokens, or use a model whose spec "
                "declares structured_output",
                model=completion.model,
            )
        self.reasks += 1
        retry = f"That answer cannot be used: {problem}\nAnswer again with the whole JSON object."
        assistant = {"role": "assistant", "content": completion.content or ""}
        return [assistant, {"role": "user", "content": retry}]
