"""Swin2SR (mv-lab/swin2sr): SwinV2 transformer super-resolution with the official key names.

Tensor contract: ``forward(x)`` takes ``(N, in_chans, H, W)`` float RGB in ``[0, 1]`` and returns
``(N, in_chans, H*upscale, W*upscale)``, not clamped. Any ``H, W >= 1``: the input is padded at the
bottom/right to a multiple of ``window_size`` (reflect, as upstream; replicate where reflect is
impossible because the frame is smaller than the pad) and the output is cropped back.

Structure (as upstream): ``(x - mean) * img_range`` -> ``conv_first`` -> ``patch_embed`` (1x1 conv +
LayerNorm) -> RSTB ``layers`` (SwinV2 post-norm blocks: cosine attention with a clamped
``logit_scale``, continuous position bias ``16*sigmoid(cpb_mlp(table))``, qkv without bias and
``cat(q_bias, 0, v_bias)`` added; shifted windows masked with -100) -> ``norm`` ->
``conv_after_body`` + residual -> head -> ``/ img_range + mean``.

Heads (``upsampler``), each with its upstream keys:

* ``pixelshuffle`` (ClassicalSR): ``conv_before_upsample.0``, ``upsample.{0,2,..}``, ``conv_last``.
* ``pixelshuffledirect`` (Lightweight): ``upsample.0`` (conv to ``3*s^2``) + PixelShuffle.
* ``nearest+conv`` (RealworldSR, x4 only): ``conv_before_upsample.0``, ``conv_up1/2``, ``conv_hr``,
  ``conv_last`` with nearest x2 twice.
* ``pixelshuffle_aux`` (CompressedSR): the pixelshuffle head plus ``conv_bicubic`` on a bicubic
  upsample of the (padded, normalised) input and an auxiliary LR output (``conv_aux``,
  ``conv_after_aux.0``). :meth:`Swin2SR.forward` returns the SR image only; ``forward_aux`` both.

Buffers: official files carry ``relative_coords_table`` and ``relative_position_index`` per block and
``attn_mask`` for each shifted block, computed for the training ``img_size``. They are registered
here with the same names and shapes so those files load with ``strict=True``. The stored mask is
used for inputs of exactly that size; for any other size the mask is recomputed and cached per
``(H, W, device, dtype)`` (one cache shared by all blocks of a model, since they share window and
shift).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, cast

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from vsrflow.errors import ModelError
from vsrflow.models.descriptor import ModelDescriptor

Upsampler = Literal["pixelshuffle", "pixelshuffledirect", "nearest+conv", "pixelshuffle_aux"]
UPSAMPLERS: tuple[Upsampler, ...] = ("pixelshuffle", "pixelshuffledirect", "nearest+conv", "pixelshuffle_aux")
DEFAULT_RGB_MEAN = (0.4488, 0.4371, 0.4040)
NUM_FEAT = 64  # hard-coded upstream for every reconstruction head
#: Default tile core side (input pixels) for the engine: bounded memory at 1080p and above.
DEFAULT_TILE = 256
#: Logit scale clamp upstream: log(1 / 0.01).
_LOGIT_MAX = math.log(100.0)


def window_partition(x: Tensor, ws: int) -> Tensor:
    """(B, H, W, C) -> (B*nW, ws, ws, C); H and W multiples of ``ws``."""
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, ws, ws, c)


def window_reverse(windows: Tensor, ws: int, h: int, w: int) -> Tensor:
    """(B*nW, ws, ws, C) -> (B, H, W, C); inverse of :func:`window_partition`."""
    c = windows.shape[-1]
    b = windows.shape[0] // ((h // ws) * (w // ws))
    x = windows.view(b, h // ws, w // ws, ws, ws, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)


def relative_coords_table(ws: int) -> Tensor:
    """(1, 2ws-1, 2ws-1, 2) log-spaced relative coordinates in [-1, 1] (SwinV2 continuous bias input)."""
    coords = torch.arange(-(ws - 1), ws, dtype=torch.float32)
    table = (
        torch.stack(torch.meshgrid(coords, coords, indexing="ij")).permute(1, 2, 0).contiguous().unsqueeze(0)
    )
    table = table / (ws - 1) * 8
    return torch.sign(table) * torch.log2(table.abs() + 1.0) / math.log2(8)


def relative_position_index(ws: int) -> Tensor:
    """(ws*ws, ws*ws) int64 index of each token pair into the flattened (2ws-1)^2 bias table."""
    coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
    rel[:, :, 0] += ws - 1
    rel[:, :, 1] += ws - 1
    rel[:, :, 0] *= 2 * ws - 1
    return rel.sum(-1)


def shift_mask(h: int, w: int, ws: int, shift: int) -> Tensor:
    """(nW, ws*ws, ws*ws) float32 mask: 0 inside one region of the rolled frame, -100 across regions."""
    img = torch.zeros((1, h, w, 1))
    bounds = (slice(0, -ws), slice(-ws, -shift), slice(-shift, None))
    label = 0
    for hs in bounds:
        for wsl in bounds:
            img[:, hs, wsl, :] = label
            label += 1
    windows = window_partition(img, ws).view(-1, ws * ws)
    diff = windows.unsqueeze(1) - windows.unsqueeze(2)
    return diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)


class _MaskCache:
    """Shift masks per (H, W, device, dtype): computed once per input size, shared by all blocks."""

    def __init__(self) -> None:
        self._masks: dict[tuple[int, int, int, int, str, torch.dtype], Tensor] = {}

    def get(self, h: int, w: int, ws: int, shift: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        key = (h, w, ws, shift, str(device), dtype)
        mask = self._masks.get(key)
        if mask is None:
            mask = shift_mask(h, w, ws, shift).to(device=device, dtype=dtype)
            self._masks[key] = mask
        return mask

    def __len__(self) -> int:
        return len(self._masks)


class Mlp(nn.Module):
    """``fc2(gelu(fc1(x)))`` over the channel dimension."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return cast(Tensor, self.fc2(self.act(self.fc1(x))))


class WindowAttention(nn.Module):
    """SwinV2 window attention: cosine similarity, clamped learnt temperature, continuous bias."""

    relative_coords_table: Tensor
    relative_position_index: Tensor

    def __init__(self, dim: int, ws: int, num_heads: int) -> None:
        super().__init__()
        self.ws = ws
        self.num_heads = num_heads
        self.logit_scale = nn.Parameter(torch.log(10 * torch.ones((num_heads, 1, 1))))
        self.cpb_mlp = nn.Sequential(
            nn.Linear(2, 512, bias=True), nn.ReLU(inplace=True), nn.Linear(512, num_heads, bias=False)
        )
        self.register_buffer("relative_coords_table", relative_coords_table(ws))
        self.register_buffer("relative_position_index", relative_position_index(ws))
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """x: (B*nW, N, C) tokens of each window; mask: (nW, N, N) or None."""
        b, n, c = x.shape
        bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias).reshape(b, n, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
        attn = attn * torch.clamp(self.logit_scale, max=_LOGIT_MAX).exp()
        table = self.cpb_mlp(self.relative_coords_table).view(-1, self.num_heads)
        bias_hnn = table[self.relative_position_index.view(-1)].view(n, n, -1).permute(2, 0, 1)
        attn = attn + 16 * torch.sigmoid(bias_hnn).unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(b // nw, nw, self.num_heads, n, n) + mask.to(attn.dtype).unsqueeze(1).unsqueeze(
                0
            )
            attn = attn.view(-1, self.num_heads, n, n)
        attn = attn.softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(b, n, c)
        return cast(Tensor, self.proj(out))


class SwinTransformerBlock(nn.Module):
    """Post-norm SwinV2 block: ``x + norm1(attn(x))`` then ``x + norm2(mlp(x))``."""

    attn_mask: Tensor | None

    def __init__(
        self,
        dim: int,
        resolution: int,
        num_heads: int,
        ws: int,
        shift: int,
        mlp_ratio: float,
        masks: _MaskCache,
    ) -> None:
        super().__init__()
        if resolution <= ws:  # as upstream: the window covers the whole (training) patch, no shift
            ws, shift = resolution, 0
        self.ws, self.shift, self.resolution = ws, shift, resolution
        self._masks = masks
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, ws, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        # Official checkpoints hold the mask for the training size; None is not a state-dict entry.
        self.register_buffer("attn_mask", shift_mask(resolution, resolution, ws, shift) if shift else None)

    def _mask(self, h: int, w: int, device: torch.device, dtype: torch.dtype) -> Tensor | None:
        if not self.shift:
            return None
        if (h, w) == (self.resolution, self.resolution) and self.attn_mask is not None:
            return self.attn_mask
        return self._masks.get(h, w, self.ws, self.shift, device, dtype)

    def forward(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        h, w = size
        b, _, c = x.shape
        ws, s = self.ws, self.shift
        y = x.view(b, h, w, c)
        if s:
            y = torch.roll(y, shifts=(-s, -s), dims=(1, 2))
        win = window_partition(y, ws).view(-1, ws * ws, c)
        win = self.attn(win, self._mask(h, w, x.device, x.dtype))
        y = window_reverse(win.view(-1, ws, ws, c), ws, h, w)
        if s:
            y = torch.roll(y, shifts=(s, s), dims=(1, 2))
        x = x + self.norm1(y.reshape(b, h * w, c))
        return x + self.norm2(self.mlp(x))


class BasicLayer(nn.Module):
    """``depth`` blocks, every second one shifted by half a window."""

    def __init__(
        self,
        dim: int,
        resolution: int,
        depth: int,
        num_heads: int,
        ws: int,
        mlp_ratio: float,
        masks: _MaskCache,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(
                dim, resolution, num_heads, ws, 0 if i % 2 == 0 else ws // 2, mlp_ratio, masks
            )
            for i in range(depth)
        )

    def forward(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        for blk in self.blocks:
            x = blk(x, size)
        return x


class PatchEmbed(nn.Module):
    """(B, C, H, W) -> (B, H*W, C) through a 1x1 ``proj`` conv and an optional LayerNorm ``norm``."""

    def __init__(self, dim: int, *, norm: bool) -> None:
        super().__init__()
        self.proj = nn.Conv2d(dim, dim, kernel_size=1, stride=1)
        self.norm = nn.LayerNorm(dim) if norm else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.proj(x).flatten(2).transpose(1, 2)
        return self.norm(x) if self.norm is not None else x


def _unembed(x: Tensor, size: tuple[int, int]) -> Tensor:
    b, _, c = x.shape
    return x.transpose(1, 2).reshape(b, c, size[0], size[1])


def _resi_conv(dim: int, resi_connection: str) -> nn.Module:
    if resi_connection == "1conv":
        return nn.Conv2d(dim, dim, 3, 1, 1)
    if resi_connection == "3conv":
        return nn.Sequential(
            nn.Conv2d(dim, dim // 4, 3, 1, 1),
            nn.LeakyReLU(negative_slope=0.2, inplace=True),
            nn.Conv2d(dim // 4, dim // 4, 1, 1, 0),
            nn.LeakyReLU(negative_slope=0.2, inplace=True),
            nn.Conv2d(dim // 4, dim, 3, 1, 1),
        )
    raise ModelError(f"Swin2SR resi_connection {resi_connection!r} is not supported", hint="1conv or 3conv")


class RSTB(nn.Module):
    """Residual Swin Transformer Block: ``patch_embed(conv(unembed(blocks(x)))) + x``."""

    def __init__(
        self,
        dim: int,
        resolution: int,
        depth: int,
        num_heads: int,
        ws: int,
        mlp_ratio: float,
        resi_connection: str,
        masks: _MaskCache,
    ) -> None:
        super().__init__()
        self.residual_group = BasicLayer(dim, resolution, depth, num_heads, ws, mlp_ratio, masks)
        self.conv = _resi_conv(dim, resi_connection)
        self.patch_embed = PatchEmbed(dim, norm=False)

    def forward(self, x: Tensor, size: tuple[int, int]) -> Tensor:
        y = _unembed(self.residual_group(x, size), size)
        return cast(Tensor, self.patch_embed(self.conv(y))) + x


def _pixelshuffle_upsample(scale: int, num_feat: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    if scale & (scale - 1) == 0:
        for _ in range(int(math.log2(scale))):
            layers += [nn.Conv2d(num_feat, 4 * num_feat, 3, 1, 1), nn.PixelShuffle(2)]
    elif scale == 3:
        layers += [nn.Conv2d(num_feat, 9 * num_feat, 3, 1, 1), nn.PixelShuffle(3)]
    else:
        raise ModelError(f"Swin2SR pixelshuffle scale {scale} is not supported", hint="use 2, 3, 4 or 8")
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class Swin2SRParams:
    """Hyper-parameters of :class:`Swin2SR` (constructor keyword names; upstream names and meaning).

    ``img_size`` is the training patch size: it only fixes the shape of the stored ``attn_mask``
    buffers (and, at or below ``window_size``, the window), never the input size.
    """

    upscale: int = 2
    in_chans: int = 3
    img_size: int = 64
    window_size: int = 8
    img_range: float = 1.0
    depths: tuple[int, ...] = (6, 6, 6, 6, 6, 6)
    embed_dim: int = 180
    num_heads: tuple[int, ...] = (6, 6, 6, 6, 6, 6)
    mlp_ratio: float = 2.0
    upsampler: Upsampler = "pixelshuffle"
    resi_connection: str = "1conv"
    rgb_mean: tuple[float, ...] = field(default=DEFAULT_RGB_MEAN)

    def __post_init__(self) -> None:
        # Registry params arrive as lists (JSON-ish); keep the dataclass hashable and comparable.
        object.__setattr__(self, "depths", tuple(int(d) for d in self.depths))
        object.__setattr__(self, "num_heads", tuple(int(h) for h in self.num_heads))
        object.__setattr__(self, "rgb_mean", tuple(float(m) for m in self.rgb_mean))


class Swin2SR(nn.Module):
    """Swin2SR super-resolution network (see the module docstring for contract and keys)."""

    mean: Tensor

    def __init__(
        self,
        upscale: int = 2,
        in_chans: int = 3,
        img_size: int = 64,
        window_size: int = 8,
        img_range: float = 1.0,
        depths: Sequence[int] = (6, 6, 6, 6, 6, 6),
        embed_dim: int = 180,
        num_heads: Sequence[int] = (6, 6, 6, 6, 6, 6),
        mlp_ratio: float = 2.0,
        upsampler: Upsampler = "pixelshuffle",
        resi_connection: str = "1conv",
        rgb_mean: Sequence[float] = DEFAULT_RGB_MEAN,
    ) -> None:
        super().__init__()
        if upsampler not in UPSAMPLERS:
            raise ModelError(f"Swin2SR upsampler {upsampler!r} is not supported", hint=", ".join(UPSAMPLERS))
        if len(depths) != len(num_heads):
            raise ModelError(
                f"Swin2SR depths {list(depths)} and num_heads {list(num_heads)} differ in length"
            )
        if upsampler == "nearest+conv" and upscale != 4:
            raise ModelError(f"Swin2SR nearest+conv head is x4 only, got x{upscale}")
        if embed_dim % max(1, max(num_heads)) != 0 or any(embed_dim % h for h in num_heads):
            raise ModelError(f"Swin2SR embed_dim {embed_dim} is not divisible by num_heads {list(num_heads)}")
        self.upscale, self.upsampler, self.window_size = upscale, upsampler, window_size
        self.img_range = float(img_range)
        mean = (
            torch.tensor(rgb_mean, dtype=torch.float32).view(1, -1, 1, 1)
            if in_chans == 3
            else torch.zeros(1, 1, 1, 1)
        )
        # Not a state-dict entry upstream (a plain attribute there): non-persistent buffer here.
        self.register_buffer("mean", mean, persistent=False)
        self._masks = _MaskCache()

        self.conv_first = nn.Conv2d(in_chans, embed_dim, 3, 1, 1)
        self.patch_embed = PatchEmbed(embed_dim, norm=True)
        self.layers = nn.ModuleList(
            RSTB(embed_dim, img_size, d, h, window_size, mlp_ratio, resi_connection, self._masks)
            for d, h in zip(depths, num_heads, strict=True)
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.conv_after_body = _resi_conv(embed_dim, resi_connection)

        if upsampler in ("pixelshuffle", "pixelshuffle_aux", "nearest+conv"):
            self.conv_before_upsample = nn.Sequential(
                nn.Conv2d(embed_dim, NUM_FEAT, 3, 1, 1), nn.LeakyReLU(inplace=True)
            )
        if upsampler == "pixelshuffle":
            self.upsample = _pixelshuffle_upsample(upscale, NUM_FEAT)
            self.conv_last = nn.Conv2d(NUM_FEAT, in_chans, 3, 1, 1)
        elif upsampler == "pixelshuffle_aux":
            self.conv_bicubic = nn.Conv2d(in_chans, NUM_FEAT, 3, 1, 1)
            self.conv_aux = nn.Conv2d(NUM_FEAT, in_chans, 3, 1, 1)
            self.conv_after_aux = nn.Sequential(nn.Conv2d(3, NUM_FEAT, 3, 1, 1), nn.LeakyReLU(inplace=True))
            self.upsample = _pixelshuffle_upsample(upscale, NUM_FEAT)
            self.conv_last = nn.Conv2d(NUM_FEAT, in_chans, 3, 1, 1)
        elif upsampler == "pixelshuffledirect":
            self.upsample = nn.Sequential(
                nn.Conv2d(embed_dim, upscale**2 * in_chans, 3, 1, 1), nn.PixelShuffle(upscale)
            )
        else:  # nearest+conv
            self.conv_up1 = nn.Conv2d(NUM_FEAT, NUM_FEAT, 3, 1, 1)
            self.conv_up2 = nn.Conv2d(NUM_FEAT, NUM_FEAT, 3, 1, 1)
            self.conv_hr = nn.Conv2d(NUM_FEAT, NUM_FEAT, 3, 1, 1)
            self.conv_last = nn.Conv2d(NUM_FEAT, in_chans, 3, 1, 1)
            self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    @property
    def cached_masks(self) -> int:
        """Number of shift masks computed for input sizes other than the training size."""
        return len(self._masks)

    def _pad(self, x: Tensor) -> Tensor:
        ws = self.window_size
        h, w = int(x.shape[-2]), int(x.shape[-1])
        ph, pw = (ws - h % ws) % ws, (ws - w % ws) % ws
        if ph:
            x = F.pad(x, (0, 0, 0, ph), mode="reflect" if ph < h else "replicate")
        if pw:
            x = F.pad(x, (0, pw, 0, 0), mode="reflect" if pw < w else "replicate")
        return x

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, C, H, W) shallow features -> deep features of the same shape (H, W window multiples)."""
        size = (int(x.shape[2]), int(x.shape[3]))
        t = self.patch_embed(x)
        for layer in self.layers:
            t = layer(t, size)
        return _unembed(self.norm(t), size)

    def forward_aux(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """SR output and, for the ``pixelshuffle_aux`` head, the auxiliary LR reconstruction."""
        h, w = int(x.shape[2]), int(x.shape[3])
        s = self.upscale
        x = (self._pad(x) - self.mean) * self.img_range
        aux: Tensor | None = None
        if self.upsampler == "pixelshuffle_aux":
            # Upstream quirk kept for parity: the padded frame is resized to the UNPADDED target size.
            bicubic = self.conv_bicubic(
                F.interpolate(x, size=(h * s, w * s), mode="bicubic", align_corners=False)
            )
        feat = self.conv_first(x)
        feat = self.conv_after_body(self.forward_features(feat)) + feat
        if self.upsampler == "pixelshuffle":
            out = self.conv_last(self.upsample(self.conv_before_upsample(feat)))
        elif self.upsampler == "pixelshuffle_aux":
            feat = self.conv_before_upsample(feat)
            aux = self.conv_aux(feat)
            up = (
                self.upsample(self.conv_after_aux(aux))[:, :, : h * s, : w * s]
                + bicubic[:, :, : h * s, : w * s]
            )
            out = self.conv_last(up)
            aux = aux / self.img_range + self.mean
        elif self.upsampler == "pixelshuffledirect":
            out = self.upsample(feat)
        else:
            feat = self.conv_before_upsample(feat)
            feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
            feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
            out = self.conv_last(self.lrelu(self.conv_hr(feat)))
        out = out / self.img_range + self.mean
        return out[:, :, : h * s, : w * s], aux

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_aux(x)[0]


# --------------------------------------------------------------------------- detection, descriptor


def _int_shape(state: Mapping[str, Tensor], key: str, dim: int) -> int:
    return int(state[key].shape[dim])


def detect_params(state: Mapping[str, Tensor]) -> Swin2SRParams:
    """Read Swin2SR hyper-parameters from an official-layout state dict (ModelError when not one).

    ``img_range`` cannot be read from weights; every released SR model uses 1.0.
    """
    block = "layers.{i}.residual_group.blocks.{j}."
    if "conv_first.weight" not in state or block.format(i=0, j=0) + "attn.qkv.weight" not in state:
        raise ModelError("state dict is not a Swin2SR checkpoint (no conv_first / layers.0...attn.qkv)")
    embed_dim, in_chans = _int_shape(state, "conv_first.weight", 0), _int_shape(state, "conv_first.weight", 1)
    depths: list[int] = []
    num_heads: list[int] = []
    while block.format(i=len(depths), j=0) + "attn.qkv.weight" in state:
        i = len(depths)
        depth = 0
        while block.format(i=i, j=depth) + "attn.qkv.weight" in state:
            depth += 1
        depths.append(depth)
        num_heads.append(_int_shape(state, block.format(i=i, j=0) + "attn.logit_scale", 0))
    first = block.format(i=0, j=0)
    n_tokens = _int_shape(state, first + "attn.relative_position_index", 0)
    window_size = math.isqrt(n_tokens)
    mlp_ratio = _int_shape(state, first + "mlp.fc1.weight", 0) / embed_dim
    img_size = 64
    mask_key = block.format(i=0, j=1) + "attn_mask"
    if mask_key in state:
        img_size = window_size * math.isqrt(_int_shape(state, mask_key, 0))
    resi = "3conv" if "conv_after_body.0.weight" in state else "1conv"
    upsampler: Upsampler
    if "conv_bicubic.weight" in state:
        upsampler = "pixelshuffle_aux"
    elif "conv_up1.weight" in state:
        upsampler = "nearest+conv"
    elif "conv_before_upsample.0.weight" in state:
        upsampler = "pixelshuffle"
    elif "upsample.0.weight" in state:
        upsampler = "pixelshuffledirect"
    else:
        raise ModelError(
            "Swin2SR checkpoint without an upsampling head (JPEG/denoising variant): "
            "not a super-resolution model"
        )
    if upsampler == "nearest+conv":
        upscale = 4
    elif upsampler == "pixelshuffledirect":
        upscale = math.isqrt(_int_shape(state, "upsample.0.weight", 0) // in_chans)
    elif _int_shape(state, "upsample.0.weight", 0) == 9 * NUM_FEAT:
        upscale = 3
    else:
        upscale = 2 ** sum(1 for k in state if k.startswith("upsample.") and k.endswith(".weight"))
    return Swin2SRParams(
        upscale=upscale,
        in_chans=in_chans,
        img_size=img_size,
        window_size=window_size,
        depths=tuple(depths),
        embed_dim=embed_dim,
        num_heads=tuple(num_heads),
        mlp_ratio=mlp_ratio,
        upsampler=upsampler,
        resi_connection=resi,
    )


def descriptor(params: Swin2SRParams) -> ModelDescriptor:
    """Engine contract: window-multiple sizes, unbounded context, tiled by default.

    Shifted windows through ``sum(depths)`` blocks make the receptive field effectively global, so
    tiles are never bit-exact; the default tile keeps activations bounded (about 1.5 GB fp32 for a
    320x320 region of the classical model) at any frame size.
    """
    return ModelDescriptor(
        arch="swin2sr",
        scale=params.upscale,
        in_channels=params.in_chans,
        out_channels=params.in_chans,
        size_multiple=params.window_size,
        min_size=params.window_size,
        receptive_radius=None,
        default_tile=DEFAULT_TILE,
    )


def flops_per_pixel(params: Swin2SRParams) -> float:
    """Approximate FLOPs (2 x MACs) per LR input pixel, for docs and speed classes."""
    c, ws = params.embed_dim, params.window_size
    hidden = int(c * params.mlp_ratio)
    # Per token and block: qkv, q@k and attn@v over the window, proj, two MLP layers.
    per_block = 3 * c * c + 2 * ws * ws * c + c * c + 2 * c * hidden
    rstb_convs = len(params.depths) * (9 * c * c + c * c)  # 3x3 conv + 1x1 patch_embed per RSTB
    macs = 9 * params.in_chans * c + c * c + sum(params.depths) * per_block + rstb_convs + 9 * c * c
    s = params.upscale
    if params.upsampler == "pixelshuffledirect":
        macs += 9 * c * 3 * s * s
    else:
        macs += 9 * c * NUM_FEAT
        if params.upsampler == "nearest+conv":
            macs += 9 * NUM_FEAT * NUM_FEAT * (4 + 16 + 16) + 9 * NUM_FEAT * 3 * 16
        else:
            stages = int(math.log2(s)) if s & (s - 1) == 0 else 1
            macs += sum(9 * NUM_FEAT * 4 * NUM_FEAT * 4**k for k in range(stages)) + 9 * NUM_FEAT * 3 * s * s
            if params.upsampler == "pixelshuffle_aux":  # conv_bicubic at HR, conv_aux, conv_after_aux
                macs += 9 * 3 * NUM_FEAT * s * s + 2 * 9 * NUM_FEAT * 3
    return 2.0 * macs
