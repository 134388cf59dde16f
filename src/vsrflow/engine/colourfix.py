"""Colour fix: keep the source's low-frequency colour in the model's output (torch, on the device).

GAN-trained models shift flat colours by a few levels (brighter greys, warmer skies). The fix
splits both the output and a bicubic upscale of the input into low and high frequencies and keeps
the output's high frequencies (the model's detail) on top of the upscaled input's low frequencies
(the source's colour and brightness): ``fixed = y - low(y) + low(bicubic(x))``. On a flat area the
output then equals the source colour to float rounding, whatever the model did there.

Two low-pass filters:

* ``wavelet``: the a-trous (dilated) wavelet low band, :data:`WAVELET_LEVELS` levels of the 3x3
  binomial kernel with dilation 1, 2, 4, ... (as in StableSR's wavelet colour fix); its support is
  about 2^levels output pixels.
* ``gaussian``: one separable Gaussian of sigma :data:`GAUSSIAN_SIGMA_INPUT_PX` input pixels
  (scaled to output pixels), radius 3 sigma.

Edges use replicate padding (valid for any frame size, unlike reflect).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vsrflow.engine.guard import bicubic

WAVELET_LEVELS = 5
GAUSSIAN_SIGMA_INPUT_PX = 2.0


def _depthwise(
    x: torch.Tensor, kernel: torch.Tensor, dilation: tuple[int, int], pad: tuple[int, ...]
) -> torch.Tensor:
    c = int(x.shape[1])
    weight = kernel.to(x)[None, None].expand(c, 1, *kernel.shape).contiguous()
    return F.conv2d(F.pad(x, pad, mode="replicate"), weight, groups=c, dilation=dilation)


def wavelet_low(x: torch.Tensor, levels: int = WAVELET_LEVELS) -> torch.Tensor:
    """(B, C, H, W) -> its a-trous wavelet low band after ``levels`` levels (same shape)."""
    k1 = torch.tensor([0.25, 0.5, 0.25], dtype=torch.float32)
    kernel = k1[:, None] * k1[None, :]
    low = x
    for i in range(levels):
        d = 2**i
        low = _depthwise(low, kernel, (d, d), (d, d, d, d))
    return low


def gaussian_low(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """(B, C, H, W) -> separable Gaussian blur of ``sigma`` pixels (radius ceil(3 sigma))."""
    radius = max(1, int(3.0 * sigma + 0.999))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    y = _depthwise(x, k[None, :], (1, 1), (radius, radius, 0, 0))
    return _depthwise(y, k[:, None], (1, 1), (0, 0, radius, radius))


def apply_colour_fix(y: torch.Tensor, x: torch.Tensor, mode: str) -> torch.Tensor:
    """Replace the low frequencies of the output by those of the upscaled input.

    Args:
        y: (B, 3, H, W) float32 model output (unclamped; the caller clamps and quantises).
        x: (B, 3, h, w) float32 input in [0, 1].
        mode: ``wavelet`` or ``gaussian``.

    Returns:
        (B, 3, H, W) float32, not clamped.
    """
    size = (int(y.shape[-2]), int(y.shape[-1]))
    ref = bicubic(x, size)
    if mode == "wavelet":
        return y - wavelet_low(y) + wavelet_low(ref)
    if mode == "gaussian":
        sigma = GAUSSIAN_SIGMA_INPUT_PX * size[0] / int(x.shape[-2])
        return y - gaussian_low(y, sigma) + gaussian_low(ref, sigma)
    raise ValueError(f"unknown colour fix {mode!r}")
