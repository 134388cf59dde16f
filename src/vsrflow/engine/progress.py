"""Progress reporting: a tqdm bar on a terminal, periodic plain lines elsewhere, or a callback.

One small interface (:class:`Progress`: ``update(n)`` and ``close()``) so the pipeline does not
care which of the three it talks to. :class:`ProgressDisplay` is the same choice as a
:data:`ProgressCallback`, for the commands (upscale, bench, submit, run) that show any count of
work (frames, chunks, measurements, videos) the same way.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Protocol

from tqdm import tqdm

log = logging.getLogger(__name__)

#: Seconds between progress log lines when stderr is not a terminal (cluster logs, CI); the CLI
#: passes ``Settings.progress_interval`` (``VSRFLOW_PROGRESS_INTERVAL``) instead.
LOG_INTERVAL_S = 5.0

#: A progress callback: ``callback(frames_done, frames_total)``.
ProgressCallback = Callable[[int, int], None]


class Progress(Protocol):
    def update(self, n: int) -> None:
        """Account ``n`` more frames as done."""

    def close(self) -> None:
        """Finish the display (idempotent)."""


def format_eta(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 07 min``; ``?`` when unknown (no rate yet)."""
    if not seconds < float("inf"):
        return "?"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def progress_line(desc: str, done: int, total: int, elapsed: float, unit: str = "frames") -> str:
    """``desc: done/total unit (P%), R unit/s, ETA T`` for ``elapsed`` seconds of work so far."""
    rate = done / elapsed if elapsed > 0 else 0.0
    eta = (total - done) / rate if rate > 0 else float("inf")
    percent = 100 * done // total if total else 100
    rate_unit = "fps" if unit == "frames" else f"{unit}/s"
    return f"{desc}: {done}/{total} {unit} ({percent}%), {rate:.2f} {rate_unit}, ETA {format_eta(eta)}"


class _Bar:
    """tqdm on stderr: count, rate (fps for frames) and ETA."""

    def __init__(self, total: int, desc: str, unit: str = "frame") -> None:
        self._bar = tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, dynamic_ncols=True)

    def update(self, n: int) -> None:
        self._bar.update(n)

    def close(self) -> None:
        self._bar.close()


class _LogLines:
    """Periodic INFO lines (done/total, rate, ETA) for logs that are not terminals: one every
    ``interval`` seconds while work goes on, and a last one when the work is complete."""

    def __init__(self, total: int, desc: str, interval: float = LOG_INTERVAL_S, unit: str = "frames") -> None:
        self.total, self.desc, self.interval, self.unit = total, desc, interval, unit
        self.done = 0
        self._start = self._last = time.monotonic()
        self._closed = False

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last >= self.interval and self.done < self.total:
            self._last = now
            log.info("%s", progress_line(self.desc, self.done, self.total, now - self._start, self.unit))

    def close(self) -> None:
        if not self._closed and self.done:
            self._closed = True
            elapsed = time.monotonic() - self._start
            log.info("%s", progress_line(self.desc, self.done, self.total, elapsed, self.unit))


class _Callback:
    def __init__(self, total: int, callback: ProgressCallback) -> None:
        self.total, self.callback = total, callback
        self.done = 0

    def update(self, n: int) -> None:
        self.done += n
        self.callback(self.done, self.total)

    def close(self) -> None:
        pass


class _Silent:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def make_progress(
    progress: bool | ProgressCallback,
    total: int,
    desc: str,
    *,
    interval: float = LOG_INTERVAL_S,
    unit: str = "frames",
) -> Progress:
    """Pick the reporter: a callback; True -> tqdm bar on a TTY stderr, else a log line every
    ``interval`` seconds; False -> none."""
    if callable(progress):
        return _Callback(total, progress)
    if not progress:
        return _Silent()
    if sys.stderr.isatty():
        return _Bar(total, desc, unit.removesuffix("s"))
    return _LogLines(total, desc, interval, unit)


class ProgressDisplay:
    """A :data:`ProgressCallback` (``display(done, total)``) that draws what :func:`make_progress`
    picks (bar on a terminal, else a plain line every ``interval`` seconds), created on the first
    call, when the total is known. ``enabled=False`` (``--quiet``, ``--no-progress``) shows
    nothing. Call :meth:`close` when the work ends (a last line with the totals; idempotent)."""

    def __init__(
        self, desc: str, *, interval: float = LOG_INTERVAL_S, unit: str = "frames", enabled: bool = True
    ) -> None:
        self.desc, self.interval, self.unit, self.enabled = desc, interval, unit, enabled
        self._shown: Progress | None = None
        self._done = 0

    def __call__(self, done: int, total: int) -> None:
        if self._shown is None:
            self._shown = make_progress(
                self.enabled, total, self.desc, interval=self.interval, unit=self.unit
            )
        if done > self._done:
            self._shown.update(done - self._done)
            self._done = done

    def close(self) -> None:
        if self._shown is not None:
            self._shown.close()
