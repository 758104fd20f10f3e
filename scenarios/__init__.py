"""Package marker: the bundled scenarios ship inside the wheel as mockcre.scenario_files."""
