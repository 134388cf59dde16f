"""RRDBNet (ESRGAN / Real-ESRGAN generator) with BasicSR key names, plus key-scheme converters.

Tensor contract: ``forward(x)`` takes ``(N, num_in_ch, H, W)`` float32 RGB in ``[0, 1]`` and returns
``(N, num_out_ch, H*scale, W*scale)``, roughly in ``[0, 1]`` (not clamped). For scale 2 and 1 the
input is pixel-unshuffled (by 2 and 4), so ``H`` and ``W`` must be multiples of 2 and 4 respectively.

Three key schemes exist for the same weights (all load here after :func:`to_basicsr`):

* ``basicsr``: ``conv_first``, ``body.N.rdb{1,2,3}.conv{1..5}``, ``conv_body``, ``conv_up1/2[/3]``,
  ``conv_hr``, ``conv_last`` (Real-ESRGAN releases).
* ``esrgan`` (xinntao/ESRGAN): ``conv_first``, ``RRDB_trunk.N.RDB{k}.conv{m}``, ``trunk_conv``,
  ``upconv1/2``, ``HRconv``, ``conv_last``.
* ``old`` (original ESRGAN "old arch"): ``model.0``, ``model.1.sub.N.RDB{k}.conv{m}.0``,
  ``model.1.sub.<nb>`` (trunk conv), then one conv per upsampling stage and the two HR convs at
  the Sequential indices ``3, 6[, 9], n+2, n+4`` (for x4: ``model.3/6/8/10``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from vsrflow.errors import ModelError
from vsrflow.models.descriptor import ModelDescriptor

KeyScheme = Literal["basicsr", "esrgan", "old"]

# Input pixels per feature pixel (pixel-unshuffle factor) and number of nearest-x2 stages per scale.
_UNSHUFFLE = {1: 4, 2: 2, 4: 1, 8: 1}
_UPSAMPLE_STAGES = {1: 2, 2: 2, 4: 2, 8: 3}


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs; returns ``conv5(...) * 0.2 + x`` (shape preserved)."""

    def __init__(self, num_feat: int = 64, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        # Residual scaling 0.2 is part of the trained function, not a training trick.
        return x5 * 0.2 + x


class RRDB(nn.Module):
    """Residual-in-residual dense block: three RDBs, output ``out * 0.2 + x``."""

    def __init__(self, num_feat: int, num_grow_ch: int = 32) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: Tensor) -> Tensor:
        out = self.rdb3(self.rdb2(self.rdb1(x)))
        return out * 0.2 + x


class RRDBNet(nn.Module):
    """ESRGAN generator, BasicSR flavour (scale 1, 2, 4 or 8).

    Scale 1 and 2 pixel-unshuffle the input by 4 and 2 (so ``conv_first`` sees 48 or 12 channels)
    and then upsample x4 like the x4 model; scale 8 adds a third nearest+conv stage (``conv_up3``).
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        scale: int = 4,
        num_feat: int = 64,
        num_block: int = 23,
        num_grow_ch: int = 32,
    ) -> None:
        super().__init__()
        if scale not in _UNSHUFFLE:
            raise ModelError(f"RRDBNet scale {scale} is not supported", hint="use 1, 2, 4 or 8")
        self.scale = scale
        self.unshuffle = _UNSHUFFLE[scale]
        self.conv_first = nn.Conv2d(num_in_ch * self.unshuffle**2, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(num_feat, num_grow_ch) for _ in range(num_block)))
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        if scale == 8:
            self.conv_up3 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        feat = F.pixel_unshuffle(x, self.unshuffle) if self.unshuffle > 1 else x
        feat = self.conv_first(feat)
        feat = feat + self.conv_body(self.body(feat))
        ups = [self.conv_up1, self.conv_up2] + ([self.conv_up3] if self.scale == 8 else [])
        for conv in ups:
            feat = self.lrelu(conv(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))


@dataclass(frozen=True)
class RRDBParams:
    """Hyper-parameters of an :class:`RRDBNet` (keyword names of its constructor)."""

    num_in_ch: int = 3
    num_out_ch: int = 3
    scale: int = 4
    num_feat: int = 64
    num_block: int = 23
    num_grow_ch: int = 32


def receptive_radius(scale: int, num_block: int) -> int:
    """Pixels of input context on each side that can influence one output pixel.

    Walks back from the output: each 3x3 conv adds 1 pixel at its resolution, a nearest x2
    upsample halves the radius (rounded up), pixel-unshuffle by ``u`` multiplies it by ``u`` and
    adds ``u - 1`` for the position inside the unshuffle cell.
    """
    radius = 2  # conv_hr, conv_last at output resolution
    for _ in range(_UPSAMPLE_STAGES[scale]):
        radius = math.ceil((radius + 1) / 2)  # conv_upK, then undo the nearest x2
    radius += 2 + 15 * num_block  # conv_first, 5 convs x 3 RDBs per block, conv_body
    u = _UNSHUFFLE[scale]
    return radius * u + (u - 1)


def descriptor(params: RRDBParams) -> ModelDescriptor:
    """Engine contract for an RRDBNet: unshuffle scales need sizes multiple of the factor."""
    u = _UNSHUFFLE[params.scale]
    return ModelDescriptor(
        arch="rrdbnet",
        scale=params.scale,
        in_channels=params.num_in_ch,
        out_channels=params.num_out_ch,
        size_multiple=u,
        min_size=u,
        receptive_radius=receptive_radius(params.scale, params.num_block),
    )


# --------------------------------------------------------------------------- key schemes

_ESRGAN_TOP = {
    "trunk_conv": "conv_body",
    "upconv1": "conv_up1",
    "upconv2": "conv_up2",
    "upconv3": "conv_up3",
    "HRconv": "conv_hr",
}
_BASICSR_TO_ESRGAN_TOP = {v: k for k, v in _ESRGAN_TOP.items()}
_OLD_BLOCK = re.compile(r"^model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)$")
_OLD_CONV = re.compile(r"^model\.(\d+)\.(weight|bias)$")
_OLD_TRUNK = re.compile(r"^model\.1\.sub\.(\d+)\.(weight|bias)$")


def detect_scheme(state: Mapping[str, Tensor]) -> KeyScheme:
    """Which RRDBNet key scheme a state dict uses; ModelError when none fits."""
    if "conv_first.weight" in state and any(k.startswith("body.") for k in state):
        return "basicsr"
    if any(k.startswith("RRDB_trunk.") for k in state):
        return "esrgan"
    if "model.0.weight" in state and any(k.startswith("model.1.sub.") for k in state):
        return "old"
    raise ModelError(
        "state dict is not an RRDBNet checkpoint (no conv_first/body, RRDB_trunk or model.1.sub keys)"
    )


def to_basicsr(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename any supported RRDBNet key scheme to BasicSR names (tensors are not copied)."""
    scheme = detect_scheme(state)
    if scheme == "basicsr":
        return dict(state)
    if scheme == "esrgan":
        return {_esrgan_key_to_basicsr(k): v for k, v in state.items()}
    return _old_to_basicsr(state)


def from_basicsr(state: Mapping[str, Tensor], scheme: KeyScheme) -> dict[str, Tensor]:
    """Rename BasicSR keys to ``scheme`` (inverse of :func:`to_basicsr`; used by tests and tools)."""
    if scheme == "basicsr":
        return dict(state)
    if scheme == "esrgan":
        out: dict[str, Tensor] = {}
        for key, value in state.items():
            m = re.match(r"^body\.(\d+)\.rdb(\d)\.(.*)$", key)
            if m:
                out[f"RRDB_trunk.{m[1]}.RDB{m[2]}.{m[3]}"] = value
                continue
            top, _, leaf = key.partition(".")
            out[f"{_BASICSR_TO_ESRGAN_TOP.get(top, top)}.{leaf}"] = value
        return out
    return _basicsr_to_old(state)


def _esrgan_key_to_basicsr(key: str) -> str:
    m = re.match(r"^RRDB_trunk\.(\d+)\.RDB(\d)\.(.*)$", key)
    if m:
        return f"body.{m[1]}.rdb{m[2]}.{m[3]}"
    top, _, leaf = key.partition(".")
    return f"{_ESRGAN_TOP.get(top, top)}.{leaf}"


def _old_top_names(n_up: int) -> list[str]:
    """BasicSR names of the old-arch top-level convs after ``model.1``, in Sequential order."""
    return [f"conv_up{i + 1}" for i in range(n_up)] + ["conv_hr", "conv_last"]


def _old_top_indices(n_up: int) -> list[int]:
    # Each upconv stage is (Upsample, Conv, LeakyReLU) -> conv at 3, 6, 9...; then conv, act, conv.
    ups = [3 + 3 * i for i in range(n_up)]
    hr = 2 + 3 * n_up
    return [*ups, hr, hr + 2]


def _old_to_basicsr(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    out: dict[str, Tensor] = {}
    top: dict[int, dict[str, Tensor]] = {}
    trunk: dict[int, dict[str, Tensor]] = {}
    for key, value in state.items():
        if m := _OLD_BLOCK.match(key):
            out[f"body.{m[1]}.rdb{m[2]}.conv{m[3]}.{m[4]}"] = value
        elif m := _OLD_TRUNK.match(key):
            trunk.setdefault(int(m[1]), {})[m[2]] = value
        elif m := _OLD_CONV.match(key):
            top.setdefault(int(m[1]), {})[m[2]] = value
        else:
            out[key] = value  # left as is: strict loading will name it as unexpected
    for tensors in trunk.values():  # model.1.sub.<num_block> is the trunk conv
        for leaf, value in tensors.items():
            out[f"conv_body.{leaf}"] = value
    names: dict[int, str] = {0: "conv_first"}
    later = sorted(i for i in top if i != 0)
    n_up = len(later) - 2
    if n_up >= 1 and later == _old_top_indices(n_up):
        names.update(zip(later, _old_top_names(n_up), strict=True))
    for idx, tensors in top.items():
        for leaf, value in tensors.items():
            out[f"{names.get(idx, f'model.{idx}')}.{leaf}"] = value
    return out


def _basicsr_to_old(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    num_block = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("body."))
    n_up = sum(1 for i in (1, 2, 3) if f"conv_up{i}.weight" in state)
    names = dict(zip(_old_top_names(n_up), _old_top_indices(n_up), strict=True))
    names["conv_first"] = 0
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        m = re.match(r"^body\.(\d+)\.rdb(\d)\.conv(\d)\.(weight|bias)$", key)
        if m:
            out[f"model.1.sub.{m[1]}.RDB{m[2]}.conv{m[3]}.0.{m[4]}"] = value
            continue
        top, _, leaf = key.partition(".")
        if top == "conv_body":
            out[f"model.1.sub.{num_block}.{leaf}"] = value
        elif top in names:
            out[f"model.{names[top]}.{leaf}"] = value
        else:
            out[key] = value
    return out


def detect_params(state: Mapping[str, Tensor]) -> RRDBParams:
    """Read RRDBNet hyper-parameters from a state dict in any supported key scheme.

    nf from ``conv_first`` out-channels, gc from ``body.0.rdb1.conv1`` out-channels, nb from the
    largest block index, scale from ``conv_first`` in-channels (48: x1, 12: x2, else x4/x8 by the
    number of upsampling convs).
    """
    sd = to_basicsr(state)
    try:
        first = sd["conv_first.weight"]
        num_grow_ch = int(sd["body.0.rdb1.conv1.weight"].shape[0])
        last = sd["conv_last.weight"]
    except KeyError as exc:
        raise ModelError(f"RRDBNet state dict lacks {exc.args[0]!r}") from None
    num_block = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("body."))
    in_ch = int(first.shape[1])
    n_up = sum(1 for i in (1, 2, 3) if f"conv_up{i}.weight" in sd)
    if in_ch == 48 and n_up == 2:
        scale, num_in_ch = 1, 3
    elif in_ch == 12 and n_up == 2:
        scale, num_in_ch = 2, 3
    else:
        scale, num_in_ch = (8 if n_up == 3 else 4), in_ch
    return RRDBParams(
        num_in_ch=num_in_ch,
        num_out_ch=int(last.shape[0]),
        scale=scale,
        num_feat=int(first.shape[0]),
        num_block=num_block,
        num_grow_ch=num_grow_ch,
    )
