"""What a lab build is doing: one line per part, the elapsed time and an estimate of what is left.

A part is cached, waiting, building, done (in N s) or failed. On a terminal the lines are one
block redrawn in place under a progress bar; anywhere else (CI, a pipe, a log file) each change
is one plain line of its own, so a log reads top to bottom. Estimates come from the durations of
earlier builds on this machine, kept in the lab's cache (``DURATIONS``), or, before the first
build, from the numbers measured on the project's CI machine (``FIRST_ESTIMATES``). Parts run in
lanes: the debootstraps beside the Go builds, then the image assembly after both, so what is
left is the longest lane's remainder plus the assembly's.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO, TypeVar

from lab import config

T = TypeVar("T")

DURATIONS = config.CACHE_DIR / "build-durations.json"
# Seconds per kind of part on the project's 2-core CI machine with every cache empty
# (lab/README.md, Numbers): the estimate of a machine's first build.
FIRST_ESTIMATES = {
    "rootfs": 145.0,
    "image-base": 90.0,
    "controlplane": 780.0,
    "standin": 10.0,
    "node": 60.0,
    "argocd": 390.0,
    "coredns": 190.0,
    "dex": 70.0,
    "traefik": 480.0,
    "images": 40.0,
    "airgap": 10.0,
}
# The lanes run side by side; AFTER starts when every other lane has finished.
AFTER = "assemble"
BAR_WIDTH = 30
REDRAW_SECONDS = 1.0


@dataclass
class Part:
    """One part of the build, as the progress shows it."""

    name: str  # shown, e.g. "Argo CD v3.5.8"
    kind: str  # what estimates are kept by, e.g. "argocd": a new version has the last one's
    lane: str
    state: str = "waiting"  # waiting, cached, building, done, failed
    started: float | None = None
    seconds: float | None = None  # how long it took, once done or failed
    cached: bool | None = None  # known before it runs, where cheap to find out


def minutes(seconds: float) -> str:
    """ "42 s", "6.5 min", "33 min": as precise as an estimate deserves."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 60:.0f} min"


def clock(seconds: float) -> str:
    """Elapsed time as m:ss (h:mm:ss past an hour)."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def load_durations(path: Path = DURATIONS) -> dict[str, float]:
    """Seconds per kind from earlier builds; an absent or damaged file is no history."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: float(v) for k, v in data.items() if isinstance(v, int | float) and v >= 0}


def store_duration(kind: str, seconds: float, path: Path = DURATIONS) -> None:
    """Keep this build's duration for the next estimate (atomically; a failure costs nothing)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {**load_durations(path), kind: round(seconds, 1)}
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".durations-")
        with os.fdopen(fd, "w") as stream:
            json.dump(data, stream, sort_keys=True, indent=1)
        os.replace(temporary, path)
    except OSError:
        pass


def is_terminal(stream: TextIO) -> bool:
    """A progress bar only for a person at a terminal; CI and dumb terminals get plain lines."""
    if os.environ.get("CI", "").lower() == "true":
        return False
    if os.environ.get("TERM", "dumb") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """Tracks and shows the parts of one build. Thread-safe: lanes report from their threads."""

    def __init__(
        self,
        parts: Iterable[Part],
        stream: TextIO | None = None,
        durations: Path = DURATIONS,
        terminal: bool | None = None,
        title: str = "lab build",
        logs: Path | None = None,
    ) -> None:
        self.parts = {part.name: part for part in parts}
        self.stream = stream if stream is not None else sys.stderr
        self.durations_file = durations
        self.history = load_durations(durations)
        self.terminal = is_terminal(self.stream) if terminal is None else terminal
        self.title = title
        self.logs = logs
        self.started = time.monotonic()
        self._lock = threading.RLock()
        self._drawn = 0  # lines of the block on the terminal, to move back over
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    # ------------------------------------------------------------------ estimates

    def estimate(self, part: Part) -> float:
        if part.cached:
            return 0.0
        return self.history.get(part.kind, FIRST_ESTIMATES.get(part.kind, 30.0))

    def _left_in(self, part: Part, now: float) -> float:
        if part.state in ("cached", "done", "failed") or part.cached:
            return 0.0
        if part.state == "building" and part.started is not None:
            return max(self.estimate(part) - (now - part.started), 0.0)
        return self.estimate(part)

    def left(self, now: float | None = None) -> float:
        """Seconds the build probably still needs: the longest lane, then the assembly."""
        now = time.monotonic() if now is None else now
        lanes: dict[str, float] = {}
        for part in self.parts.values():
            lanes[part.lane] = lanes.get(part.lane, 0.0) + self._left_in(part, now)
        after = lanes.pop(AFTER, 0.0)
        return max(lanes.values(), default=0.0) + after

    def _fraction(self, now: float) -> float:
        total = sum(self.estimate(p) for p in self.parts.values())
        if total <= 0:
            return 1.0
        left = sum(self._left_in(p, now) for p in self.parts.values())
        return min(max(1.0 - left / total, 0.0), 1.0)

    def _source(self) -> str:
        building = [p for p in self.parts.values() if not p.cached]
        if all(p.kind in self.history for p in building):
            return "from earlier builds here"
        return "from the project's CI machine" if not self.history else "partly from earlier builds"

    # ------------------------------------------------------------------ running parts

    def start(self) -> None:
        """Print what is to be built and the estimate; on a terminal, start redrawing."""
        with self._lock:
            to_build = [p for p in self.parts.values() if not p.cached]
            cached = len(self.parts) - len(to_build)
            if to_build:
                head = (
                    f"{self.title}: {len(self.parts)} parts, {cached} cached; "
                    f"≈ {minutes(self.left())} ({self._source()})"
                )
                if self.logs is not None:
                    head += f"; the Go tool's output goes to {self.logs}"
            else:
                head = f"{self.title}: {len(self.parts)} parts, every one cached"
            self._write_line(head)
            if self.terminal:
                self._draw()
                self._ticker = threading.Thread(target=self._tick, daemon=True)
                self._ticker.start()

    def run(self, name: str, make: Callable[[], T], cached: bool | None = None) -> T:
        """Run one part's ``make`` and show its state before and after; ``cached`` says
        whether the cache already holds it (then ``make`` only returns where)."""
        part = self.parts[name]
        if cached is not None:
            part.cached = cached
        with self._lock:
            part.started = time.monotonic()
            part.state = "cached" if part.cached else "building"
            self._changed(part)
        try:
            result = make()
        except BaseException:
            with self._lock:
                part.seconds = time.monotonic() - part.started
                part.state = "failed"
                self._changed(part)
            raise
        with self._lock:
            part.seconds = time.monotonic() - part.started
            if not part.cached:
                part.state = "done"
                store_duration(part.kind, part.seconds, self.durations_file)
                self.history[part.kind] = part.seconds
                self._changed(part)
        return result

    def finish(self, failed: bool = False) -> None:
        """The last line: the whole build's time, or which part failed (the error, printed
        by the caller, names its log)."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        with self._lock:
            if self.terminal:
                self._draw()
                self._drawn = 0  # the final block stays on the screen, above the last line
            elapsed = time.monotonic() - self.started
            if failed:
                names = [p.name for p in self.parts.values() if p.state == "failed"]
                which = ", ".join(names) or "interrupted"
                self._write_line(f"{self.title}: FAILED after {elapsed:.0f} s: {which}")
                return
            built = sum(1 for p in self.parts.values() if p.state == "done")
            cached = sum(1 for p in self.parts.values() if p.state == "cached")
            self._write_line(
                f"{self.title}: finished in {elapsed:.0f} s ({built} built, {cached} cached)"
            )

    # ------------------------------------------------------------------ output

    def line(self, part: Part, now: float | None = None) -> str:
        """``name: state``, as both modes show it."""
        now = time.monotonic() if now is None else now
        if part.state == "cached":
            state = "cached"
        elif part.state == "done":
            state = f"done in {part.seconds or 0:.0f} s"
        elif part.state == "failed":
            state = f"failed after {part.seconds or 0:.0f} s"
        elif part.state == "building":
            # A plain line is printed once, as it starts: no clock that would stand still.
            running = f" {clock(now - (part.started or now))}" if self.terminal else ""
            state = f"building{running} (≈ {minutes(self.estimate(part))})"
        else:
            state = "cached" if part.cached else f"waiting (≈ {minutes(self.estimate(part))})"
        return f"{part.name}: {state}"

    def _overall(self, now: float) -> str:
        return f"elapsed {clock(now - self.started)}, ≈ {minutes(self.left(now))} left"

    def _changed(self, part: Part) -> None:
        if self.terminal:
            self._draw()
            return
        now = time.monotonic()
        if part.state == "cached":
            self._write_line(f"{self.title}: {self.line(part, now)}")
        else:
            self._write_line(f"{self.title}: {self.line(part, now)}  [{self._overall(now)}]")

    def _write_line(self, text: str) -> None:
        if self.terminal:
            self._erase()
        self.stream.write(text + "\n")
        self.stream.flush()
        if self.terminal and self._ticker is not None and not self._stop.is_set():
            self._draw()

    def _erase(self) -> None:
        if self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J")  # to the block's start, clear below
            self._drawn = 0

    def _draw(self) -> None:
        now = time.monotonic()
        fraction = self._fraction(now)
        filled = round(fraction * BAR_WIDTH)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        lines = [f"  {self._mark(p)} {self.line(p, now)}" for p in self.parts.values()]
        lines.append(f"[{bar}] {fraction * 100:3.0f}%  {self._overall(now)}")
        self._erase()
        self.stream.write("".join(f"\x1b[2K{line}\n" for line in lines))
        self.stream.flush()
        self._drawn = len(lines)

    @staticmethod
    def _mark(part: Part) -> str:
        return {"cached": "=", "done": "+", "failed": "!", "building": ">"}.get(part.state, " ")

    def _tick(self) -> None:
        while not self._stop.wait(REDRAW_SECONDS):
            with self._lock:
                self._draw()
