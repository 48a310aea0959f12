"""Generates the JSON Schema of every topic, for partners who do not use Python.

`python -m linkwell_schemas.jsonschema` rewrites `schemas/jsonschema/`; a test fails when the
committed files drift from the models.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from linkwell_schemas.events import EVENT_TYPES, DeadLettered

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "jsonschema"


def render() -> dict[str, str]:
    """File name -> JSON text, for every topic's message."""
    out: dict[str, str] = {}
    for cls in (*EVENT_TYPES, DeadLettered):
        name = cls.topic.replace("{service}", "service") + ".json"
        schema = cls.model_json_schema(mode="serialization")
        schema["$id"] = f"https://linkwell.example/schemas/{name}"
        schema["x-topic"] = cls.topic
        out[name] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def main() -> int:
    SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (SCHEMA_DIR / name).write_text(text)
    print(f"wrote {len(EVENT_TYPES) + 1} schemas to {SCHEMA_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
