"""`python -m orchestra.cli`: the `orchestra` command."""

import sys

from orchestra.cli import main

if __name__ == "__main__":
    sys.exit(main())
