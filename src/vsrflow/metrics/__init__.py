"""Quality metrics: per-frame PSNR/SSIM (RGB and BT.601 Y), temporal tOF, sequence evaluation, reports.

numpy and OpenCV only (no torch): the package runs wherever outputs are checked. Conventions are
documented in :mod:`vsrflow.metrics.image` (spatial), :mod:`vsrflow.metrics.temporal` (tOF) and
:mod:`vsrflow.metrics.evaluate` (size and frame-count rules).
"""

from __future__ import annotations

from vsrflow.metrics.evaluate import evaluate_pair
from vsrflow.metrics.image import ImageScores, image_scores, psnr, rgb_to_y, ssim
from vsrflow.metrics.report import summary_dict, write_csv
from vsrflow.metrics.results import EvaluationResult, FrameRecord, MetricStats, Summary
from vsrflow.metrics.sources import iter_frames
from vsrflow.metrics.temporal import TemporalFlowMeter

__all__ = [
    "EvaluationResult",
    "FrameRecord",
    "ImageScores",
    "MetricStats",
    "Summary",
    "TemporalFlowMeter",
    "evaluate_pair",
    "image_scores",
    "iter_frames",
    "psnr",
    "rgb_to_y",
    "ssim",
    "summary_dict",
    "write_csv",
]
