"""litellm, imported once and only when a model is first called: the only module that imports it.

`import orchestra` stays fast and works without touching litellm (a 1 s import); the fakes and
CLI commands that call no model never load it.
"""

from __future__ import annotations

import os
from typing import Any

from orchestra.models import guard

__all__ = ["load_litellm"]

# litellm ships no usable type information for its module attributes: treat it as Any.
_litellm: Any = None


def load_litellm() -> Any:
    """Import litellm once, with its network look-ups at import switched off and orchestra's
    guards (secret scrubbing in its loggers, bounded transports) installed."""
    global _litellm
    if _litellm is None:
        # Without this litellm fetches its cost map over the network at import; orchestra
        # prices calls from the specs, so the bundled map is all it needs.
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        litellm.suppress_debug_info = True
        guard.install(litellm)
        _litellm = litellm
    return _litellm
