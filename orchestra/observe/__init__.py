"""Observability: the sinks that subscribe to the core's events (`orchestra.events`): the live
view, the HTML report, JSON-lines logs, OpenTelemetry, `Orchestra.stream`. Nothing here decides
anything in a run, and the core never prints."""
