"""The CLI's view of long work's progress, on stderr (stdout carries only results): a rich
progress bar on a terminal, plain lines now and then otherwise (logs, CI), nothing with --json.

The work reports through castkeep.progress (`report(unit, done, total, **counts)`); a command
wraps its call in `with showing_progress(as_json): ...`.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import TextIO

from castkeep.progress import Progress, following

PLAIN_INTERVAL_S = 10.0  # a plain line at least this often while a unit advances
PLAIN_STEPS = 10  # ... and at every tenth of the way


def _eta(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _counts(p: Progress) -> str:
    return ", ".join(f"{name} {value}" for name, value in p.counts.items())


class _Rate:
    """Time per unit from the first report of a unit (work done before it, e.g. a resumed
    request's finished variants, does not count); a count that goes back (the demo's next
    request) starts over."""

    def __init__(self) -> None:
        self._start: dict[str, tuple[float, int]] = {}
        self._seen: dict[str, int] = {}

    def eta(self, p: Progress) -> float | None:
        now = time.monotonic()
        if p.done < self._seen.get(p.unit, p.done):
            self._start.pop(p.unit, None)
        self._seen[p.unit] = p.done
        t0, done0 = self._start.setdefault(p.unit, (now, p.done))
        if p.done <= done0 or p.done >= p.total:
            return None
        return (now - t0) / (p.done - done0) * (p.total - p.done)


class PlainLines:
    """`variants 1/2 (50%): passed 1, rejected 0, retries 0; eta 4s` lines: the first and last
    report of a unit, every tenth of the way, and at least every PLAIN_INTERVAL_S while it
    advances."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._rate = _Rate()
        self._last: dict[str, tuple[float, int, int]] = {}  # unit -> (time, done, step)

    def __call__(self, p: Progress) -> None:
        eta = self._rate.eta(p)
        now = time.monotonic()
        step = p.done * PLAIN_STEPS // p.total if p.total else PLAIN_STEPS
        last = self._last.get(p.unit)
        if last is not None and p.done == last[1]:
            return  # nothing new for this unit
        due = (last is None or p.done >= p.total or step != last[2]
               or now - last[0] >= PLAIN_INTERVAL_S)
        if not due:
            return
        self._last[p.unit] = (now, p.done, step)
        pct = f" ({100 * p.done // p.total}%)" if p.total else ""
        line = f"{p.unit} {p.done}/{p.total}{pct}"
        if p.counts:
            line += f": {_counts(p)}"
        if eta is not None:
            line += f"; eta {_eta(eta)}"
        print(line, file=self._out, flush=True)

    def close(self) -> None:
        pass


class Bar:
    """One rich progress bar per unit, removed when the command ends."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._progress = None
        self._tasks: dict[str, object] = {}

    def __call__(self, p: Progress) -> None:
        if self._progress is None:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress as RichProgress,
                TextColumn,
                TimeRemainingColumn,
            )

            self._progress = RichProgress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[counts]}"), TimeRemainingColumn(),
                console=Console(file=self._out), transient=True,
            )
            self._progress.start()
        if p.unit not in self._tasks:
            self._tasks[p.unit] = self._progress.add_task(p.unit, total=p.total, counts="")
        self._progress.update(self._tasks[p.unit], completed=p.done, total=p.total,
                              counts=_counts(p))

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


def display_for(as_json: bool, out: TextIO | None = None) -> PlainLines | Bar | None:
    if as_json:
        return None
    out = out or sys.stderr
    return Bar(out) if out.isatty() else PlainLines(out)


def _ingest_listener(display: PlainLines | Bar):
    """Ingest's own per-portrait callback (tasks/ingest.PROGRESS) shown as `portraits` progress."""
    counts = {"accepted": 0, "duplicates": 0, "rejected": 0}
    key = {"accepted": "accepted", "duplicate": "duplicates", "rejected": "rejected"}

    def listener(done: int, total: int, outcome) -> None:  # noqa: ANN001
        if outcome is not None and outcome.status in key:
            counts[key[outcome.status]] += 1
        display(Progress("portraits", done, total, dict(counts)))

    return listener


@contextlib.contextmanager
def showing_progress(as_json: bool) -> Iterator[PlainLines | Bar | None]:
    """Follow the progress the work inside reports (see module doc), ingest's included."""
    from castkeep.tasks.ingest import PROGRESS as INGEST_PROGRESS

    display = display_for(as_json)
    token = INGEST_PROGRESS.set(_ingest_listener(display) if display is not None else None)
    try:
        with following(display):
            yield display
    finally:
        INGEST_PROGRESS.reset(token)
        if display is not None:
            display.close()
