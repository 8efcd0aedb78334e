"""`python -m filingcontrast` (also what `accelerate launch -m filingcontrast train ...` runs)."""

import sys

from filingcontrast.cli import main

sys.exit(main())
