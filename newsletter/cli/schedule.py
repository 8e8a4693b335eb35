"""Commands: (to be written)."""

from __future__ import annotations


def register(commands) -> None:
    """Add this module's commands to the `newsletter` parser."""
