"""Per-video results of ``vsrflow run``, the best/worst ranking, the summary JSON and table."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vsrflow.files import atomic_write_json

#: Metrics read from ``vsrflow evaluate --json`` (their per-metric ``mean``), in table order.
SUMMARY_METRICS = ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb", "tof")


@dataclass
class VideoResult:
    """What happened to one input video.

    Attributes:
        input: the source file.
        output: the upscaled file (may not exist when the upscale failed).
        upscale: 'upscaled' (ran now), 'skipped' (already done), 'existing' (--skip-upscale) or 'failed'.
        evaluate: None (not asked), 'evaluated', 'reused' (recorded, same reference) or 'failed'.
        error: one line saying what failed, prefixed by the stage; None when nothing failed.
        seconds: wall-clock seconds spent on this video in this run.
        reference: the reference file evaluated against, if any.
        metrics: mean of each metric (None when not finite or not measured).
    """

    input: Path
    output: Path
    upscale: str = "pending"
    evaluate: str | None = None
    error: str | None = None
    seconds: float = 0.0
    reference: Path | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        return {
            "input": str(self.input),
            "output": str(self.output),
            "status": "ok" if self.ok else "failed",
            "upscale": self.upscale,
            "evaluate": self.evaluate,
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "reference": None if self.reference is None else str(self.reference),
            "metrics": {k: _finite(v) for k, v in self.metrics.items()},
        }


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def evaluation_metrics(data: Any) -> dict[str, float | None]:
    """Metric means from an evaluate summary (``{"metrics": {"psnr_y": {"mean": ..}, ..}}``).

    Also accepts the metrics mapping itself (``{"psnr_y": {"mean": ..}}``). Missing, null or
    non-finite means become None.
    """
    if not isinstance(data, dict):
        return {}
    metrics = data.get("metrics", data)
    if not isinstance(metrics, dict):
        return {}
    out: dict[str, float | None] = {}
    for name in SUMMARY_METRICS:
        entry = metrics.get(name)
        mean = entry.get("mean") if isinstance(entry, dict) else None
        out[name] = _finite(float(mean)) if isinstance(mean, int | float) else None
    return out


def best_and_worst(results: list[VideoResult]) -> tuple[VideoResult | None, VideoResult | None]:
    """The successful results with the highest and lowest mean PSNR-Y (None when none has one)."""
    scored = [r for r in results if r.ok and r.metrics.get("psnr_y") is not None]
    if not scored:
        return None, None
    ranked = sorted(scored, key=lambda r: (r.metrics["psnr_y"], r.input.name))
    return ranked[-1], ranked[0]


def summary_json(
    results: list[VideoResult], *, model: str, scale: float, interrupted: bool = False
) -> dict[str, Any]:
    """The content of ``run-summary.json``."""
    best, worst = best_and_worst(results)

    def pick(r: VideoResult | None) -> dict[str, Any] | None:
        return None if r is None else {"input": r.input.name, "psnr_y": r.metrics.get("psnr_y")}

    return {
        "model": model,
        "scale": scale,
        "interrupted": interrupted,
        "counts": {
            "videos": len(results),
            "ok": sum(r.ok for r in results),
            "failed": sum(not r.ok for r in results),
            "upscaled": sum(r.upscale == "upscaled" for r in results),
            "skipped": sum(r.upscale == "skipped" for r in results),
        },
        "best": pick(best),
        "worst": pick(worst),
        "videos": [r.to_json() for r in results],
    }


def write_summary(path: Path, data: dict[str, Any]) -> None:
    """Write the summary JSON atomically."""
    atomic_write_json(path, data, sort_keys=False)


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_table(results: list[VideoResult]) -> str:
    """A plain-text table: one row per video, then the best/worst line and the counts."""
    name_w = max([5, *(len(r.input.name) for r in results)])
    lines = [f"{'video':{name_w}}  {'status':8}  {'upscale':9}  {'psnr_y':>7}  {'ssim_y':>6}  output / error"]
    for r in results:
        status = "ok" if r.ok else "FAILED"
        detail = r.output.name if r.ok else (r.error or "")
        lines.append(
            f"{r.input.name:{name_w}}  {status:8}  {r.upscale:9}  {_fmt(r.metrics.get('psnr_y'), 2):>7}  "
            f"{_fmt(r.metrics.get('ssim_y'), 4):>6}  {detail}"
        )
    best, worst = best_and_worst(results)
    if best is not None and worst is not None:
        lines.append(
            f"best: {best.input.name} (PSNR-Y {_fmt(best.metrics['psnr_y'], 2)} dB); "
            f"worst: {worst.input.name} (PSNR-Y {_fmt(worst.metrics['psnr_y'], 2)} dB)"
        )
    failed = sum(not r.ok for r in results)
    skipped = sum(r.upscale == "skipped" for r in results)
    lines.append(
        f"{len(results)} videos: {len(results) - failed} ok ({skipped} already done), {failed} failed"
    )
    return "\n".join(lines)
