"""One line of the doctor: a check that passed or failed, with its detail and fix."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Check"]


@dataclass(frozen=True)
class Check:
    ok: bool
    what: str
    detail: str = ""
    fix: str = ""

    def __str__(self) -> str:
        text = f"{'ok  ' if self.ok else 'FAIL'}  {self.what}" + (
            f": {self.detail}" if self.detail else ""
        )
        return text + (f"\n      fix: {self.fix}" if not self.ok and self.fix else "")
