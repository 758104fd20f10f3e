"""Where the package data lives: one place for wheels and editable installs alike."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from pathlib import Path


def schemas_dir() -> Path:
    return Path(str(files("mockcre.schemas")))


def scenarios_dir() -> Path:
    return Path(str(files("mockcre.scenario_files")))


@cache
def load_schema(name: str) -> dict:
    """The parsed schema file ``schemas/<name>.schema.json`` (cached: schemas never change at run time)."""
    with open(schemas_dir() / f"{name}.schema.json", encoding="utf-8") as fh:
        return json.load(fh)


def schema_names() -> list[str]:
    return sorted(p.name[: -len(".schema.json")] for p in schemas_dir().glob("*.schema.json"))
