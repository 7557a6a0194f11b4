"""Models: specs, the constellation, the litellm client (the only door to litellm) and the
simulated constellation. No scheduling or routing decisions live here."""
