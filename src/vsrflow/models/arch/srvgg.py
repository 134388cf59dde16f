"""SRVGGNetCompact (Real-ESRGAN "compact" models: realesr-animevideov3, realesr-general-x4v3).

Tensor contract: ``forward(x)`` takes ``(N, num_in_ch, H, W)`` float32 RGB in ``[0, 1]`` and returns
``(N, num_out_ch, H*upscale, W*upscale)``, not clamped. Any ``H, W >= 1`` work.

Keys: ``body.{i}``: ``body.0`` conv(in -> feat), ``body.1`` activation, then ``num_conv`` pairs of
conv(feat -> feat) + activation, then conv(feat -> out*upscale^2) at ``body.{2*num_conv + 2}``.
Only PReLU activations carry weights (``body.{odd}.weight``, shape ``(num_feat,)``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from torch import Tensor, nn
from torch.nn import functional as F

from vsrflow.errors import ModelError
from vsrflow.models.descriptor import ModelDescriptor

ActType = Literal["prelu", "relu", "lrelu"]


def _activation(act_type: ActType, num_feat: int) -> nn.Module:
    if act_type == "prelu":
        return nn.PReLU(num_parameters=num_feat)
    if act_type == "relu":
        return nn.ReLU(inplace=True)
    if act_type == "lrelu":
        return nn.LeakyReLU(negative_slope=0.1, inplace=True)
    raise ModelError(f"SRVGGNetCompact activation {act_type!r} is not supported", hint="prelu, relu, lrelu")


class SRVGGNetCompact(nn.Module):
    """Plain conv stack at input resolution, PixelShuffle, plus the nearest-upsampled input.

    The network learns a residual over nearest-neighbour upsampling, which is why the output is
    ``pixel_shuffle(body(x)) + interpolate(x, nearest)``.
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        num_feat: int = 64,
        num_conv: int = 16,
        upscale: int = 4,
        act_type: ActType = "prelu",
    ) -> None:
        super().__init__()
        self.upscale = upscale
        body: list[nn.Module] = [nn.Conv2d(num_in_ch, num_feat, 3, 1, 1), _activation(act_type, num_feat)]
        for _ in range(num_conv):
            body += [nn.Conv2d(num_feat, num_feat, 3, 1, 1), _activation(act_type, num_feat)]
        body.append(nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1))
        self.body = nn.ModuleList(body)
        self.upsampler = nn.PixelShuffle(upscale)

    def forward(self, x: Tensor) -> Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        out = self.upsampler(out)
        return out + F.interpolate(x, scale_factor=self.upscale, mode="nearest")


@dataclass(frozen=True)
class SRVGGParams:
    """Hyper-parameters of :class:`SRVGGNetCompact` (constructor keyword names)."""

    num_in_ch: int = 3
    num_out_ch: int = 3
    num_feat: int = 64
    num_conv: int = 16
    upscale: int = 4
    act_type: ActType = "prelu"


def detect_params(state: Mapping[str, Tensor], act_type: ActType | None = None) -> SRVGGParams:
    """Read hyper-parameters from a state dict.

    PReLU is detected from ``body.1.weight``; parameter-free activations cannot be told apart, so
    ``act_type`` must then be given (ModelError otherwise).
    """
    convs = sorted(
        int(k.split(".")[1])
        for k in state
        if k.startswith("body.") and k.endswith(".weight") and state[k].ndim == 4
    )
    if not convs or convs[0] != 0:
        raise ModelError("state dict is not an SRVGGNetCompact checkpoint (no body.0.weight conv)")
    first, last = state["body.0.weight"], state[f"body.{convs[-1]}.weight"]
    num_in_ch, num_feat = int(first.shape[1]), int(first.shape[0])
    num_conv = (convs[-1] - 2) // 2
    has_prelu = "body.1.weight" in state
    if act_type is None:
        if not has_prelu:
            raise ModelError("SRVGGNetCompact without PReLU weights: give act_type (relu or lrelu)")
        act_type = "prelu"
    out_total = int(last.shape[0])
    # out channels * upscale^2 == out_total; assume out == in channels (RGB -> RGB).
    upscale = math.isqrt(out_total // num_in_ch)
    if upscale * upscale * num_in_ch != out_total:
        raise ModelError(f"SRVGGNetCompact last conv has {out_total} outputs: not 3*upscale^2")
    return SRVGGParams(num_in_ch, num_in_ch, num_feat, num_conv, upscale, act_type)


def descriptor(params: SRVGGParams) -> ModelDescriptor:
    """Engine contract: ``num_conv + 2`` 3x3 convs at input resolution -> that many pixels of context."""
    return ModelDescriptor(
        arch="srvgg",
        scale=params.upscale,
        in_channels=params.num_in_ch,
        out_channels=params.num_out_ch,
        size_multiple=1,
        min_size=1,
        receptive_radius=params.num_conv + 2,
    )
