"""Models: specs, the constellation, the one door for model calls (admission, budgets, the
litellm client) and the simulated constellation. No scheduling or routing decisions live here."""
