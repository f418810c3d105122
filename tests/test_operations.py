"""Operations against recorded facts, in pyinfra's own fixture format (tests/operations/)."""

from pathlib import Path

from pyinfra_testing.operations import make_operation_tests

HERE = Path(__file__).resolve().parent / "operations"

for fixture_dir in sorted(HERE.iterdir()):
    globals()[f"Test{fixture_dir.name.replace('.', '')}"] = make_operation_tests(
        "operations", fixture_dir.name, fixture_dir
    )
