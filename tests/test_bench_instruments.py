"""The bench's instruments keep measuring what they say: bench/instructions.py counts answered queries.

Running callgrind takes a minute and is not part of the suite; this runs what it measures, unmeasured.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_instruction_count_is_of_queries_that_were_answered():
    spec = importlib.util.spec_from_file_location("instructions", ROOT / "bench" / "instructions.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    service = script.requests_in_process(3)
    entries = service.journal.query()
    assert len(entries) == 483  # the warm-up and the counted requests
    assert all(e["endpoint"] == "cre.query" and e["reply"]["code"] == "0" and not e["violations"] for e in entries)
    assert len({e["body"]["user_id"] for e in entries}) == 60  # the rotation's shoppers and visitors
