"""SPAN (Swift Parameter-free Attention Network, hongyuanyu/SPAN) in two key forms.

Tensor contract: ``forward(x)`` takes ``(N, num_in_ch, H, W)`` float32 RGB in ``[0, 1]`` and returns
``(N, num_out_ch, H*upscale, W*upscale)`` in roughly ``[0, 1]`` (the net normalises its input as
``(x - rgb_mean) * img_range`` and its output is NOT de-normalised: it was trained that way).

Forms (``form=`` argument; both load with ``strict=True``):

* ``"full"``: the official checkpoint layout. Every :class:`Conv3XC` holds its training branches
  ``sk`` (1x1), ``conv.0`` (1x1 c_in->c_in*g), ``conv.1`` (3x3 -> c_out*g), ``conv.2`` (1x1 -> c_out)
  and the re-parameterised ``eval_conv`` (3x3). As in the official code, inference uses weights
  fused from the branches (recomputed after every ``load_state_dict``), not the stored eval_conv.
* ``"eval"``: only the fused 3x3 convs, as held in the ncnn exports. Keys per Conv3XC are
  ``<name>.eval_conv.weight`` / ``.bias``; the rest is shared: ``conv_cat.{weight,bias}`` (1x1,
  4*C -> C), ``upsampler.0.{weight,bias}`` (3x3, C -> out*upscale^2). Conv3XC names: ``conv_1``,
  ``block_{1..6}.c{1,2,3}_r``, ``conv_2``.

:func:`fuse_state_dict` turns a full-form state dict into the eval form.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from vsrflow.errors import ModelError
from vsrflow.models.descriptor import ModelDescriptor

SpanForm = Literal["full", "eval"]
DEFAULT_RGB_MEAN = (0.4488, 0.4371, 0.4040)


class Conv3XC(nn.Module):
    """A 3x3 conv that was trained as ``1x1 -> 3x3 -> 1x1 (+ 1x1 skip)`` and runs as one 3x3 conv."""

    def __init__(self, c_in: int, c_out: int, gain: int = 2, *, form: SpanForm = "full") -> None:
        super().__init__()
        self.form = form
        if form == "full":
            self.sk = nn.Conv2d(c_in, c_out, 1)
            self.conv = nn.Sequential(
                nn.Conv2d(c_in, c_in * gain, 1),
                nn.Conv2d(c_in * gain, c_out * gain, 3),
                nn.Conv2d(c_out * gain, c_out, 1),
            )
            # Keep eval_conv in sync with freshly loaded branches (the official code refuses to
            # trust the stored eval_conv and re-fuses on every eval forward).
            self.register_load_state_dict_post_hook(lambda module, _keys: module.fuse())
        self.eval_conv = nn.Conv2d(c_in, c_out, 3, 1, 1)
        self.eval_conv.weight.requires_grad_(False)
        self.eval_conv.bias.requires_grad_(False)  # type: ignore[union-attr,unused-ignore]
        if form == "full":
            self.fuse()

    @torch.no_grad()
    def fuse(self) -> None:
        """Write the branch composition into ``eval_conv`` (no-op in eval form)."""
        if self.form != "full":
            return
        c0, c1, c2 = (cast(nn.Conv2d, m) for m in self.conv)
        weight, bias = fused_weights(
            c0.weight, c0.bias, c1.weight, c1.bias, c2.weight, c2.bias, self.sk.weight, self.sk.bias
        )
        self.eval_conv.weight.copy_(weight)
        self.eval_conv.bias.copy_(bias)  # type: ignore[union-attr,unused-ignore]

    def forward(self, x: Tensor) -> Tensor:
        if self.training and self.form == "full":
            return self.conv(F.pad(x, (1, 1, 1, 1))) + self.sk(x)
        return self.eval_conv(x)


def fused_weights(
    w1: Tensor,
    b1: Tensor | None,
    w2: Tensor,
    b2: Tensor | None,
    w3: Tensor,
    b3: Tensor | None,
    wk: Tensor,
    bk: Tensor | None,
) -> tuple[Tensor, Tensor]:
    """Compose ``1x1(w1) -> 3x3(w2) -> 1x1(w3)`` plus a 1x1 skip ``wk`` into one 3x3 conv.

    Shapes: w1 ``(M, Cin, 1, 1)``, w2 ``(N, M, 3, 3)``, w3 ``(Cout, N, 1, 1)``, wk ``(Cout, Cin, 1, 1)``.
    Returns weight ``(Cout, Cin, 3, 3)`` and bias ``(Cout,)``. The bias of the first 1x1 passes
    through the 3x3 as if every tap saw it, exactly like the official re-parameterisation.
    """
    a, c, k = w1[:, :, 0, 0], w3[:, :, 0, 0], wk[:, :, 0, 0]
    weight = torch.einsum("on,nmhw,mi->oihw", c, w2, a)
    weight[:, :, 1, 1] += k
    zeros = torch.zeros
    b1_ = b1 if b1 is not None else zeros(w1.shape[0], dtype=w1.dtype, device=w1.device)
    b2_ = b2 if b2 is not None else zeros(w2.shape[0], dtype=w2.dtype, device=w2.device)
    b3_ = b3 if b3 is not None else zeros(w3.shape[0], dtype=w3.dtype, device=w3.device)
    bk_ = bk if bk is not None else zeros(wk.shape[0], dtype=wk.dtype, device=wk.device)
    mid = torch.einsum("nmhw,m->n", w2, b1_) + b2_
    bias = c @ mid + b3_ + bk_
    return weight, bias


class SPAB(nn.Module):
    """Parameter-free attention block: ``(c3 + x) * (sigmoid(c3) - 0.5)``.

    Returns ``(out, silu(c1(x)), attention)``; the second output is the *activated* c1 feature
    because the official SiLU is in-place (the ncnn export confirms it).
    """

    def __init__(self, channels: int, *, form: SpanForm) -> None:
        super().__init__()
        self.c1_r = Conv3XC(channels, channels, 2, form=form)
        self.c2_r = Conv3XC(channels, channels, 2, form=form)
        self.c3_r = Conv3XC(channels, channels, 2, form=form)
        self.act1 = nn.SiLU()

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out1 = self.act1(self.c1_r(x))
        out2 = self.act1(self.c2_r(out1))
        out3 = self.c3_r(out2)
        sim_att = torch.sigmoid(out3) - 0.5
        return (out3 + x) * sim_att, out1, sim_att


class SPAN(nn.Module):
    """SPAN generator with six SPAB blocks (official layout; see the module docstring for forms)."""

    mean: Tensor

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        feature_channels: int = 48,
        upscale: int = 4,
        img_range: float = 255.0,
        rgb_mean: tuple[float, float, float] = DEFAULT_RGB_MEAN,
        form: SpanForm = "full",
    ) -> None:
        super().__init__()
        self.form = form
        self.img_range = img_range
        # A buffer would appear in the state dict and break strict loading of official files.
        self.register_buffer("mean", torch.tensor(rgb_mean).view(1, 3, 1, 1), persistent=False)
        c = feature_channels
        self.conv_1 = Conv3XC(num_in_ch, c, 2, form=form)
        self.block_1 = SPAB(c, form=form)
        self.block_2 = SPAB(c, form=form)
        self.block_3 = SPAB(c, form=form)
        self.block_4 = SPAB(c, form=form)
        self.block_5 = SPAB(c, form=form)
        self.block_6 = SPAB(c, form=form)
        self.conv_cat = nn.Conv2d(c * 4, c, 1)
        self.conv_2 = Conv3XC(c, c, 2, form=form)
        self.upsampler = nn.Sequential(
            nn.Conv2d(c, num_out_ch * upscale**2, 3, 1, 1), nn.PixelShuffle(upscale)
        )

    def forward(self, x: Tensor) -> Tensor:
        x = (x - self.mean.to(x.dtype)) * self.img_range
        feat = self.conv_1(x)
        b1, _, _ = self.block_1(feat)
        b2, _, _ = self.block_2(b1)
        b3, _, _ = self.block_3(b2)
        b4, _, _ = self.block_4(b3)
        b5, _, _ = self.block_5(b4)
        b6, b5_2, _ = self.block_6(b5)
        b6 = self.conv_2(b6)
        out = self.conv_cat(torch.cat([feat, b6, b1, b5_2], 1))
        result: Tensor = self.upsampler(out)
        return result


@dataclass(frozen=True)
class SpanParams:
    """Hyper-parameters of :class:`SPAN` (constructor keyword names)."""

    num_in_ch: int = 3
    num_out_ch: int = 3
    feature_channels: int = 48
    upscale: int = 4
    img_range: float = 255.0
    rgb_mean: tuple[float, float, float] = DEFAULT_RGB_MEAN
    form: SpanForm = "full"


def detect_form(state: Mapping[str, Any]) -> SpanForm:
    """``"full"`` when the training branches are present, else ``"eval"``."""
    return "full" if "conv_1.sk.weight" in state else "eval"


def detect_params(state: Mapping[str, Tensor]) -> SpanParams:
    """Read feature channels, upscale and form from a full- or eval-form state dict."""
    try:
        first = state.get("conv_1.eval_conv.weight")
        if first is None:
            first = state["conv_1.sk.weight"]
        up = state["upsampler.0.weight"]
    except KeyError as exc:
        raise ModelError(f"SPAN state dict lacks {exc.args[0]!r}") from None
    num_in_ch = int(first.shape[1])
    upscale = math.isqrt(int(up.shape[0]) // num_in_ch)
    return SpanParams(num_in_ch, num_in_ch, int(first.shape[0]), upscale, form=detect_form(state))


def fuse_state_dict(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Convert a full-form (official) SPAN state dict into the eval form (fused 3x3 convs)."""
    if detect_form(state) == "eval":
        return dict(state)
    out: dict[str, Tensor] = {}
    for key in state:
        if not key.endswith(".sk.weight"):
            continue
        p = key[: -len("sk.weight")]
        with torch.no_grad():
            w, b = fused_weights(
                state[p + "conv.0.weight"],
                state.get(p + "conv.0.bias"),
                state[p + "conv.1.weight"],
                state.get(p + "conv.1.bias"),
                state[p + "conv.2.weight"],
                state.get(p + "conv.2.bias"),
                state[p + "sk.weight"],
                state.get(p + "sk.bias"),
            )
        out[p + "eval_conv.weight"], out[p + "eval_conv.bias"] = w, b
    for key, value in state.items():
        if ".sk." in key or ".conv." in key or ".eval_conv." in key:
            continue
        out[key] = value
    return out


def descriptor(params: SpanParams) -> ModelDescriptor:
    """Engine contract: 20 3x3 convs at input resolution (conv_1, 6x3 block convs, conv_2) plus the
    3x3 upsampler conv -> 21 pixels of context; the 1x1 conv_cat adds none."""
    return ModelDescriptor(
        arch="span",
        scale=params.upscale,
        in_channels=params.num_in_ch,
        out_channels=params.num_out_ch,
        size_multiple=1,
        min_size=1,
        receptive_radius=21,
    )
