"""`python -m jaxgen.lecture [--quick] [--out DIR] [--md FILE] [--reuse]`: the walkthrough (`make
walkthrough`), as jaxgen.lecture.walkthrough.main runs it."""

import sys

from jaxgen.lecture.walkthrough import main

sys.exit(main())
