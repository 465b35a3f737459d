"""`python -m jaxgen ...` is the `jaxgen` command (used where the console script may not be on PATH)."""

import sys

from jaxgen.cli import main

sys.exit(main())
