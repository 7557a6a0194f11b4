"""Observability: the typed events the core emits, and what subscribes to them (the live view,
the HTML report, JSON-lines logs, OpenTelemetry, `Orchestra.stream`). Nothing here decides
anything in a run, and the core never prints."""
