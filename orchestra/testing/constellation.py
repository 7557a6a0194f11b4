"""`fake_constellation`: a constellation of fake models with realistic price and speed profiles."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestra.models.constellation import Constellation
from orchestra.models.spec import ModelSpec
from orchestra.testing.fake import FakeModel

__all__ = ["DEFAULT_PROFILES", "fake_constellation"]

DEFAULT_PROFILES: dict[str, dict[str, Any]] = {
    "boss": {
        "input_cost": 2.5,
        "output_cost": 10.0,
        "quality": 0.9,
        "tags": {"planning", "reasoning"},
        "ttft": 0.45,
        "prefill_tps": 3000,
        "decode_tps": 90,
    },
    "fast": {
        "input_cost": 0.05,
        "output_cost": 0.08,
        "quality": 0.6,
        "ttft": 0.15,
        "prefill_tps": 8000,
        "decode_tps": 750,
    },
    "mid": {
        "input_cost": 0.59,
        "output_cost": 0.79,
        "quality": 0.75,
        "ttft": 0.3,
        "prefill_tps": 3000,
        "decode_tps": 250,
    },
}
"""Price (USD per 1M tokens) and speed profiles of a gpt-4o-class boss, a fast 8B model and a
mid 70B model."""


def fake_constellation(
    fake: FakeModel, specs: Mapping[str, Mapping[str, Any]] | None = None
) -> Constellation:
    """A constellation whose models all answer through `fake`.

    Args:
        fake: the FakeModel that answers every call.
        specs: spec fields by model name (default: `DEFAULT_PROFILES`: boss, fast, mid);
            `model` is filled in.

    Example:
        >>> from orchestra.testing import FakeModel
        >>> fake_constellation(FakeModel()).names
        ['boss', 'fast', 'mid']
    """
    profiles = DEFAULT_PROFILES if specs is None else specs
    return Constellation(
        ModelSpec.parse({**fields, "name": name, "model": fake.model(name)})
        for name, fields in profiles.items()
    )
