"""The per-frame sanity guard's measurements, on the compute device (torch).

Cost: one ``aminmax`` over the raw output and one area downscale of it to the input size (both
read the output once), an 8x8 block mean of the error at input resolution, and one small
device-to-host copy of four floats per frame. No full-resolution bicubic is ever computed for a
normal frame: the output, brought down to the input's size, is compared with the input itself
(for a faithful upscale, downscale(upscale(x)) ~ x; a bicubic upscale satisfies it too, so this is
the low-resolution form of "distance from a bicubic upscale of the same frame").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from vsrflow.engine.quality import (
    BICUBIC,
    DEFAULT_ON_ARTIFACT,
    ON_ARTIFACT,
    FrameCheck,
    GuardThresholds,
    check_choice,
)


def _psnr(mse: torch.Tensor) -> torch.Tensor:
    return -10.0 * torch.log10(mse.clamp_min(1e-10))


def check_frames(x: torch.Tensor, y: torch.Tensor, limits: GuardThresholds) -> list[FrameCheck]:
    """Measure each output frame against its input.

    Args:
        x: (B, 3, h, w) float32 input in [0, 1].
        y: (B, 3, H, W) float32 model output (at the requested output size), NOT clamped.
        limits: supplies the block side.

    Returns:
        One :class:`FrameCheck` per frame: pre-clamp min/max, PSNR (dB) of the clamped output
        area-downscaled to the input size against the input, and that PSNR over the worst block.
        Where the output is smaller than the input (scale < 1), both are compared at the output size.
    """
    b = int(y.shape[0])
    flat = y.reshape(b, -1)
    lo, hi = flat.amin(dim=1), flat.amax(dim=1)
    size = (min(int(x.shape[-2]), int(y.shape[-2])), min(int(x.shape[-1]), int(y.shape[-1])))
    # NaN becomes 0 here (its min/max above already flag the frame), so the PSNRs stay finite.
    yc = torch.nan_to_num(y, nan=0.0).clamp(0.0, 1.0)
    down = yc if tuple(yc.shape[-2:]) == size else F.interpolate(yc, size=size, mode="area")
    ref = x if tuple(x.shape[-2:]) == size else F.interpolate(x, size=size, mode="area")
    err = (down - ref).square().mean(dim=1, keepdim=True)  # (B, 1, h, w)
    psnr = _psnr(err.reshape(b, -1).mean(dim=1))
    k = max(1, min(limits.block, *size))
    blocks = F.avg_pool2d(err, k, stride=k, ceil_mode=True)
    block_psnr = _psnr(blocks.reshape(b, -1).amax(dim=1))
    stats = torch.stack([lo, hi, psnr, block_psnr], dim=1).cpu().tolist()
    return [FrameCheck(*(float(v) for v in row)) for row in stats]


def bicubic(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, 3, h, w) float [0, 1] -> (B, 3, *size) antialiased bicubic, clamped to [0, 1]."""
    antialias = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    y = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=antialias)
    return y.clamp(0.0, 1.0)


@dataclass(frozen=True)
class Guard:
    """How an :class:`~vsrflow.engine.upscaler.Upscaler` guards its output frames.

    Attributes:
        policy: one of :data:`~vsrflow.engine.quality.ON_ARTIFACT`.
        limits: the thresholds.
        fallback: builds the fallback Upscaler on first need (None: bicubic is the fallback); it
            is called at most once per Guard and may return None (then bicubic too).
        fallback_name: the fallback's model id for reports (``bicubic`` without one).
    """

    policy: str = DEFAULT_ON_ARTIFACT
    limits: GuardThresholds = field(default_factory=GuardThresholds)
    fallback: Callable[[], Any] | None = None
    fallback_name: str = BICUBIC

    def __post_init__(self) -> None:
        check_choice("on_artifact", self.policy, ON_ARTIFACT)
