"""Where the package data lives: one place for wheels and editable installs alike."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from pathlib import Path


def _data_dir(package: str, folder: str) -> Path:
    try:
        return Path(str(files(package)))
    except ModuleNotFoundError:  # mockcre imported from a source checkout it was not installed from
        return Path(__file__).resolve().parent.parent / folder


def schemas_dir() -> Path:
    return _data_dir("mockcre.schemas", "schemas")


def scenarios_dir() -> Path:
    return _data_dir("mockcre.scenario_files", "scenarios")


@cache
def load_schema(name: str) -> dict:
    """The parsed schema file ``schemas/<name>.schema.json`` (cached: schemas never change at run time)."""
    with open(schemas_dir() / f"{name}.schema.json", encoding="utf-8") as fh:
        return json.load(fh)


def schema_names() -> list[str]:
    return sorted(p.name[: -len(".schema.json")] for p in schemas_dir().glob("*.schema.json"))
