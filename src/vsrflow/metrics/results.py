"""Result records of a sequence evaluation and their summary statistics (plain, immutable data).

How infinite PSNR is handled: a frame whose cropped output equals its reference has PSNR ``inf``.
The per-frame record keeps ``inf``. In a summary the **mean is taken over the finite frames only**
(reporting ``inf`` for a 99%-imperfect sequence would hide every real number, and capping at an
arbitrary dB value would invent one); ``infinite`` counts the excluded frames so the report can say so.
The mean is ``inf`` only when every frame is identical. ``min``/``max`` are over all frames.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

#: Metric columns of a frame record, in report order.
METRICS = ("psnr_rgb", "psnr_y", "ssim_rgb", "ssim_y", "tof")


@dataclass(frozen=True)
class FrameRecord:
    """Scores of frame ``index`` (0-based, in presentation order).

    PSNR in dB (``inf`` for identical frames), SSIM in [-1, 1], tOF in pixels of flow difference
    (``None`` for frame 0, which has no predecessor).
    """

    index: int
    psnr_rgb: float
    psnr_y: float
    ssim_rgb: float
    ssim_y: float
    tof: float | None


@dataclass(frozen=True)
class MetricStats:
    """Mean/min/max of one metric over ``count`` frames; ``infinite`` of them were ``inf`` (see module)."""

    mean: float
    min: float
    max: float
    count: int
    infinite: int = 0

    @classmethod
    def of(cls, values: Sequence[float]) -> MetricStats | None:
        """Statistics of ``values``, or None when there are none (e.g. tOF of a 1-frame sequence)."""
        if not values:
            return None
        finite = [v for v in values if math.isfinite(v)]
        mean = math.fsum(finite) / len(finite) if finite else math.inf
        return cls(
            mean=mean,
            min=min(values),
            max=max(values),
            count=len(values),
            infinite=len(values) - len(finite),
        )


@dataclass(frozen=True)
class Summary:
    """Per-metric statistics plus the worst and best frames by PSNR-Y (first one on ties)."""

    stats: dict[str, MetricStats | None]
    worst_frame: int
    best_frame: int

    @classmethod
    def of(cls, frames: Sequence[FrameRecord]) -> Summary:
        """Summarise a non-empty list of frame records."""
        if not frames:
            raise ValueError("cannot summarise zero frames")
        stats: dict[str, MetricStats | None] = {}
        for name in METRICS:
            values = [getattr(f, name) for f in frames]
            stats[name] = MetricStats.of([v for v in values if v is not None])
        worst = min(frames, key=lambda f: f.psnr_y)
        best = max(frames, key=lambda f: f.psnr_y)
        return cls(stats=stats, worst_frame=worst.index, best_frame=best.index)


@dataclass(frozen=True)
class EvaluationResult:
    """Outcome of comparing an output sequence with its reference.

    Attributes:
        frames: one record per compared frame pair, in order.
        summary: statistics over ``frames``.
        scale_crop: border pixels cropped from each side before measuring.
        output_frames / reference_frames: how many frames each input had (they differ only when
            ``align="truncate"`` was requested).
        notes: human-readable remarks (resizing done, truncation), each once.
    """

    frames: list[FrameRecord]
    summary: Summary
    scale_crop: int
    output_frames: int
    reference_frames: int
    notes: list[str] = field(default_factory=list)
