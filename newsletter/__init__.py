"""Compose, preview and send a weekly networks update by email."""

__version__ = "0.1.0"
