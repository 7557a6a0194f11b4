"""Where runs execute: `oc.backends.Ray(...)` spreads them over a Ray cluster.

Without a backend every node runs in this process. See docs/scale.md.
"""

from __future__ import annotations

from orchestra.execution.backends.ray import Ray

__all__ = ["Ray"]
