"""JSON Schema of issue files and newsletter.yaml, from the pydantic models, for a YAML language server."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from ..content import Issue, Newsletter

SCHEMA_DIR = "schema"
SCHEMAS: dict[str, type[BaseModel]] = {"issue.schema.json": Issue, "newsletter.schema.json": Newsletter}


def write_schema(root: Path, *, folder: str = SCHEMA_DIR) -> list[Path]:
    """Write ROOT/schema/issue.schema.json and newsletter.schema.json; the paths written."""
    target = Path(root) / folder
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in SCHEMAS.items():
        path = target / name
        path.write_text(json.dumps(model.model_json_schema(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written
