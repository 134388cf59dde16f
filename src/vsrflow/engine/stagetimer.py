"""Where the time of a run goes: wall seconds and call counts per named stage, across threads.

A :class:`StageTimer` is handed to :func:`vsrflow.engine.pipeline.upscale_video` (and set on an
:class:`~vsrflow.engine.upscaler.Upscaler` as ``upscaler.timer``); each stage thread adds the time
it spends inside a stage. Stages of the pipeline: ``decode`` (the reader producing a frame),
``infer`` (one ``upscale_frames`` call, which nests ``h2d``, ``model`` and ``d2h``) and
``encode`` (the writer consuming a frame), ``mux`` (the final assembly).

Stages on different threads overlap, so their sum exceeds the run's wall time when the pipeline
works; a stage whose total is close to the wall time is the bottleneck.

GPU work is asynchronous: without a ``sync`` the ``h2d``/``model`` times are launch times and
``d2h`` absorbs the wait. A timer built with ``sync=torch.cuda.synchronize`` synchronises at each
stage boundary, so each stage gets its own device time, at the price of the overlap it prevents:
profile with a synchronising timer, measure throughput without one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")


class StageTimer:
    """Thread-safe accumulator of seconds and counts per stage name.

    Args:
        sync: called at the start and end of every timed stage (e.g. ``torch.cuda.synchronize``);
            None for no synchronisation.
    """

    def __init__(self, sync: Callable[[], Any] | None = None) -> None:
        self._sync = sync
        self._lock = threading.Lock()
        self._seconds: dict[str, float] = {}
        self._counts: dict[str, int] = {}

    def add(self, stage: str, seconds: float, count: int = 1) -> None:
        """Add ``seconds`` (>= 0) and ``count`` calls to ``stage``."""
        if seconds < 0:
            raise ValueError(f"stage {stage!r}: negative duration {seconds}")
        with self._lock:
            self._seconds[stage] = self._seconds.get(stage, 0.0) + seconds
            self._counts[stage] = self._counts.get(stage, 0) + count

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the ``with`` body as one call of stage ``name`` (also when it raises)."""
        if self._sync is not None:
            self._sync()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            if self._sync is not None:
                self._sync()
            self.add(name, time.perf_counter() - t0)

    def iterate(self, name: str, items: Iterable[T]) -> Iterator[T]:
        """Yield from ``items``, timing each ``next`` as one call of stage ``name``."""
        it = iter(items)
        while True:
            t0 = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                self.add(name, time.perf_counter() - t0, count=0)
                return
            self.add(name, time.perf_counter() - t0)
            yield item

    def summary(self) -> dict[str, dict[str, float]]:
        """``{stage: {"seconds": total, "calls": n, "ms_per_call": mean}}``, stages in first-seen order."""
        with self._lock:
            return {
                k: {
                    "seconds": s,
                    "calls": self._counts[k],
                    "ms_per_call": 1000.0 * s / self._counts[k] if self._counts[k] else 0.0,
                }
                for k, s in self._seconds.items()
            }


class _NullTimer(StageTimer):
    """A timer that records nothing (the default: no locking, no clock reads on the hot path)."""

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        yield

    def iterate(self, name: str, items: Iterable[T]) -> Iterator[T]:
        yield from items


#: Shared do-nothing timer: the default of every component that accepts a timer.
NULL_TIMER: StageTimer = _NullTimer()
