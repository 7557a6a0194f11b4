"""Observability: the typed events the core emits, and the sinks that subscribe to them.
Nothing here runs models or changes a run; the core never prints."""
