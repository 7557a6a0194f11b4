"""The `orchestra` command, all of it: argument parsing, the commands, their output.
Not here: what the commands drive (`orchestra.Orchestra`, the journal, the observe sinks).

`main` is the console-script entry point (`orchestra = "orchestra.cli:main"`); `python -m
orchestra.cli` runs the same. Each command lives in its own module and registers itself on the
parser (`orchestra.cli.app`); nothing here is imported by `import orchestra`.
"""

from orchestra.cli.app import main

__all__ = ["main"]
