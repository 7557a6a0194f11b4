"""The examples in the routing and checks modules' docstrings run and say what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "orchestra.checks",
    "orchestra.execution.priority",
    "orchestra.routing.cascade",
    "orchestra.routing.estimate",
    "orchestra.routing.policies",
    "orchestra.routing.slack",
    "orchestra.testing.recorded",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    """Every `>>>` example of the module gives the output written under it."""
    module = importlib.import_module(name)
    failed, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert tried > 0 and failed == 0
