"""`python -m orchestra.testing.server`: the test server on its own, answering from a script file.

For trying the `orchestra` command (or any OpenAI client) against a real HTTP endpoint with no
key and no cost. The script file is JSON:

    {
      "default": "the answer to anything not scripted",
      "models": {
        "chief": ["{\"tasks\": [...]}  (the boss's plan, as JSON text)"],
        "worker": [{"error": 429, "retry_after": 1}, {"reply": "hello", "delay": 0.5}]
      }
    }

Each model (the name the server receives: `openai/worker` arrives as `worker`) answers its
steps in order, then `default`. A step is a string (the answer), `{"reply": text, "delay": s,
"input_tokens": n, "output_tokens": n}`, `{"error": status, "message": text, "retry_after":
s}` or `{"malformed": body}`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from orchestra.testing._server_steps import Error, Malformed, Reply, Step
from orchestra.testing.server import OpenAICompatibleServer

__all__ = ["load_script", "main", "step_of"]


def step_of(value: object) -> Step:
    """One step of a script file.

    Example:
        >>> step_of({"error": 429, "retry_after": 2})
        Error(status=429, message='', retry_after=2, delay=0.0)

    Raises:
        ValueError: the value is no step.
    """
    if isinstance(value, str):
        return Reply(value)
    if isinstance(value, dict):
        fields = cast("dict[str, Any]", value)
        try:
            if "reply" in fields:
                return Reply(**{"content": fields.pop("reply"), **fields})
            if "error" in fields:
                return Error(**{"status": fields.pop("error"), **fields})
            if "malformed" in fields and len(fields) == 1:
                return Malformed(body=str(fields["malformed"]))
        except TypeError as exc:
            raise ValueError(f"bad step {value!r}: {exc}") from None
    raise ValueError(
        f"bad step {value!r}: use a string, {{'reply': ...}}, {{'error': STATUS}} or "
        "{'malformed': BODY}"
    )


def load_script(path: str | Path) -> tuple[Step, dict[str, list[Step]]]:
    """The default step and the steps per model of a script file (see the module docstring).

    Raises:
        ValueError: the file is not such a script; the message says where.
    """
    data: Any = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not set(cast("dict[str, Any]", data)) <= {"default", "models"}:
        raise ValueError(f"{path}: expected an object with 'default' and/or 'models'")
    script = cast("dict[str, Any]", data)
    models: Any = script.get("models", {})
    if not isinstance(models, dict):
        raise ValueError(f"{path}: 'models' maps model names to lists of steps")
    steps: dict[str, list[Step]] = {}
    for model, listed in cast("dict[str, Any]", models).items():
        items = cast("list[object]", listed) if isinstance(listed, list) else [listed]
        try:
            steps[model] = [step_of(item) for item in items]
        except ValueError as exc:
            raise ValueError(f"{path}: models.{model}: {exc}") from None
    return step_of(script.get("default", "ok")), steps


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until Ctrl-C; the first line printed is the URL to use as `api_base`."""
    parser = argparse.ArgumentParser(
        prog="python -m orchestra.testing.server",
        description="A scripted OpenAI-compatible chat-completions server on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="the port (default: any free one)")
    parser.add_argument("--script", metavar="FILE", help="JSON answers per model (see docs)")
    parser.add_argument("--api-key", help="answer 401 to requests without this bearer key")
    args = parser.parse_args(argv)
    default: Step = Reply("ok")
    scripts: dict[str, list[Step]] = {}
    if args.script:
        try:
            default, scripts = load_script(args.script)
        except (OSError, ValueError) as exc:
            parser.error(str(exc))
    server = OpenAICompatibleServer(api_key=args.api_key, default=default, port=args.port)
    for model, steps in scripts.items():
        server.script(model, steps)
    with server:
        print(server.url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how it stops
            threading.Event().wait()
    return 0
