"""Shared fixtures of the test suite."""

from __future__ import annotations

import copy

import pytest

from mockcre.resources import load_schema


@pytest.fixture
def example():
    """A fresh copy of a schema's document example: ``example("dm.item")``, ``example("cre.upload-response", 1)``."""

    def make(name: str, index: int = 0):
        return copy.deepcopy(load_schema(name)["examples"][index])

    return make
