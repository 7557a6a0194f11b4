"""What orchestra puts around litellm when it first loads it: bounded bodies, redacted logs.

- **Bounded response bodies.** litellm scans an error's text with dozens of secret-matching
  regular expressions, several times, on the event loop: a 2 MB error body held the loop for
  about 8 s per attempt, so no timeout or deadline could fire. Every HTTP transport litellm
  builds is wrapped (`orchestra.models.transport`) so that a long error body reaches litellm
  cut to its first kilobyte, and an overlong successful body fails the call.
- **Redacted logs.** With DEBUG logging on, the OpenAI SDK and litellm log request options,
  header values and URLs. A filter on their loggers replaces every secret of the specs called
  so far (API keys, header values, URL credentials, secret-looking environment values) and
  any `user:password@` in a URL, before any handler sees the record.

Both are process-wide, as logging and litellm's transports are: they apply to litellm calls
made by the application itself too (its error bodies are cut the same way).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from orchestra._base import SECRET_NAME, USERINFO
from orchestra.models.spec import ModelSpec

__all__ = ["install", "remember"]

_MIN_SECRET_CHARS = 4
# Loggers that see requests: litellm's, the OpenAI SDK's and the HTTP clients'.
_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "openai", "httpx", "httpcore", "aiohttp")


class _Redactor(logging.Filter):
    """Replaces known secrets and URL credentials in log records, message and traceback."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def clean(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, "***")
        return USERINFO.sub("***@", text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot format is the handler's to report
            return True
        clean = self.clean(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.clean(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = self.clean(record.exc_text)
        return True


_REDACTOR = _Redactor()


def remember(spec: ModelSpec) -> None:
    """Add a spec's secrets to those the log filter replaces (called before each call)."""
    _REDACTOR.secrets.update(s for s in spec.secrets() if len(s) >= _MIN_SECRET_CHARS)


def install(litellm: Any) -> None:
    """Bound litellm's HTTP responses and redact the request loggers (once per process)."""
    # httpx comes with litellm, not with `import orchestra`.
    from orchestra.models.transport import bound_transports

    del litellm  # loaded by the caller; the seams live in its submodules
    bound_transports()
    _REDACTOR.secrets.update(
        value
        for name, value in os.environ.items()
        if SECRET_NAME.search(name) and len(value) >= _MIN_SECRET_CHARS
    )
    names: set[str] = set(_LOGGERS)
    names.update(
        name
        for name in logging.root.manager.loggerDict
        if name.startswith(tuple(f"{prefix}." for prefix in _LOGGERS))
    )
    for name in sorted(names):
        logger = logging.getLogger(name)
        if _REDACTOR not in logger.filters:
            logger.addFilter(_REDACTOR)
