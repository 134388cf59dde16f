"""Per-frame fidelity metrics as the super-resolution literature computes them (PSNR, SSIM, Y channel).

Conventions (BasicSR ``calculate_psnr``/``calculate_ssim``):

* Input frames are ``(H, W, 3)`` RGB arrays of dtype ``uint8`` or ``uint16``, never floats: a model's
  float output must be quantised to the delivered bit depth *before* it is measured, exactly once.
* Everything is measured on the **8-bit scale** (peak 255). ``uint16`` frames are mapped there with
  ``value / 257`` (65535 -> 255 exactly) *without rounding*, so 16-bit precision is kept and the numbers
  stay comparable with 8-bit results. The two inputs may differ in bit depth.
* Y is BT.601 "studio swing" as in MATLAB ``rgb2ycbcr``: ``Y = 16 + 65.481 R + 128.553 G + 24.966 B``
  with R, G, B in [0, 1]; Y lies in [16, 235] and is kept in float64 (never rounded).
* ``crop`` pixels are removed from each of the four borders before measuring (``crop = scale`` by
  convention: border pixels of an upscaled frame depend on padding, not on the model).
* PSNR is ``10 log10(255^2 / MSE)`` with a float64 MSE over every pixel (and, for ``"rgb"``, every
  channel) of the cropped frames; identical frames give ``math.inf`` (see ``evaluate`` for averaging).
* SSIM uses an 11x11 Gaussian window (sigma 1.5), ``C1 = (0.01*255)^2``, ``C2 = (0.03*255)^2``,
  population (biased) variances, and the mean of the SSIM map over the *valid* window positions only
  (the 5-pixel rim of the cropped frame, where the window would leave the image, is not averaged).
  For ``"rgb"`` it is the mean of the three per-channel SSIMs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from vsrflow.errors import InputError

Channel = Literal["y", "rgb"]
FloatImage = NDArray[np.float64]

#: Peak value of the 8-bit scale every metric is computed on.
PEAK = 255.0
#: BT.601 studio-swing luma weights for R, G, B in [0, 1] and the offset (MATLAB ``rgb2ycbcr``).
Y_WEIGHTS = (65.481, 128.553, 24.966)
Y_OFFSET = 16.0
#: SSIM window (side length, Gaussian sigma) and stabilising constants on the 8-bit scale.
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_C1 = (0.01 * PEAK) ** 2
SSIM_C2 = (0.03 * PEAK) ** 2

_UINT16_TO_8BIT = 257.0  # 65535 / 255: maps the full 16-bit range exactly onto [0, 255]
_SSIM_KERNEL = np.asarray(cv2.getGaussianKernel(SSIM_WINDOW, SSIM_SIGMA, cv2.CV_64F), dtype=np.float64)
_SSIM_RIM = SSIM_WINDOW // 2


@dataclass(frozen=True)
class ImageScores:
    """The four scores of one frame pair (PSNR in dB, may be ``inf``; SSIM in [-1, 1])."""

    psnr_rgb: float
    psnr_y: float
    ssim_rgb: float
    ssim_y: float


def _check_frame(img: np.ndarray, name: str) -> None:
    if img.ndim != 3 or img.shape[2] != 3:
        raise InputError(
            f"{name}: expected an RGB frame of shape (H, W, 3), got shape {img.shape}",
            hint="convert grey or RGBA frames to RGB before measuring",
        )
    if img.dtype not in (np.uint8, np.uint16):
        raise InputError(
            f"{name}: expected dtype uint8 or uint16, got {img.dtype}",
            hint="quantise model output to the delivered bit depth (e.g. round and clip to uint8) first",
        )


def to_8bit_scale(img: np.ndarray) -> FloatImage:
    """Return ``img`` (uint8 or uint16, any shape) as float64 on the 8-bit scale [0, 255], unrounded.

    uint8 values are kept; uint16 values are divided by 257 so 65535 maps exactly to 255.0.
    """
    if img.dtype == np.uint8:
        return img.astype(np.float64)
    if img.dtype == np.uint16:
        return img.astype(np.float64) / _UINT16_TO_8BIT
    raise InputError(f"expected a uint8 or uint16 frame, got dtype {img.dtype}")


def _y_from_scaled(rgb255: FloatImage) -> FloatImage:
    # Weights are defined for RGB in [0, 1]; divide once here rather than per channel.
    r, g, b = (rgb255[..., i] / PEAK for i in range(3))
    return Y_OFFSET + Y_WEIGHTS[0] * r + Y_WEIGHTS[1] * g + Y_WEIGHTS[2] * b


def rgb_to_y(img: np.ndarray) -> FloatImage:
    """BT.601 studio-swing luma of an RGB frame.

    Args:
        img: ``(H, W, 3)`` RGB, uint8 or uint16 (uint16 is scaled by 1/257 first).

    Returns:
        ``(H, W)`` float64 Y in [16, 235], not rounded.
    """
    _check_frame(img, "frame")
    return _y_from_scaled(to_8bit_scale(img))


def crop_border(img: np.ndarray, crop: int) -> np.ndarray:
    """Return a view of ``img`` without ``crop`` pixels on each of its four borders (rows and columns)."""
    if crop < 0:
        raise InputError(f"crop must be >= 0 pixels, got {crop}")
    height, width = img.shape[:2]
    if 2 * crop >= height or 2 * crop >= width:
        raise InputError(
            f"crop of {crop} px per border leaves nothing of a {width}x{height} frame",
            hint="use a smaller crop (the scale factor) or larger frames",
        )
    if crop == 0:
        return img
    return img[crop:-crop, crop:-crop]


def _prepare(a: np.ndarray, b: np.ndarray, crop: int) -> tuple[FloatImage, FloatImage]:
    _check_frame(a, "output frame")
    _check_frame(b, "reference frame")
    if a.shape != b.shape:
        raise InputError(
            f"frame sizes differ: output {a.shape[1]}x{a.shape[0]}, reference {b.shape[1]}x{b.shape[0]}",
            hint="resize or crop one first (vsrflow.metrics.evaluate does so for slight mismatches)",
        )
    return to_8bit_scale(crop_border(a, crop)), to_8bit_scale(crop_border(b, crop))


def _psnr_scaled(x: FloatImage, y: FloatImage) -> float:
    mse = float(np.mean((x - y) ** 2, dtype=np.float64))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(PEAK**2 / mse)


def _ssim_plane(x: FloatImage, y: FloatImage) -> float:
    """Mean SSIM of two float64 planes on the 8-bit scale, over the valid window positions."""
    if min(x.shape) < SSIM_WINDOW:
        raise InputError(
            f"SSIM needs at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels after the border crop, "
            f"got {x.shape[1]}x{x.shape[0]}",
            hint="use a smaller crop or larger frames",
        )

    def blur(plane: FloatImage) -> FloatImage:
        # Separable Gaussian = the 11x11 window; the border mode is irrelevant because only the
        # positions where the whole window lies inside the image (the 'valid' region) are kept.
        out = np.asarray(cv2.sepFilter2D(plane, cv2.CV_64F, _SSIM_KERNEL, _SSIM_KERNEL), dtype=np.float64)
        return out[_SSIM_RIM:-_SSIM_RIM, _SSIM_RIM:-_SSIM_RIM]

    # Channel views of an (H, W, 3) array are strided: give OpenCV contiguous planes.
    x, y = np.ascontiguousarray(x), np.ascontiguousarray(y)
    mu_x, mu_y = blur(x), blur(y)
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    # E[x^2] - E[x]^2: population variance under the window weights (no n/(n-1) correction).
    var_x = blur(x * x)
    var_x -= mu_xx
    var_y = blur(y * y)
    var_y -= mu_yy
    cov_xy = blur(x * y)
    cov_xy -= mu_xy
    # ((2 mu_xy + C1)(2 cov + C2)) / ((mu_xx + mu_yy + C1)(var_x + var_y + C2)), evaluated in place
    # (same operations in the same order as the textbook expression: identical results, and at
    # 1080p far fewer 16 MB temporaries).
    numerator = mu_xy
    numerator *= 2.0
    numerator += SSIM_C1
    cov_xy *= 2.0
    cov_xy += SSIM_C2
    numerator *= cov_xy
    denominator = mu_xx
    denominator += mu_yy
    denominator += SSIM_C1
    var_x += var_y
    var_x += SSIM_C2
    denominator *= var_x
    ssim_map = numerator
    ssim_map /= denominator
    return float(np.mean(ssim_map, dtype=np.float64))


def psnr(a: np.ndarray, b: np.ndarray, *, crop: int, channel: Channel) -> float:
    """PSNR in dB between an output frame ``a`` and a reference frame ``b`` (see module conventions).

    Args:
        a, b: ``(H, W, 3)`` RGB frames of equal shape, uint8 or uint16.
        crop: pixels removed from each border first (>= 0; the scale factor by convention).
        channel: ``"y"`` (BT.601 luma, float) or ``"rgb"`` (MSE over all three channels).

    Returns:
        ``10 log10(255^2 / MSE)``; ``math.inf`` when the cropped frames are identical.
    """
    x, y = _prepare(a, b, crop)
    if channel == "y":
        return _psnr_scaled(_y_from_scaled(x), _y_from_scaled(y))
    if channel == "rgb":
        return _psnr_scaled(x, y)
    raise InputError(f"unknown channel {channel!r}", hint="use 'y' or 'rgb'")


def ssim(a: np.ndarray, b: np.ndarray, *, crop: int, channel: Channel) -> float:
    """SSIM between an output frame ``a`` and a reference frame ``b`` (see module conventions).

    Args:
        a, b: ``(H, W, 3)`` RGB frames of equal shape, uint8 or uint16; after cropping both sides
            must be at least 11 pixels.
        crop: pixels removed from each border first (>= 0).
        channel: ``"y"`` (SSIM of the float luma) or ``"rgb"`` (mean of the per-channel SSIMs).

    Returns:
        Mean SSIM in [-1, 1] (1.0 for identical frames).
    """
    x, y = _prepare(a, b, crop)
    if channel == "y":
        return _ssim_plane(_y_from_scaled(x), _y_from_scaled(y))
    if channel == "rgb":
        return float(np.mean([_ssim_plane(x[..., c], y[..., c]) for c in range(3)]))
    raise InputError(f"unknown channel {channel!r}", hint="use 'y' or 'rgb'")


def image_scores(a: np.ndarray, b: np.ndarray, *, crop: int) -> ImageScores:
    """All four scores of one pair, converting and cropping each frame only once (same contract as above)."""
    x, y = _prepare(a, b, crop)
    x_y, y_y = _y_from_scaled(x), _y_from_scaled(y)
    ssim_rgb = float(np.mean([_ssim_plane(x[..., c], y[..., c]) for c in range(3)]))
    return ImageScores(
        psnr_rgb=_psnr_scaled(x, y),
        psnr_y=_psnr_scaled(x_y, y_y),
        ssim_rgb=ssim_rgb,
        ssim_y=_ssim_plane(x_y, y_y),
    )
