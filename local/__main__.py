"""``python -m local COMMAND SITE [options]``: the operator commands (``local.cli``)."""

from __future__ import annotations

from local.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
