"""`python -m newsletter`: the same as the `newsletter` command."""

import sys

from .cli import main

sys.exit(main())
