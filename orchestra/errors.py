"""The exception hierarchy: every error orchestra raises is an `OrchestraError`.

Errors teach and carry data: the message says what is wrong and the likely fix, and the
attributes hold what a program needs to react (the task id, the partial result, every attempt).
Exceptions never log or print.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orchestra.results import Attempt, RunResult

__all__ = [
    "BudgetExceeded",
    "ConfigError",
    "JournalError",
    "ModelError",
    "NodeFailed",
    "OrchestraError",
    "PlanError",
]


def _rebuilt(
    kind: type[OrchestraError], args: tuple[object, ...], state: dict[str, object]
) -> OrchestraError:
    error = kind.__new__(kind)
    error.args = args
    error.__dict__.update(state)
    return error


class OrchestraError(Exception):
    """Base class of every error raised by orchestra.

    Errors pickle with their data (`task_id`, `attempts`, `result`...), so they cross
    processes: a node run on a Ray actor reports its error to the driver as it is.
    """

    def __reduce__(self) -> tuple[object, ...]:
        # Exception's own pickling calls cls(*args), which keyword-only fields break.
        return (_rebuilt, (type(self), self.args, self.__dict__))


class ConfigError(OrchestraError, ValueError):
    """A model spec, constellation, agent, budget or config file is invalid.

    Example:
        >>> import orchestra as oc
        >>> oc.Constellation([oc.ModelSpec(name="a", model="x/y", fallbacks=["b"])])
        Traceback (most recent call last):
        ...
        orchestra.errors.ConfigError: model 'a' falls back to unknown model 'b'; ...
    """


class PlanError(OrchestraError, ValueError):
    """A plan cannot run: cycle, unknown dependency or agent, duplicate id, unresolved placeholder.

    Raised before any model call. `task_id` names the offending task (None for plan-wide
    problems); `problems` lists every problem found when there is more than one; `attempts`
    holds the boss's raw answers when a planned run could not produce a valid plan.
    """

    def __init__(
        self,
        message: str,
        *,
        task_id: str | None = None,
        problems: tuple[PlanError, ...] = (),
        attempts: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.problems = problems or (self,)
        self.attempts = attempts


class BudgetExceeded(OrchestraError):
    """The run hit `Budget.max_usd`, `max_tokens` or `max_seconds` and stopped dispatching.

    `result` is the partial `RunResult` holding every node that finished; `limit` names the
    budget field that was hit.
    """

    def __init__(self, message: str, *, limit: str, result: RunResult) -> None:
        super().__init__(message)
        self.limit = limit
        self.result = result


class ModelError(OrchestraError):
    """A model call failed (raised once retries and fallbacks are spent).

    `model` is the spec name, `status_code` the HTTP-like status (None when unknown),
    `attempts` every attempt made, in order, over every model tried. `transient` says whether
    trying again could help (rate limits, 5xx, timeouts, broken or empty answers);
    `context_overflow` marks a prompt too long for the model (a larger model can help);
    `retry_after` is the wait the provider asked for, in seconds. API keys never appear in the
    message.
    """

    def __init__(
        self,
        message: str,
        *,
        model: str,
        status_code: int | None = None,
        attempts: tuple[Attempt, ...] = (),
        transient: bool = False,
        context_overflow: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.model = model
        self.status_code = status_code
        self.attempts = attempts
        self.transient = transient
        self.context_overflow = context_overflow
        self.retry_after = retry_after


class NodeFailed(OrchestraError):
    """A node of the plan failed; the run stopped after in-flight work settled.

    `task_id` names the failed task, `result` is the partial `RunResult` with every node that
    finished (and the failed one, with its `error`), and `__cause__` is the underlying error.
    """

    def __init__(self, message: str, *, task_id: str, result: RunResult) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.result = result


class JournalError(OrchestraError):
    """The run journal cannot be used: it cannot be written or read, holds no such run, was
    written by a newer orchestra, or the run is being resumed by another process.

    A run whose journal stops accepting writes stops before its next model call; `result` is
    then the partial `RunResult` (None when the run stopped before it began). `run_id` names
    the run concerned and `path` the journal file, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        run_id: str | None = None,
        path: str | None = None,
        result: RunResult | None = None,
    ) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.path = path
        self.result = result
