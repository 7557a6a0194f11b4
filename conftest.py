"""Every Python block of README.md and docs/*.md runs as a test (Sybil), in order, one namespace
and one fresh working directory per document; top-level `await` works, as in a notebook. Every
TOML and JSON block must parse.

Directives, in HTML comments (invisible on the rendered page):
- `<!-- invisible-code-block: python ... -->`: set-up or checks the reader does not need to see.
- `<!-- skip: next "why" -->`: a block that cannot run here (Sybil's own directive).
- `<!-- docs-test: pytest -->`: the next block is a test module; it is written to the working
  directory and must pass under `python -m pytest`, with orchestra's plugin as a user has it.
- `<!-- docs-test: file NAME -->`: the next block (any language) is also written to NAME in
  the working directory, for the blocks after it to read.
- `<!-- docs-test: providers KEY... URL... -->`: from here on the document's blocks call real
  providers and need those API keys (and servers at those URLs). The test points every
  provider, and each of those URLs, at a local `OpenAICompatibleServer` whose boss plans one
  task per agent (ids = agent names, in the order the agents are listed, each after the last).
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import anyio
import pytest
from sybil import Document, Example, Region, Sybil
from sybil.integration.pytest import SybilItem
from sybil.parsers.markdown import CodeBlockParser, SkipParser
from sybil.parsers.markdown.lexers import DirectiveInHTMLCommentLexer

from orchestra.testing.server import OpenAICompatibleServer, RecordedRequest, Reply

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

# Per-document state kept in the document's namespace, under names no block uses.
_STATE = "__docs_test__"
# The providers litellm reaches through an `api_base` environment variable.
_PROVIDER_BASES = ("OPENAI_API_BASE", "GROQ_API_BASE", "CEREBRAS_API_BASE", "TOGETHERAI_API_BASE")


class _StandIn:
    """A local OpenAI-compatible server standing in for every real provider of a document."""

    def __init__(self, keys: list[str], urls: list[str]) -> None:
        self.server = OpenAICompatibleServer(default=self._answer)
        self.server.start()
        self.urls = urls
        self.patch = pytest.MonkeyPatch()
        for name in [*keys, "OPENAI_API_KEY"]:
            self.patch.setenv(name, "stand-in-key")
        for name in _PROVIDER_BASES:
            self.patch.setenv(name, self.server.url)

    def redirect(self, source: str) -> str:
        for url in self.urls:
            source = source.replace(url, self.server.url)
        return source

    @staticmethod
    def _answer(request: RecordedRequest) -> Reply:
        system = str(request.messages[0].get("content", "")) if request.messages else ""
        if not system.startswith("You are the planner"):
            return Reply(f"stand-in answer from {request.model}")
        listed = system.split("\nAgents:\n", 1)[1].split("\nModels", 1)[0]
        agents = [line[2:].split(":", 1)[0] for line in listed.splitlines()]
        tasks = [
            {"id": agent, "agent": agent, "prompt": request.last_user_message}
            | ({"after": [agents[i - 1]]} if i else {})
            for i, agent in enumerate(agents)
        ]
        return Reply(json.dumps({"tasks": tasks}))

    def close(self) -> None:
        self.patch.undo()
        self.server.stop()


class _DocumentState:
    """What one document's directives set up: its working directory, a stand-in, the next
    block's treatment."""

    def __init__(self) -> None:
        self.previous = Path.cwd()
        self.folder = Path(tempfile.mkdtemp(prefix="orchestra-docs-"))
        os.chdir(self.folder)
        self.stand_in: _StandIn | None = None
        self.as_test_module = False
        self.write_to: str | None = None

    def close(self) -> None:
        os.chdir(self.previous)
        if self.stand_in is not None:
            self.stand_in.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def _state(example: Example) -> _DocumentState:
    state: _DocumentState = example.namespace[_STATE]
    return state


async def _wait(pending: Any) -> None:
    await pending


def _take_source(example: Example) -> str:
    """The block's source, redirected to the stand-in, and written to a file if asked."""
    state = _state(example)
    source = str(example.parsed)
    if state.stand_in is not None:
        source = state.stand_in.redirect(source)
    if state.write_to is not None:
        Path(state.write_to).write_text(source, encoding="utf-8")
        state.write_to = None
    return source


def _evaluate_python(example: Example) -> None:
    """Run one Python block in its document's namespace (top-level `await` allowed)."""
    source = _take_source(example)
    state = _state(example)
    if state.as_test_module:
        state.as_test_module = False
        _run_as_test_module(example, source)
        return
    padded = "\n" * (example.line + example.parsed.line_offset) + source
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    code = compile(padded, example.path, "exec", flags=flags, dont_inherit=True)
    outcome = eval(code, example.namespace)  # exec, but returns the coroutine of an `await`
    if inspect.iscoroutine(outcome):
        anyio.run(_wait, outcome, backend="asyncio")
    example.namespace.pop("__builtins__", None)


def _evaluate_toml(example: Example) -> None:
    """A TOML block must parse."""
    tomllib.loads(_take_source(example))


def _evaluate_json(example: Example) -> None:
    """A JSON block must parse."""
    json.loads(_take_source(example))


def _run_as_test_module(example: Example, source: str) -> None:
    module = Path(f"test_docs_line_{example.line}.py")
    module.write_text(source, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(module)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, (
        f"{example.path}:{example.line}: the test module failed\n" + (done.stdout[-4000:])
    )


def _directive(example: Example) -> None:
    kind, *rest = example.parsed
    state = _state(example)
    if kind == "pytest":
        state.as_test_module = True
    elif kind == "file" and len(rest) == 1:
        state.write_to = rest[0]
    elif kind == "providers" and state.stand_in is None:
        keys = [word for word in rest if "://" not in word]
        urls = [word for word in rest if "://" in word]
        state.stand_in = _StandIn(keys, urls)
    else:
        raise ValueError(
            f"bad docs-test directive {' '.join(example.parsed)!r}: use `pytest`, `file NAME` "
            "or `providers KEY... URL...` (once per document)"
        )


def _directives(document: Document) -> Iterable[Region]:
    for lexed in DirectiveInHTMLCommentLexer("docs-test", arguments=".+?")(document):
        words = str(lexed.lexemes["arguments"]).split()
        yield Region(lexed.start, lexed.end, words, _directive)


def _setup(namespace: dict[str, Any]) -> None:
    namespace[_STATE] = _DocumentState()


def _teardown(namespace: dict[str, Any]) -> None:
    state: _DocumentState | None = namespace.pop(_STATE, None)
    if state is not None:
        state.close()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Docs blocks run models and whole programs: they count as slow tests."""
    for item in items:
        if isinstance(item, SybilItem):
            item.add_marker(pytest.mark.slow)


pytest_collect_file = Sybil(
    parsers=[
        CodeBlockParser(language="python", evaluator=_evaluate_python),
        CodeBlockParser(language="toml", evaluator=_evaluate_toml),
        CodeBlockParser(language="json", evaluator=_evaluate_json),
        SkipParser(),
        _directives,
    ],
    patterns=["README.md", "docs/*.md"],
    setup=_setup,
    teardown=_teardown,
).pytest()
