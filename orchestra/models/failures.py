"""What a failed model call means: the `ModelError` for an exception from litellm.

litellm reports most failures as a 500 "server error", whatever happened. The exception's chain
says more, and decides what can help:

- the provider answered with a status (401, 429, 5xx...): that status, as litellm mapped it;
- the request never reached it (connection refused, DNS lookup failed, TLS handshake failed,
  connection lost): the URL and the reason; transient except for TLS, which a retry cannot fix;
- no API key at all: an authentication failure, never retried;
- the request could not even be sent (a header HTTP cannot carry, a bug on our side): a
  client-side error, never retried and never counted against the model's circuit breaker.

No text of the provider's exception leaves unscrubbed: the spec's secrets (API key, secret
headers and options, URL credentials) and secret-looking environment values are replaced, and
the exception itself is not chained to the `ModelError` (it holds the request, key included).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

from orchestra._base import SECRET_NAME, USERINFO
from orchestra._clock import utc_now
from orchestra._untrusted import valid_text
from orchestra.errors import ModelError
from orchestra.models.loader import load_litellm
from orchestra.models.spec import ModelSpec

__all__ = ["ResponseTooLarge", "model_error", "public_url", "scrub", "stream_unfinished"]

_RETRYABLE_STATUS = frozenset({408, 409, 425, 429})
_MESSAGE_CHARS = 600
# Shorter values are too likely to occur in ordinary text to be replaced wherever they appear.
_MIN_SECRET_CHARS = 4


class ResponseTooLarge(Exception):
    """A provider's response body grew past what orchestra reads (`guard.MAX_BODY_BYTES`)."""


def _describe(status: int | None) -> str:
    if status == 401:
        return "authentication failed (check the spec's api_key)"
    if status == 403:
        return "permission denied"
    if status == 404:
        return "model or endpoint not found (check the spec's model and api_base)"
    if status == 408:
        return "timed out"
    if status == 429:
        return "rate limited"
    if status == 400:
        return "bad request"
    if status is not None and status >= 500:
        return "server error"
    return "call failed"


def _first_lines(text: str, limit: int = _MESSAGE_CHARS) -> str:
    """The provider's message without the traceback litellm sometimes appends to it, as valid
    text (a JSON error body may carry lone surrogates)."""
    text = valid_text(text.split("Traceback (most recent call last)", 1)[0].strip())
    return text if len(text) <= limit else text[:limit] + " [...]"


def _environment_secrets() -> Iterator[str]:
    """Values of secret-looking environment variables (`OPENAI_API_KEY`...): litellm sends
    them when a spec has no `api_key`, and a provider may echo them."""
    for name, value in os.environ.items():
        if SECRET_NAME.search(name) and len(value) >= _MIN_SECRET_CHARS:
            yield value


def scrub(text: str, spec: ModelSpec) -> str:
    """Remove secrets from text that may reach errors, events or logs: the spec's (API key,
    secret headers and options, credentials in `api_base`), secret-looking environment
    values, and any `user:password@` in a URL."""
    secrets = [*spec.secrets(), *_environment_secrets()]
    # Longest first, so a secret containing another is replaced whole.
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= _MIN_SECRET_CHARS:
            text = text.replace(secret, "***")
    return USERINFO.sub("***@", text)


def public_url(url: str) -> str:
    """`url` without the credentials of a `user:password@` part."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _retry_after(exc: BaseException) -> float | None:
    """The provider's Retry-After, in seconds (litellm keeps the headers on the exception)."""
    headers: Any = getattr(exc, "litellm_response_headers", None) or {}
    try:
        value = headers.get("retry-after")
    except AttributeError:
        return None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    import email.utils  # an HTTP date is rare: spare every `import orchestra` the email package

    try:
        when = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - utc_now()).total_seconds())


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and its causes, outermost first, as a traceback would print them."""
    links: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and all(link is not seen for seen in links):
        links.append(link)
        link = link.__cause__ or (None if link.__suppress_context__ else link.__context__)
    return links


def _url(links: list[BaseException]) -> str | None:
    """The URL the failed request went to, as the HTTP client's exceptions record it (litellm's
    own exceptions carry placeholder requests: they are not asked)."""
    for link in reversed(links):
        if not type(link).__module__.startswith(("httpx", "openai")):
            continue
        try:
            request: Any = cast(Any, link).request  # httpx's and the OpenAI SDK's errors
            url = str(request.url)
        except Exception:  # no request, or httpx's property raising when none was set
            continue
        return public_url(url)
    return None


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _unreachable(links: list[BaseException]) -> tuple[str, bool] | None:
    """Why no answer came, if the request never reached the provider: (reason, transient)."""
    # Imported here, not at `import orchestra` (they cost it ~10%): an HTTP client that could
    # raise their errors has imported them already.
    import socket
    import ssl

    for link in reversed(links):  # the root cause first
        if isinstance(link, ssl.SSLError):
            return (
                f"the TLS handshake failed ({link}); check the URL's scheme and certificate",
                False,
            )
        if isinstance(link, socket.gaierror):
            return "the host name could not be resolved (DNS lookup failed); check the URL", True
        if isinstance(link, ConnectionRefusedError):
            return "the connection was refused; is the server running on that port?", True
        if isinstance(link, TimeoutError):
            return None  # litellm maps timeouts to 408 itself
        if isinstance(link, OSError) or _names(link) & _LOST:
            return f"the connection was lost ({type(link).__name__})", True
    return None


# Transport errors of httpx and aiohttp that mean the provider's side dropped the exchange.
_LOST = frozenset(
    {"RemoteProtocolError", "ReadError", "ServerDisconnectedError", "ClientPayloadError"}
)
# Errors of the sending side: the request was never sent, whatever the provider's health.
_CLIENT_SIDE = (UnicodeEncodeError, NameError, ImportError, AssertionError, NotImplementedError)
_LOCAL = frozenset({"LocalProtocolError", "InvalidURL", "UnsupportedProtocol"})
_MISSING_KEY = re.compile(r"missing credentials|api_key client option must be set", re.I)


def _client_side(links: list[BaseException]) -> BaseException | None:
    """The error that kept the request from being sent, if that is what happened."""
    root = links[-1]
    if isinstance(root, _CLIENT_SIDE) or _names(root) & _LOCAL:
        return root
    # The OpenAI SDK wraps whatever stops a request on its way out as a connection error;
    # a plain Python error under it (no network error, no timeout) means it never left.
    plain = type(root).__module__ == "builtins" and not isinstance(root, OSError)
    if plain and any(_sdk_connection_error(link) for link in links[:-1]):
        return root
    return None


def _sdk_connection_error(link: BaseException) -> bool:
    # The SDK's own class only: litellm's subclass also wraps failures inside providers.
    return type(link).__name__ == "APIConnectionError" and type(link).__module__.startswith(
        "openai"
    )


# litellm 1.107+ raises this itself for a stream that ends cleanly without a finish reason;
# earlier releases end it with a made-up `stop`, which the client checks for.
_LITELLM_UNFINISHED = "Stream ended before a finish_reason was received"


def stream_unfinished(spec: ModelSpec) -> ModelError:
    """The error of a stream that ended cleanly without a finish reason, as llama.cpp's server
    ends one when another request waits: what came was part of an answer, never an answer."""
    return ModelError(
        f"model {spec.name!r} ({spec.model}): the stream ended without a finish reason "
        "(cut short by the server); the partial answer was discarded",
        model=spec.name,
        transient=True,
    )


def model_error(spec: ModelSpec, exc: BaseException) -> ModelError:
    """The ModelError for a litellm exception: status, provider message, and what can help.

    Raise it outside the `except` that caught `exc` (or `from None` is not enough: the
    context is kept), so litellm's exception, which holds the request, is not chained.
    """
    litellm = load_litellm()
    links = _chain(exc)
    where = f"model {spec.name!r} ({spec.model})"
    too_large = next((link for link in links if isinstance(link, ResponseTooLarge)), None)
    if too_large is not None:
        return ModelError(f"{where}: {too_large}", model=spec.name)
    if any(_LITELLM_UNFINISHED in str(link) for link in links):
        return stream_unfinished(spec)
    unreachable = _unreachable(links)
    if unreachable is not None:
        endpoint = _url(links) or (public_url(spec.api_base) if spec.api_base else "the API")
        reason, transient = unreachable
        return ModelError(
            scrub(f"{where}: cannot reach {endpoint}: {reason}", spec),
            model=spec.name,
            transient=transient,
        )
    root = links[-1]
    if type(root).__name__ == "OpenAIError" and _MISSING_KEY.search(str(root)):
        return ModelError(
            f"{where}: authentication failed: no API key; set the spec's api_key (or the "
            "provider's environment variable, e.g. OPENAI_API_KEY)",
            model=spec.name,
            status_code=401,
        )
    blocked = _client_side(links)
    if blocked is not None:
        detail = _first_lines(scrub(f"{type(blocked).__name__}: {blocked}", spec))
        return ModelError(
            f"{where}: the request could not be sent ({detail}); this is an error on the "
            "calling side, not the model's, and is not retried",
            model=spec.name,
        )
    status = cast(int | None, getattr(exc, "status_code", None))
    overflow = isinstance(exc, litellm.ContextWindowExceededError)
    # No status means the request never got an answer (connection refused or reset).
    transient = not overflow and (status is None or status in _RETRYABLE_STATUS or status >= 500)
    message = _first_lines(scrub(str(exc), spec))
    return ModelError(
        f"{where}: {_describe(status)}: {message}",
        model=spec.name,
        status_code=status,
        transient=transient,
        context_overflow=overflow,
        retry_after=_retry_after(exc),
    )
