"""OpenTelemetry: a run traced as spans, following the GenAI semantic conventions.

`OpenTelemetrySink` is an event sink: pass it as `on_event` and each run becomes a trace — the
run (`invoke_workflow`), the boss's planning (`plan`), one `invoke_agent` span per node and one
`chat` span per model call, with the model, tokens and errors as attributes. Spans go to the
tracer provider you give (here one exporting to memory, to print them) or to your
application's global one. Needs the `otel` extra (`pip install 'orchestra-dag[otel]'`).
Offline, on the simulated constellation:

    python examples/22_opentelemetry.py
"""

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import orchestra as oc
from orchestra.observe.otel import OpenTelemetrySink


def main() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    orch = oc.simulated.orchestra(time_scale=0.0, on_event=OpenTelemetrySink(provider))
    orch.run_sync("Compare the unit economics of small and large models")
    spans = exporter.get_finished_spans()
    children: dict[int | None, list[str]] = {}
    for span in spans:
        parent = span.parent.span_id if span.parent is not None else None
        model = span.attributes.get("gen_ai.request.model") if span.attributes else None
        children.setdefault(parent, []).append(span.name + (f" ({model})" if model else ""))
    ids = {span.context.span_id: span.name for span in spans if span.context is not None}
    for parent, names in children.items():
        print(f"{ids.get(parent, 'trace root') if parent else 'trace root'}: {', '.join(names)}")
    print(f"{len(spans)} spans")


if __name__ == "__main__":
    main()
