"""litellm, imported once and only when needed: the only module that imports it.

`import orchestra` stays fast and never touches litellm (seconds to import); an Orchestra starts
the import in a background thread when it is built (`warm_litellm`) and a run waits for it
(`litellm_ready`) before its clock starts, so neither the caller nor the first call pays for it.
Fakes and CLI commands that call no model never load it.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import os
import re
import threading
from collections.abc import Callable
from typing import Any, get_args

import anyio
from pydantic import BaseModel

from orchestra._base import Frozen
from orchestra.events import EVENTS, Event
from orchestra.models import guard
from orchestra.results import Attempt, NodeResult, RunResult, Usage

__all__ = [
    "flush_litellm_logs",
    "litellm_ready",
    "load_litellm",
    "prices_per_request",
    "warm_litellm",
    "when_litellm_loaded",
]

# litellm ships no usable type information for its module attributes: treat it as Any.
_litellm: Any = None
# One thread imports litellm (seconds) while the others wait; callbacks registered meanwhile run
# once it is imported, before anyone can use it. Both locks are re-entrant: a callback may call
# `load_litellm` or `when_litellm_loaded` itself.
_importing = threading.RLock()
_callbacks = threading.RLock()
_when_loaded: list[Callable[[Any], None]] = []
_starting = threading.Lock()
_warming = False


def load_litellm() -> Any:
    """Import litellm once (from any thread), with its network look-ups at import switched
    off and orchestra's guards installed (secrets scrubbed from its request loggers, bounded
    response bodies), and run the `when_litellm_loaded` callbacks."""
    global _litellm
    if _litellm is not None:
        return _litellm
    with _importing:
        if _litellm is None:
            # Without this litellm fetches its cost map over the network at import; orchestra
            # prices calls from the specs, so the bundled map is all it needs.
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            import litellm

            litellm.suppress_debug_info = True
            guard.install(litellm)
            _prime(litellm)
            with _callbacks:
                while _when_loaded:
                    _when_loaded.pop(0)(litellm)
                _litellm = litellm
    return _litellm


# What litellm (and the retry loop) import on their first call rather than at import: each
# first call would pay for it (seconds under load) inside a node's time. Missing ones (another
# litellm version) just stay lazy.
_FIRST_CALL_MODULES = (
    "litellm.proxy.openai_files_endpoints.common_utils",  # every call's message handling
    "litellm.litellm_core_utils.default_encoding",  # the default tokenizer
    "tenacity",
)


def _build_validators() -> None:
    """Build the validators of orchestra's pydantic models, deferred at import (which they
    would slow down); each step of a run uses them, and the first run would pay for it."""
    union = get_args(get_args(Event)[0])
    pending: list[type[BaseModel]] = [*Frozen.__subclasses__(), *union]
    pending += [Usage, Attempt, NodeResult, RunResult]
    while pending:
        model = pending.pop()
        model.model_rebuild()
        pending.extend(model.__subclasses__())
    EVENTS.rebuild()


def _prime(litellm: Any) -> None:
    """Do now what litellm (and orchestra's models) leave to the first call: no call pays for
    it then."""
    _build_validators()
    for name in _FIRST_CALL_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            continue
    try:  # builds litellm's map of every provider's config (no request, no callback)
        litellm.get_supported_openai_params(
            model="llama-3.1-8b-instant", custom_llm_provider="groq"
        )
    except Exception:  # a litellm version that no longer has it: the first call builds it
        return


def when_litellm_loaded(callback: Callable[[Any], None]) -> None:
    """Call `callback(litellm)` once litellm is imported: now, if it already is."""
    with _callbacks:
        if _litellm is None:
            _when_loaded.append(callback)
            return
    callback(_litellm)


def _warm() -> None:
    try:
        load_litellm()
    except Exception:  # the first call imports it again, and raises where it is seen
        return


def warm_litellm() -> None:
    """Start importing litellm in a background thread (once), so the first call finds it."""
    global _warming
    with _starting:
        if _litellm is not None or _warming:
            return
        _warming = True
    threading.Thread(target=_warm, name="orchestra-litellm-import", daemon=True).start()


# How long a sync call waits for litellm's callbacks after its own work is done.
_LOG_FLUSH_SECONDS = 5.0


async def flush_litellm_logs() -> None:
    """Wait, up to five seconds, until litellm's callbacks have heard every call made so
    far (litellm hands their success logs to a worker on the event loop, after the call
    returns). The sync bridge runs each call on an event loop of its own that ends with it:
    without this, a callback the user registered with litellm would never hear those calls.
    Nothing to wait for when litellm was never imported, or has no such worker."""
    if _litellm is None:
        return
    try:
        worker = importlib.import_module("litellm.litellm_core_utils.logging_worker")
    except ImportError:
        return
    flush = getattr(getattr(worker, "GLOBAL_LOGGING_WORKER", None), "flush", None)
    if flush is None:
        return
    with anyio.move_on_after(_LOG_FLUSH_SECONDS):
        await flush()


async def litellm_ready() -> Any:
    """litellm, waiting for its import in a worker thread (the event loop keeps running)."""
    if _litellm is not None:
        return _litellm
    return await anyio.to_thread.run_sync(load_litellm, abandon_on_cancel=True)


@functools.cache
def prices_per_request() -> bool:
    """Whether this litellm takes prices given with a request (`input_cost_per_token`...)
    for that request only. From 1.110 it does, and prices the answer with them instead of
    searching its price list for the model (about a millisecond per call for a model the list
    does not know); before, it also registered them for every later call of the model in the
    process (`litellm.register_model`), a side effect orchestra does not impose."""
    try:
        found = re.match(r"(\d+)\.(\d+)", importlib.metadata.version("litellm"))
    except importlib.metadata.PackageNotFoundError:
        return False
    return found is not None and (int(found[1]), int(found[2])) >= (1, 110)
