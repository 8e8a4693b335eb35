"""Compose, preview and send a weekly networks update by email."""

from importlib.metadata import version

__version__ = version("newsletter")  # declared once, in pyproject.toml
