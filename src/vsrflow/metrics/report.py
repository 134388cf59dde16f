"""Writers for an :class:`EvaluationResult`: a per-frame CSV and a JSON-able summary dict."""

from __future__ import annotations

import csv
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from vsrflow.metrics.image import PEAK, SSIM_C1, SSIM_C2, SSIM_SIGMA, SSIM_WINDOW
from vsrflow.metrics.results import METRICS, EvaluationResult
from vsrflow.metrics.temporal import FARNEBACK_PARAMS

#: CSV header: the frame index, then the metrics.
CSV_COLUMNS = ("index", *METRICS)

#: Stated with every summary so a number is never separated from how it was measured.
CONVENTIONS: dict[str, Any] = {
    "scale": "8-bit (peak 255); uint16 frames divided by 257",
    "y": "BT.601 Y = 16 + 65.481 R + 128.553 G + 24.966 B, RGB in [0, 1], not rounded",
    "psnr": "10 log10(255^2 / MSE) per frame in float64, mean over frames with finite PSNR",
    "ssim": {
        "window": SSIM_WINDOW,
        "sigma": SSIM_SIGMA,
        "c1": SSIM_C1,
        "c2": SSIM_C2,
        "variance": "population",
        "region": "valid window positions",
        "peak": PEAK,
    },
    "tof": {"flow": "cv2.calcOpticalFlowFarneback", "params": list(FARNEBACK_PARAMS), "grey": "RGB2GRAY"},
}


def _cell(value: float | int | None) -> str:
    # Empty cell for "no value" (tOF of frame 0); repr keeps full float precision; 'inf' is what
    # Python's float() and pandas read back.
    if value is None:
        return ""
    return repr(value)


def write_csv(result: EvaluationResult, path: Path | str) -> Path:
    """Write one row per frame (columns :data:`CSV_COLUMNS`) to ``path``; return the path.

    PSNR of identical frames is written as ``inf``; tOF of frame 0 as an empty cell.
    """
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for frame in result.frames:
            writer.writerow([_cell(getattr(frame, col)) for col in CSV_COLUMNS])
    return path


def _json_number(value: float) -> float | None:
    # Strict JSON has no Infinity/NaN: an infinite PSNR becomes null, with "infinite" counting it.
    return value if math.isfinite(value) else None


def summary_dict(result: EvaluationResult) -> dict[str, Any]:
    """A JSON-serialisable summary (``json.dumps(..., allow_nan=False)`` works).

    Keys: ``frames`` (compared), ``output_frames``, ``reference_frames``, ``scale_crop``, ``notes``,
    ``metrics`` (per metric: mean/min/max/count/infinite, or null for tOF of a single frame),
    ``worst_frame`` / ``best_frame`` (index and PSNR-Y) and ``conventions``. Non-finite numbers are
    written as null; ``infinite`` says how many frames had infinite PSNR.
    """
    metrics: dict[str, Any] = {}
    for name, stats in result.summary.stats.items():
        if stats is None:
            metrics[name] = None
            continue
        entry = asdict(stats)
        for key in ("mean", "min", "max"):
            entry[key] = _json_number(entry[key])
        metrics[name] = entry
    by_index = {f.index: f for f in result.frames}
    worst, best = by_index[result.summary.worst_frame], by_index[result.summary.best_frame]
    return {
        "frames": len(result.frames),
        "output_frames": result.output_frames,
        "reference_frames": result.reference_frames,
        "scale_crop": result.scale_crop,
        "notes": list(result.notes),
        "metrics": metrics,
        "worst_frame": {"index": worst.index, "psnr_y": _json_number(worst.psnr_y)},
        "best_frame": {"index": best.index, "psnr_y": _json_number(best.psnr_y)},
        "conventions": CONVENTIONS,
    }
