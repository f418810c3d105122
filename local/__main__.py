"""``python -m local COMMAND SITE [options]``: the operator commands (``local.commands``, through the frame in ``local.cli``)."""

from __future__ import annotations

from local.commands import main

if __name__ == "__main__":
    raise SystemExit(main())
