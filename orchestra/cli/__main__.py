"""`python -m orchestra.cli`: the `orchestra` command."""

import sys

from orchestra.cli import main

sys.exit(main())
