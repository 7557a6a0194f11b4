"""Execution: the scheduler's state machine and driver, and the node runner. Budgets, admission
and the litellm door live in `orchestra.models`; planning and routing policies elsewhere."""
