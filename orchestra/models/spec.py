"""`ModelSpec`: one model of the constellation, with its prices, speeds and limits."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, cast
from urllib.parse import unquote, urlsplit

from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator

from orchestra._base import SECRET_NAME, USERINFO, Frozen, Names, Tags
from orchestra.models.breaker import BreakerPolicy
from orchestra.models.resilience import HedgePolicy, RetryPolicy
from orchestra.models.structured import StructuredOutput

__all__ = ["ModelSpec"]

# Parameters orchestra sets itself on every call; letting litellm_params override them would
# break retries (litellm retrying behind our back), cost accounting or the tool loop. Each maps
# to what to use instead.
_RESERVED_PARAMS = {
    "api_base": "ModelSpec.api_base",
    "api_key": "ModelSpec.api_key",
    "base_url": "ModelSpec.api_base",  # litellm's alias of api_base
    "context_window_fallback_dict": "ModelSpec.fallbacks",  # litellm's own, behind our back
    "fallbacks": "ModelSpec.fallbacks",
    "input_cost_per_token": "ModelSpec.input_cost (USD per 1M tokens)",
    "max_retries": "ModelSpec.retry",
    "messages": "the task's prompt and the agent's instructions",
    "metadata": "nothing: orchestra sets it",
    "mock_response": "orchestra.testing.FakeModel",
    "model": "ModelSpec.model",
    "num_retries": "ModelSpec.retry",
    "output_cost_per_token": "ModelSpec.output_cost (USD per 1M tokens)",
    "retry_policy": "ModelSpec.retry",
    "response_format": "Agent.output_type (and ModelSpec.structured_output for the dialect)",
    "stream": "ModelSpec.stream",
    "stream_options": "ModelSpec.stream",
    "timeout": "ModelSpec.timeout",
    "tool_choice": "Agent.tool_choice",
    "tools": "Agent.tools",
}


def _secret(value: SecretStr | str | None) -> SecretStr | None:
    return SecretStr(value) if isinstance(value, str) else value


# What HTTP lets a header carry: visible ASCII, spaces and tabs (no CR/LF: no injection).
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")


def _check_headers(headers: object) -> None:
    """Raise if `extra_headers` could not be sent as HTTP headers (values never echoed)."""
    if not isinstance(headers, Mapping):
        raise ValueError("extra_headers must be a table of header names to string values")
    for name, value in cast(Mapping[object, object], headers).items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"extra_headers: {name!r} is not a valid HTTP header name")
        if not isinstance(value, str) or not _HEADER_VALUE.fullmatch(value):
            raise ValueError(
                f"extra_headers: the value of {name!r} must be a string of printable ASCII "
                "characters (no line breaks); HTTP headers cannot carry anything else"
            )


def _redacted(value: Any, secret: bool = False) -> Any:
    """Provider options with every value under a secret-looking name (or a header) replaced."""
    if isinstance(value, Mapping):
        return {
            name: _redacted(item, secret or bool(_HIDDEN_OPTION.search(str(name))))
            for name, item in cast(Mapping[str, Any], value).items()
        }
    if isinstance(value, list | tuple):
        return [_redacted(item, secret) for item in cast(list[Any], value)]
    return "***" if secret and value is not None else value


# Options whose values are hidden: secret-looking names, and every header (any may carry one).
_HIDDEN_OPTION = re.compile(f"{SECRET_NAME.pattern}|header", re.IGNORECASE)


def _secret_values(options: Mapping[str, Any], secret: bool = False) -> Iterator[str]:
    """String values of `options` under secret-looking names, at any depth."""
    for name, value in options.items():
        under = secret or bool(SECRET_NAME.search(str(name)))
        if isinstance(value, Mapping):
            yield from _secret_values(cast(Mapping[str, Any], value), under)
        elif isinstance(value, str) and under:
            yield value


class ModelSpec(Frozen):
    """One model of the constellation: what to call, what it costs, how fast and strong it is.

    Any litellm model string works, and any OpenAI-compatible server through `api_base`.

    Example:
        >>> fast = ModelSpec(name="fast", model="groq/llama-3.1-8b-instant",
        ...                  input_cost=0.05, output_cost=0.08, quality=0.6,
        ...                  ttft=0.2, prefill_tps=6000, decode_tps=750, max_concurrency=32)
        >>> round(fast.cost(input_tokens=1_000_000, output_tokens=1_000_000), 2)
        0.13
        >>> round(fast.predict_latency(prompt_tokens=600, output_tokens=150), 2)
        0.5
    """

    name: str = Field(min_length=1)
    """Name agents, tasks, fallbacks and routers use for this model."""
    model: str = Field(min_length=1)
    """The litellm model string, e.g. `openai/gpt-4o` or `groq/llama-3.1-8b-instant`."""
    api_base: str | None = None
    """Base URL of the endpoint (any OpenAI-compatible server: vLLM, llama.cpp, Ollama...)."""
    api_key: Annotated[SecretStr | str | None, AfterValidator(_secret)] = None
    """API key, stored as a SecretStr (hidden in reprs, errors and events). None: litellm's
    lookup of the provider's environment variable."""
    input_cost: float | None = Field(default=None, ge=0)
    """USD per 1M input tokens (None: unknown. An unpriced model is not free: routers rank it
    after priced ones, and a run with a USD budget refuses to call it; 0 is a price)."""
    output_cost: float | None = Field(default=None, ge=0)
    """USD per 1M output tokens (None: unknown; see `input_cost`)."""
    quality: float = Field(default=0.5, ge=0, le=1)
    """How strong the model is, 0 to 1; routers compare it with their quality bars."""
    tags: Tags = frozenset()
    """What the model is good at (`planning`, `code`...); agents' tags narrow the candidates."""
    ttft: float = Field(default=0.5, ge=0)
    """Seconds to the first token."""
    prefill_tps: float = Field(default=2000.0, gt=0)
    """Prompt tokens processed per second."""
    decode_tps: float = Field(default=100.0, gt=0)
    """Output tokens generated per second."""
    max_concurrency: int | None = Field(default=None, ge=1)
    """At most this many calls in flight to this model (None: no limit)."""
    rpm: int | None = Field(default=None, ge=1)
    """Requests per minute allowed (None: no limit)."""
    tpm: int | None = Field(default=None, ge=1)
    """Tokens per minute allowed (None: no limit)."""
    max_context: int | None = Field(default=None, ge=1)
    """Context window in tokens, when known."""
    timeout: float | None = Field(default=None, gt=0)
    """Seconds one call may take before it is abandoned (None: litellm's default)."""
    fallbacks: Names = ()
    """Names of other specs to try, in order, once this model's retries are spent (or at once
    for errors a retry cannot fix)."""
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    """How failed calls to this model are retried (transient errors only)."""
    breaker: BreakerPolicy = Field(default_factory=BreakerPolicy)
    """When this model's circuit opens (calls skip it) and when it is probed again."""
    hedge: HedgePolicy | None = None
    """Hedge slow calls to this model with a second one (None: never)."""
    stream: bool = False
    """Stream answers (a cut or stalled stream is retried; never half an answer)."""
    stream_timeout: float = Field(default=30.0, gt=0)
    """With `stream`, seconds without a chunk before the stream counts as stalled."""
    structured_output: StructuredOutput | None = None
    """How the server is asked for JSON of a schema: `json_schema` (OpenAI's structured
    outputs; vLLM, Ollama), `json_object` (llama.cpp's `{"type": "json_object", "schema": ...}`)
    or `none`. None: `json_schema` where litellm knows the model supports it, else `none`.
    Where it is declared, the planner constrains the boss to valid plans."""
    litellm_params: dict[str, Any] = Field(default_factory=dict[str, Any])
    """Provider options passed to `litellm.acompletion` as they are (temperature, seed...)."""

    @field_validator("litellm_params")
    @classmethod
    def _no_reserved_params(cls, value: dict[str, Any]) -> dict[str, Any]:
        clash = sorted(_RESERVED_PARAMS.keys() & value.keys())
        if clash:
            instead = "; ".join(f"for {name} use {_RESERVED_PARAMS[name]}" for name in clash)
            raise ValueError(
                f"{', '.join(clash)} cannot go in litellm_params: orchestra sets them "
                f"itself; {instead}"
            )
        if "extra_headers" in value:
            _check_headers(value["extra_headers"])
        return value

    @field_validator("api_base")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        # The URL may hold credentials (user:password@): describe it, never echo it.
        if any(char.isspace() or not char.isprintable() for char in value):
            raise ValueError("api_base holds spaces or control characters; give a plain URL")
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 -- parsing the port is what checks it
        except ValueError as exc:
            raise ValueError(f"api_base is not a valid URL ({exc})") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "api_base must be an http:// or https:// URL with a host, such as "
                "http://127.0.0.1:8000/v1"
            )
        return value

    @model_validator(mode="after")
    def _no_self_fallback(self) -> ModelSpec:
        if self.name in self.fallbacks:
            raise ValueError(f"model {self.name!r} lists itself in fallbacks")
        return self

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # Credentials in the URL, headers and options stay out of reprs, as the API key does.
        public = self.public()
        for name, value in super().__repr_args__():
            yield name, public[name] if name in ("api_base", "litellm_params") else value

    def public(self) -> dict[str, Any]:
        """The spec as data with its secrets removed (no API key; credentials in `api_base`,
        header values and secret-looking options replaced), as the journal stores it."""
        data = self.model_dump(mode="json", exclude={"api_key"})
        if self.api_base is not None:
            data["api_base"] = USERINFO.sub("***@", self.api_base)
        data["litellm_params"] = _redacted(self.litellm_params)
        return data

    def secret(self) -> str | None:
        """The API key in clear, for the one place that sends it."""
        key = self.api_key
        return key.get_secret_value() if isinstance(key, SecretStr) else key

    def secrets(self) -> tuple[str, ...]:
        """Every secret this spec holds, in clear, for scrubbing text that may show them:
        the API key, credentials in `api_base`, every `extra_headers` value, and provider
        options under secret-looking names (`aws_secret_access_key`, `token`...)."""
        found: list[str] = []
        key = self.secret()
        if key:
            found.append(key)
        if self.api_base is not None:
            parts = urlsplit(self.api_base)
            userinfo = parts.netloc.rpartition("@")[0]
            if userinfo:
                password = userinfo.partition(":")[2]
                found.extend(p for p in (userinfo, password, unquote(password)) if p)
        headers = self.litellm_params.get("extra_headers")
        if isinstance(headers, Mapping):
            found.extend(v for v in cast(Mapping[str, Any], headers).values() if isinstance(v, str))
        found.extend(_secret_values(self.litellm_params))
        return tuple(dict.fromkeys(found))

    @property
    def priced(self) -> bool:
        """True when both prices are known (0 is a price)."""
        return self.input_cost is not None and self.output_cost is not None

    def cost(self, *, input_tokens: int, output_tokens: int) -> float:
        """USD for a call with these token counts (an unknown price counts as 0 here; budgets
        refuse unpriced models before this matters)."""
        return (
            input_tokens * (self.input_cost or 0.0) + output_tokens * (self.output_cost or 0.0)
        ) / 1_000_000

    def predict_latency(self, *, prompt_tokens: int, output_tokens: int) -> float:
        """Seconds a call should take: time to first token, then prefill, then decode."""
        return self.ttft + prompt_tokens / self.prefill_tps + output_tokens / self.decode_tps

    @property
    def concurrency(self) -> int | float:
        """`max_concurrency`, or infinity when unlimited (as anyio's CapacityLimiter takes it)."""
        return math.inf if self.max_concurrency is None else self.max_concurrency
