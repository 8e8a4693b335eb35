"""Where the templates shipped with the package are: email/ (the issue), web/ (the site's pages and CSS).

They are package data, so a wheel, `pip install .` and the Docker image find them beside this module.
A newsletter folder's own templates/email/ replaces email/ (see Folder.templates).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

ROOT = Path(str(files(__name__)))  # a wheel is installed as plain files, never imported from a zip
EMAIL = ROOT / "email"
WEB = ROOT / "web"
