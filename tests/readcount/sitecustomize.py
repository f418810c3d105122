"""Counts the files a Python process opens under a folder (tests of "each site file is read
once"). Loaded by the interpreter at start when this folder is on PYTHONPATH: an audit hook
sees every ``open`` (``open()``, ``io.open``, ``os.open``) and, at exit, the counts of the paths
under ``TIROSH_READS_UNDER`` are written to ``TIROSH_READS_TO/<pid>.json``.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from collections import Counter

_UNDER = os.environ.get("TIROSH_READS_UNDER")
_TO = os.environ.get("TIROSH_READS_TO")
_counts: Counter[str] = Counter()


def _hook(event: str, args: tuple[object, ...]) -> None:
    if event == "open" and args and isinstance(args[0], str | bytes):
        path = os.fsdecode(args[0])
        if _UNDER and os.path.abspath(path).startswith(_UNDER + os.sep):
            _counts[os.path.relpath(os.path.abspath(path), _UNDER)] += 1


def _write() -> None:
    if _TO:
        with open(os.path.join(_TO, f"{os.getpid()}.json"), "w") as out:
            json.dump(dict(_counts), out)


if _UNDER and _TO:
    sys.addaudithook(_hook)
    atexit.register(_write)
