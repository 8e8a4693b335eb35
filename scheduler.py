#!/usr/bin/env python3
"""The weekly scheduler as a plain process: the same as `newsletter schedule run [--dir D]`."""

import sys

from newsletter.cli import main

if __name__ == "__main__":
    sys.exit(main(["schedule", "run", *sys.argv[1:]]))
