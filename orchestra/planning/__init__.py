"""Planning: the boss's prompt, reading its JSON plan, and asking again with the errors.
Running the plan (scheduling, routing, calling workers) lives elsewhere."""
