"""Node durations learned during runs, to sharpen critical-path priorities.

A node's duration is predicted from its model's spec (time to first token, prefill and decode
speeds, for its prompt and a typical answer). Once nodes of an agent have finished, the ratio of
their observed wall time to that prediction corrects the predictions of the agent's other nodes:
an exponential average per (agent, model), and per agent over all models for nodes whose model
is not pinned. A ratio keeps what the prediction knows (longer prompts take longer) and learns
what it does not (this agent writes long answers; this provider is slow today). The Orchestra
keeps one `Durations`, so later runs start from what earlier runs saw.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from orchestra.agents import Agent
from orchestra.models.constellation import Constellation
from orchestra.models.tokens import TYPICAL_OUTPUT_TOKENS, estimate_tokens
from orchestra.plan import Task

__all__ = ["Durations", "predictor"]

# How much of each new observation moves the average.
_WEIGHT = 0.3


@dataclass
class Durations:
    """Estimated seconds per node: predicted, corrected by what finished nodes took.

    Example:
        >>> from orchestra.plan import Task
        >>> durations = Durations(predict=lambda task: 2.0)
        >>> task = Task(id="a", agent="writer", prompt="p")
        >>> durations.weight(task)
        2.0
        >>> durations.observe(task, "fast", 4.0)
        >>> durations.weight(task), durations.ratio("writer")
        (4.0, 2.0)
    """

    predict: Callable[[Task], float] = lambda _task: 1.0
    """The spec's prediction of a node's seconds."""
    _ratios: dict[tuple[str, str | None], float] = field(
        default_factory=dict[tuple[str, str | None], float]
    )
    # Predictions depend on the agent, the pin and the prompt's length only: computed once.
    _predicted: dict[tuple[str, str | None, int], float] = field(
        default_factory=dict[tuple[str, str | None, int], float]
    )

    def predicted(self, task: Task) -> float:
        """The spec's prediction of the node's seconds (cached)."""
        key = (task.agent, task.model, len(task.prompt))
        seconds = self._predicted.get(key)
        if seconds is None:
            seconds = self._predicted[key] = self.predict(task)
        return seconds

    def ratio(self, agent: str, model: str | None = None) -> float | None:
        """How much longer than predicted the agent's nodes (on `model`) took (None: none ran)."""
        return self._ratios.get((agent, model))

    def weight(self, task: Task) -> float:
        """The node's estimated seconds."""
        ratio = self._ratios.get((task.agent, task.model))
        if ratio is None:
            ratio = self._ratios.get((task.agent, None), 1.0)
        return self.predicted(task) * ratio

    def observe(self, task: Task, model: str | None, seconds: float) -> None:
        """Learn from a node that finished in `seconds` on `model`."""
        ratio = seconds / max(self.predicted(task), 1e-9)
        for key in {(task.agent, model), (task.agent, task.model), (task.agent, None)}:
            before = self._ratios.get(key)
            self._ratios[key] = ratio if before is None else before + _WEIGHT * (ratio - before)


def predictor(models: Constellation, agents: Mapping[str, Agent]) -> Callable[[Task], float]:
    """Predicted seconds of a task from the specs: the pinned model's latency for a typical
    answer, or the mean over the constellation when the router will choose."""

    def predict(task: Task) -> float:
        pinned = task.model or agents[task.agent].model
        specs = [models[pinned]] if pinned is not None else list(models)
        prompt_tokens = estimate_tokens(task.prompt)
        return statistics.fmean(
            s.predict_latency(prompt_tokens=prompt_tokens, output_tokens=TYPICAL_OUTPUT_TOKENS)
            for s in specs
        )

    return predict
