"""Execution: the scheduler's state machine and driver, limits and budgets, and the node runner.
Planning, routing policies and the litellm door live elsewhere."""
