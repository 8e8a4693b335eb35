"""The editor's desk: start the next issue, edit it in the browser beside the email, check, save and test it.

new.py: the next issue file; schema.py: JSON Schema for code editors; drafts.py: an unsaved issue
checked as the folder would be; editing.py: form values written back into the YAML round-trip;
app.py: the Starlette app; page.py: its HTML.
"""

from __future__ import annotations

from .new import NextIssue, new_issue, next_issue
from .schema import write_schema

__all__ = ["NextIssue", "new_issue", "next_issue", "write_schema"]
