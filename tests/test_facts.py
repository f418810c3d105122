"""Facts against recorded command output, in pyinfra's own fixture format (tests/facts/)."""

from pathlib import Path

from pyinfra_testing.facts import make_fact_tests

HERE = Path(__file__).resolve().parent / "facts"

for fixture_dir in sorted(HERE.iterdir()):
    globals()[f"Test{fixture_dir.name.replace('.', '')}"] = make_fact_tests(
        "facts", fixture_dir.name, fixture_dir
    )
