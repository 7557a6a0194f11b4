"""OpenTelemetry: a sink that turns a run's events into spans (extra `orchestra-dag[otel]`).

Spans follow the OpenTelemetry GenAI semantic conventions:

- `invoke_workflow` — the run (`gen_ai.operation.name = invoke_workflow`);
- `plan` — the boss's planning, child of the run, when the boss planned it;
- `invoke_agent {agent}` — one node of the plan, child of the run;
- `chat {model}` — one model call (kind CLIENT), child of its node or of `plan`, with
  `gen_ai.request.model`, `gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens` and, when it
  failed, `error.type`.

Spans are built from events after the fact, so each gets explicit start and end times from the
events' `at` (a call's start is its `at` minus its `seconds`). Retries, fallbacks, hedges and
other decisions become span events on their node (or on the run). The run's span is a child of
whatever span is current where the run is started.

No exporter is configured here: spans go to the tracer provider you pass, or to the global
one (a no-op until your application sets one up). Prompt and output content is recorded only
with `capture_content=True` (today: the run's task, as `gen_ai.input.messages`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, cast, final

from orchestra._clock import utc_now
from orchestra.events import (
    Event,
    ModelCalled,
    NodeFinished,
    NodeRouted,
    NodeStarted,
    PlanReady,
    PlanRejected,
    RunFinished,
    RunStarted,
)
from orchestra.observe.tracker import BOSS_TASK

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider
    from opentelemetry.util.types import AttributeValue

__all__ = ["OpenTelemetrySink"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _ns(at: datetime) -> int:
    """A timestamp in nanoseconds since the epoch, as OpenTelemetry takes it."""
    return (at - _EPOCH) // timedelta(microseconds=1) * 1000


def _attribute(value: Any) -> AttributeValue | None:
    """An event field as a span attribute value (None: leave it out)."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, tuple | list):
        items = cast("Sequence[object]", value)
        if all(isinstance(item, str) for item in items):
            return [str(item) for item in items]
    return json.dumps(value, default=str)


def _load() -> Any:
    try:
        from opentelemetry import trace
    except ImportError as exc:  # pragma: no cover - depends on what is installed
        raise ImportError(
            "OpenTelemetrySink needs OpenTelemetry: pip install 'orchestra-dag[otel]'"
        ) from exc
    return trace


@dataclass
class _RunSpans:
    run: Span
    started: datetime
    plan: Span | None = None
    nodes: dict[str, Span] = field(default_factory=dict[str, "Span"])


@final
class OpenTelemetrySink:
    """An event sink that records runs as OpenTelemetry spans (see the module docstring).

    Example:
        >>> from opentelemetry.sdk.trace import TracerProvider
        >>> from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        >>> from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        ...     InMemorySpanExporter)
        >>> exporter = InMemorySpanExporter()
        >>> provider = TracerProvider()
        >>> provider.add_span_processor(SimpleSpanProcessor(exporter))
        >>> sink = OpenTelemetrySink(tracer_provider=provider)
        >>> # oc.Orchestra(..., on_event=sink); then exporter.get_finished_spans()

    Args:
        tracer_provider: where spans go (default: OpenTelemetry's global provider).
        capture_content: also record prompt and output content (off by default).

    Raises:
        ImportError: OpenTelemetry is not installed (`pip install 'orchestra-dag[otel]'`).
    """

    def __init__(
        self, tracer_provider: TracerProvider | None = None, *, capture_content: bool = False
    ) -> None:
        self._trace = _load()
        from orchestra import __version__

        self._tracer: Tracer = self._trace.get_tracer(
            "orchestra", __version__, tracer_provider=tracer_provider
        )
        self.capture_content = capture_content
        self._runs: dict[str, _RunSpans] = {}

    def __call__(self, event: Event) -> None:
        """Take one event (the sink's entry point)."""
        if isinstance(event, RunStarted):
            self._start_run(event)
            return
        spans = self._runs.get(event.run_id)
        if spans is None:
            return  # a run that started before this sink subscribed
        match event:
            case PlanRejected():
                attributes: dict[str, AttributeValue] = {"orchestra.plan.attempt": event.attempt}
                if self.capture_content:
                    attributes["orchestra.plan.problems"] = list(event.problems)
                self._plan(spans).add_event(event.kind, attributes, timestamp=_ns(event.at))
            case PlanReady():
                if spans.plan is not None:
                    spans.plan.set_attribute("orchestra.plan.tasks", len(event.task_ids))
                    spans.plan.end(end_time=_ns(event.at))
                    spans.plan = None
                else:
                    spans.run.add_event(event.kind, timestamp=_ns(event.at))
                spans.run.set_attribute("orchestra.plan.tasks", len(event.task_ids))
            case NodeStarted():
                spans.nodes[event.task_id] = self._tracer.start_span(
                    f"invoke_agent {event.agent}",
                    context=self._trace.set_span_in_context(spans.run),
                    attributes={
                        "gen_ai.operation.name": "invoke_agent",
                        "gen_ai.agent.name": event.agent,
                        "orchestra.run_id": event.run_id,
                        "orchestra.task_id": event.task_id,
                    },
                    start_time=_ns(event.at),
                )
            case NodeRouted():
                node = spans.nodes.get(event.task_id)
                if node is not None:
                    node.set_attribute("orchestra.route.model", event.model)
                    node.set_attribute("orchestra.route.reason", event.reason)
            case ModelCalled():
                self._call(spans, event)
            case NodeFinished():
                self._finish_node(spans, event)
            case RunFinished():
                self._finish_run(spans, event)
            case _:
                task_id: object = getattr(event, "task_id", None)
                target = spans.nodes.get(task_id) if isinstance(task_id, str) else None
                if task_id == BOSS_TASK:
                    target = self._plan(spans)
                fields = event.model_dump(exclude={"run_id", "at", "kind"})
                values = {f"orchestra.{k}": _attribute(v) for k, v in fields.items()}
                attributes = {k: v for k, v in values.items() if v is not None}
                (target or spans.run).add_event(event.kind, attributes, timestamp=_ns(event.at))

    def close(self) -> None:
        """End the spans of runs that never finished (a run whose boss failed to plan)."""
        for run_id in list(self._runs):
            spans = self._runs.pop(run_id)
            now = _ns(utc_now())
            for span in [*spans.nodes.values(), *([spans.plan] if spans.plan else [])]:
                span.end(end_time=now)
            spans.run.set_status(self._status(error=True, description="the run did not finish"))
            spans.run.end(end_time=now)

    # -- helpers -----------------------------------------------------------------------------

    def _status(self, *, error: bool, description: str | None = None) -> Any:
        from opentelemetry.trace import Status, StatusCode

        if not error:
            return Status(StatusCode.UNSET)
        return Status(StatusCode.ERROR, description)

    def _start_run(self, event: RunStarted) -> None:
        attributes: dict[str, AttributeValue] = {
            "gen_ai.operation.name": "invoke_workflow",
            "orchestra.run_id": event.run_id,
        }
        if self.capture_content and event.task is not None:
            message = [{"role": "user", "parts": [{"type": "text", "content": event.task}]}]
            attributes["gen_ai.input.messages"] = json.dumps(message)
        span = self._tracer.start_span(
            "invoke_workflow", attributes=attributes, start_time=_ns(event.at)
        )
        self._runs[event.run_id] = _RunSpans(run=span, started=event.at)

    def _plan(self, spans: _RunSpans) -> Span:
        if spans.plan is None:
            spans.plan = self._tracer.start_span(
                "plan",
                context=self._trace.set_span_in_context(spans.run),
                attributes={"gen_ai.operation.name": "plan", "gen_ai.agent.name": "boss"},
                start_time=_ns(spans.started),
            )
        return spans.plan

    def _call(self, spans: _RunSpans, event: ModelCalled) -> None:
        parent = self._plan(spans) if event.task_id == BOSS_TASK else spans.nodes.get(event.task_id)
        started = max(event.at - timedelta(seconds=event.seconds), spans.started)
        attributes: dict[str, AttributeValue] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": event.model,
            "gen_ai.usage.input_tokens": event.input_tokens,
            "gen_ai.usage.output_tokens": event.output_tokens,
            "orchestra.task_id": event.task_id,
            "orchestra.route.reason": event.reason,
            "orchestra.cost_usd": event.cost_usd,
        }
        if event.error is not None:
            attributes["error.type"] = event.error_type or "_OTHER"
        span = self._tracer.start_span(
            f"chat {event.model}",
            context=self._trace.set_span_in_context(parent or spans.run),
            kind=self._trace.SpanKind.CLIENT,
            attributes=attributes,
            start_time=_ns(started),
        )
        if event.error is not None:
            span.set_status(self._status(error=True, description=event.error))
        span.end(end_time=_ns(event.at))

    def _finish_node(self, spans: _RunSpans, event: NodeFinished) -> None:
        span = spans.nodes.pop(event.task_id, None)
        if span is None:
            return
        if event.model is not None:
            span.set_attribute("orchestra.model", event.model)
        span.set_attribute("orchestra.cost_usd", event.cost_usd)
        if event.error is not None:
            span.set_attribute("error.type", "NodeFailed")
            span.set_status(self._status(error=True, description=event.error))
        span.end(end_time=_ns(event.at))

    def _finish_run(self, spans: _RunSpans, event: RunFinished) -> None:
        end = _ns(event.at)
        for span in spans.nodes.values():  # cancelled at a deadline: they never finished
            span.set_attribute("orchestra.status", "not_finished")
            span.end(end_time=end)
        if spans.plan is not None:
            spans.plan.end(end_time=end)
        run = spans.run
        run.set_attribute("orchestra.status", event.status)
        run.set_attribute("orchestra.cost_usd", event.cost_usd)
        if event.status != "succeeded":
            run.set_attribute("error.type", event.status)
            run.set_status(self._status(error=True, description=f"run {event.status}"))
        run.end(end_time=end)
        del self._runs[event.run_id]
