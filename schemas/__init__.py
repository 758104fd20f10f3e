"""Package marker: the JSON Schemas ship inside the wheel as mockcre.schemas."""
