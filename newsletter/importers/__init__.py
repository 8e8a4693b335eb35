"""Importers: plain text an office already has (meeting minutes, last year's updates) turned into content files."""
