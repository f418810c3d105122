"""Operations against recorded facts, in pyinfra's own fixture format (tests/operations/)."""

import typing
from pathlib import Path

from pyinfra.api import FactBase
from pyinfra_testing import util as testing
from pyinfra_testing.operations import make_operation_tests

HERE = Path(__file__).resolve().parent / "operations"

_fixture_fact = testing.FakeHost.get_fact


def _typed_fact(
    self: testing.FakeHost, fact_cls: type[FactBase[object]], *args: object, **kwargs: object
) -> object:
    """The fixture's value of a fact, built into the type the fact returns.

    pyinfra_testing hands a fact back as the fixture's mapping; a fact of this repository that
    returns a dataclass (``ArgoCDInstall``) gets it built, as pyinfra_testing does already for
    operation arguments, so its properties (``drifted``) are the real ones.
    """
    value = _fixture_fact(self, fact_cls, *args, **kwargs)
    if not fact_cls.__module__.startswith("facts."):
        return value
    return testing._coerce_value(value, typing.get_type_hints(fact_cls.process).get("return"))


testing.FakeHost.get_fact = _typed_fact

for fixture_dir in sorted(HERE.iterdir()):
    globals()[f"Test{fixture_dir.name.replace('.', '')}"] = make_operation_tests(
        "operations", fixture_dir.name, fixture_dir
    )
