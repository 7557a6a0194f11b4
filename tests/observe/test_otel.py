"""OpenTelemetry spans from events: GenAI names, parents, times and attributes (in-memory)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import orchestra as oc
from orchestra.events import Event, NodeStarted, RunStarted
from orchestra.observe.otel import OpenTelemetrySink
from orchestra.testing import FakeModel


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    """Where the spans of a test go."""
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    """A tracer provider exporting to memory, synchronously."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _ns(when: datetime) -> int:
    return round(when.timestamp() * 1_000_000) * 1000


def _task(span: ReadableSpan) -> object:
    return (span.attributes or {}).get("orchestra.task_id")


def _one(spans: list[ReadableSpan], name: str, task: str | None = None) -> ReadableSpan:
    found = [s for s in spans if s.name == name and (task is None or _task(s) == task)]
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


def _parent(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def test_spans_of_a_scripted_run(
    scripted: list[Event],
    at: Callable[[float], datetime],
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
) -> None:
    """Run, plan, agents and chats nest correctly, with the events' times and GenAI attributes."""
    sink = OpenTelemetrySink(tracer_provider=provider)
    for event in scripted:
        sink(event)
    spans = list(exporter.get_finished_spans())
    assert sorted(s.name for s in spans) == [
        "chat boss", "chat fast", "chat fast", "chat fast", "chat mid",
        "invoke_agent researcher", "invoke_agent researcher", "invoke_agent writer",
        "invoke_workflow", "plan",
    ]  # fmt: skip
    run = _one(spans, "invoke_workflow")
    plan = _one(spans, "plan")
    boss = _one(spans, "chat boss")
    prices = _one(spans, "invoke_agent researcher", "prices")
    memo = _one(spans, "invoke_agent writer", "memo")
    calls = [s for s in spans if s.name == "chat fast" and _task(s) == "prices"]
    failed, retried = sorted(calls, key=lambda s: s.start_time or 0)
    assert run.parent is None and {s.context.trace_id for s in spans} == {run.context.trace_id}
    assert _parent(plan) == run.context.span_id and _parent(boss) == plan.context.span_id
    assert _parent(prices) == run.context.span_id and _parent(memo) == run.context.span_id
    assert _parent(failed) == prices.context.span_id == _parent(retried)
    assert (run.start_time, run.end_time) == (_ns(at(0)), _ns(at(3)))
    assert (plan.start_time, plan.end_time) == (_ns(at(0)), _ns(at(1)))
    assert (prices.start_time, prices.end_time) == (_ns(at(1)), _ns(at(2)))
    assert (retried.start_time, retried.end_time) == (_ns(at(1.6)), _ns(at(2)))
    assert run.attributes == {
        "gen_ai.operation.name": "invoke_workflow",
        "orchestra.run_id": "r1",
        "orchestra.plan.tasks": 3,
        "orchestra.status": "succeeded",
        "orchestra.cost_usd": 0.003605,
    }
    assert prices.attributes is not None and prices.attributes["gen_ai.agent.name"] == "researcher"
    assert prices.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert prices.attributes["orchestra.route.reason"] == "cheapest with quality >= 0.5"
    assert retried.kind == SpanKind.CLIENT and retried.attributes is not None
    assert retried.attributes["gen_ai.operation.name"] == "chat"
    assert retried.attributes["gen_ai.request.model"] == "fast"
    assert retried.attributes["gen_ai.usage.input_tokens"] == 100
    assert retried.attributes["gen_ai.usage.output_tokens"] == 80
    assert "error.type" not in retried.attributes and retried.status.status_code == StatusCode.UNSET
    assert failed.attributes is not None and failed.attributes["error.type"] == "429"
    assert failed.status.status_code == StatusCode.ERROR
    assert [(e.name, dict(e.attributes or {})) for e in prices.events] == [
        ("retry_scheduled", {
            "orchestra.task_id": "prices", "orchestra.model": "fast", "orchestra.attempt": 1,
            "orchestra.wait": 0.5, "orchestra.error": "rate limited",
        })
    ]  # fmt: skip
    assert "gen_ai.input.messages" not in run.attributes


def test_content_only_when_opted_in(
    scripted: list[Event], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """With capture_content the run's task is recorded as the workflow's input message."""
    sink = OpenTelemetrySink(tracer_provider=provider, capture_content=True)
    for event in scripted:
        sink(event)
    run = _one(list(exporter.get_finished_spans()), "invoke_workflow")
    assert run.attributes is not None
    messages = json.loads(str(run.attributes["gen_ai.input.messages"]))
    assert messages == [{"role": "user", "parts": [{"type": "text", "content": "Compare GPUs"}]}]


def test_spans_of_a_real_failing_run(
    fake: FakeModel, team: list[oc.Agent], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """A run whose node fails: the node and run spans carry error.type and an error status."""
    bad = FakeModel(fail_first=100, fail_status=401)
    models = [oc.ModelSpec(name="bad", model=bad.model("bad"))]
    orch = oc.Orchestra(models=models, on_event=OpenTelemetrySink(tracer_provider=provider))
    plan = oc.Plan(tasks=[oc.Task(id="only", agent="assistant", prompt="hi")])
    with pytest.raises(oc.NodeFailed):
        orch.execute_sync(plan)
    spans = list(exporter.get_finished_spans())
    assert sorted(s.name for s in spans) == [
        "chat bad",
        "invoke_agent assistant",
        "invoke_workflow",
    ]
    node, run = _one(spans, "invoke_agent assistant"), _one(spans, "invoke_workflow")
    assert node.attributes is not None and node.attributes["error.type"] == "NodeFailed"
    assert run.attributes is not None and run.attributes["error.type"] == "failed"
    assert node.status.status_code == run.status.status_code == StatusCode.ERROR
    assert all((s.start_time or 0) <= (s.end_time or -1) for s in spans)
    bad.close()


def test_close_ends_runs_that_never_finished(
    provider: TracerProvider, exporter: InMemorySpanExporter, at: Callable[[float], datetime]
) -> None:
    """A run that raised before finishing (say, its boss failed) is ended, as an error, by close."""
    sink = OpenTelemetrySink(tracer_provider=provider)
    sink(RunStarted(run_id="x", at=at(0), task="t"))
    sink(NodeStarted(run_id="x", at=at(1), task_id="a", agent="w"))
    sink(NodeStarted(run_id="other", at=at(1), task_id="a", agent="w"))  # unknown run: ignored
    assert exporter.get_finished_spans() == ()
    sink.close()
    spans = exporter.get_finished_spans()
    assert sorted(s.name for s in spans) == ["invoke_agent w", "invoke_workflow"]
    assert _one(list(spans), "invoke_workflow").status.status_code == StatusCode.ERROR


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without OpenTelemetry installed, the error says which extra to install."""
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(ImportError, match=r"pip install 'orchestra-dag\[otel\]'"):
        OpenTelemetrySink()


def test_a_real_node_span_carries_its_route(
    fake: FakeModel, team: list[oc.Agent], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """node_routed is emitted when a node is placed, so its span has the model and the reason."""
    from orchestra.testing import fake_constellation

    orch = oc.Orchestra(
        models=fake_constellation(fake),
        agents=team,
        on_event=OpenTelemetrySink(tracer_provider=provider),
    )
    plan = oc.Plan(tasks=[oc.Task(id="only", agent="researcher", prompt="hi")])
    result = orch.execute_sync(plan)
    node = _one(list(exporter.get_finished_spans()), "invoke_agent researcher")
    assert node.attributes is not None
    assert node.attributes["orchestra.route.model"] == result.nodes["only"].model
    assert node.attributes["orchestra.route.reason"] == result.nodes["only"].route
