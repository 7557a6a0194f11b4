"""Every `>>>` example in orchestra's docstrings runs and shows what it says."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import orchestra

# The pytest plugin is loaded by pytest itself; importing it again would re-register it.
MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(orchestra.__path__, "orchestra.")
    if info.name != "orchestra.testing.plugin"
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    """The module's docstring examples give the output written under them."""
    module = importlib.import_module(name)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    failed, _ = doctest.testmod(module, optionflags=flags, verbose=False)
    assert failed == 0


def test_most_modules_show_an_example() -> None:
    """Docstring examples are the norm: most modules have at least one."""
    finder = doctest.DocTestFinder()
    with_examples = [
        name
        for name in MODULES
        if any(test.examples for test in finder.find(importlib.import_module(name)))
    ]
    assert len(with_examples) >= len(MODULES) // 2
