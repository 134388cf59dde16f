"""Progress reporting for the streaming pipeline: a tqdm bar, log lines, or a callback.

One small interface (:class:`Progress`: ``update(n)`` and ``close()``) so the pipeline does not
care which of the three it talks to.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Protocol

from tqdm import tqdm

log = logging.getLogger(__name__)

#: Seconds between progress log lines when stderr is not a terminal (cluster logs, CI).
LOG_INTERVAL_S = 10.0

#: A progress callback: ``callback(frames_done, frames_total)``.
ProgressCallback = Callable[[int, int], None]


class Progress(Protocol):
    def update(self, n: int) -> None:
        """Account ``n`` more frames as done."""

    def close(self) -> None:
        """Finish the display (idempotent)."""


class _Bar:
    """tqdm on stderr: frames, fps and ETA."""

    def __init__(self, total: int, desc: str) -> None:
        self._bar = tqdm(total=total, unit="frame", desc=desc, file=sys.stderr, dynamic_ncols=True)

    def update(self, n: int) -> None:
        self._bar.update(n)

    def close(self) -> None:
        self._bar.close()


class _LogLines:
    """Periodic INFO lines (done/total, fps, ETA) for logs that are not terminals."""

    def __init__(self, total: int, desc: str, interval: float = LOG_INTERVAL_S) -> None:
        self.total, self.desc, self.interval = total, desc, interval
        self.done = 0
        self._start = self._last = time.monotonic()

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            fps = self.done / max(now - self._start, 1e-9)
            eta = (self.total - self.done) / fps if fps > 0 else float("inf")
            log.info("%s: %d/%d frames, %.2f fps, ETA %.0f s", self.desc, self.done, self.total, fps, eta)

    def close(self) -> None:
        pass


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


def make_progress(progress: bool | ProgressCallback, total: int, desc: str) -> Progress:
    """Pick the reporter: a callback; True -> tqdm bar on a TTY stderr, else log lines; False -> none."""
    if callable(progress):
        return _Callback(total, progress)
    if not progress:
        return _Silent()
    if sys.stderr.isatty():
        return _Bar(total, desc)
    return _LogLines(total, desc)
