"""EGVSR (Thmen/EGVSR, "efficient GAN-based VSR"): a frame-recurrent x4 network with official key names.

One recurrent step (:meth:`EGVSR.step`, the official ``FRNet.forward``)::

    lr_flow = fnet(lr_curr, lr_prev)                  # (N, 2, H//8*8, W//8*8), tanh * 24 LR px
    lr_flow = reflect-pad by (H % 8, W % 8)           # back to (H, W), as upstream
    hr_flow = 4 * cubic_upsample(lr_flow)             # TecoGAN-style cubic (a = -0.75), x4
    hr_warp = backward_warp(hr_prev, hr_flow)         # bilinear, border padding, align_corners=True
    hr_curr = srnet(lr_curr, space_to_depth(hr_warp)) # TF channel order; 10 res blocks; PixelShuffle(4)

The first frame of a clip has no predecessor: ``lr_prev`` and ``hr_prev`` are zeros (the warp of a
zero frame is zero). Tensors: ``(N, 3, H, W)`` RGB float in ``[0, 1]``; output ``(N, 3, 4H, 4W)``, not
clamped. ``H, W >= 8`` (three 2x2 max-pools in FNet).

Keys (official ``FRNet`` state dict, BD degradation): ``fnet.encoder{1,2,3}.{0,2}``,
``fnet.decoder{1,2,3}.{0,2}``, ``fnet.flow.{0,2}``, ``srnet.conv_in.0``,
``srnet.resblocks.{i}.conv.{0,2}``, ``srnet.conv_up.{0,2}`` (transposed convs the official SRNet
defines but never runs; kept so official files load strictly), ``srnet.conv_out`` and the cubic
kernels buffer, registered twice upstream (``upsample_func.kernels``, ``srnet.upsample_func.kernels``).
:func:`complete_state` adds those deterministic buffers when a file lacks them and refuses files
whose kernels differ from the BD kernels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from vsrflow.errors import ModelError
from vsrflow.models.descriptor import ModelDescriptor

SCALE = 4
#: Frames run (and discarded) before a chunk's first frame so the recurrent state has settled.
DEFAULT_WARMUP = 8
KERNEL_KEYS = ("upsample_func.kernels", "srnet.upsample_func.kernels")


def _conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, 1, 1, bias=True)


def _double(cin: int, cout: int, *, pool: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        _conv(cin, cout),
        nn.LeakyReLU(0.2, inplace=True),
        _conv(cout, cout),
        nn.LeakyReLU(0.2, inplace=True),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers)


class FNet(nn.Module):
    """Optical flow from ``x1`` to ``x2``: 3 encoder stages (pool /8), 3 decoder stages (bilinear x2)."""

    def __init__(self, in_nc: int = 3) -> None:
        super().__init__()
        self.encoder1 = _double(2 * in_nc, 32, pool=True)
        self.encoder2 = _double(32, 64, pool=True)
        self.encoder3 = _double(64, 128, pool=True)
        self.decoder1 = _double(128, 256, pool=False)
        self.decoder2 = _double(256, 128, pool=False)
        self.decoder3 = _double(128, 64, pool=False)
        self.flow = nn.Sequential(_conv(64, 32), nn.LeakyReLU(0.2, inplace=True), _conv(32, 2))

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        out = self.encoder3(self.encoder2(self.encoder1(torch.cat([x1, x2], dim=1))))
        for decoder in (self.decoder1, self.decoder2, self.decoder3):
            out = F.interpolate(decoder(out), scale_factor=2, mode="bilinear", align_corners=False)
        return torch.tanh(self.flow(out)) * 24  # 24 LR pixels: the maximum velocity


def cubic_kernels(scale: int = SCALE, a: float = -0.75) -> Tensor:
    """(scale, 4) cubic-convolution taps for the ``scale`` sub-pixel phases ``d/scale`` (Keys 1981)."""
    cubic = torch.tensor(
        [[0, a, -2 * a, a], [1, 0, -(a + 3), a + 2], [0, -a, 2 * a + 3, -(a + 2)], [0, 0, a, -a]],
        dtype=torch.float32,
    )
    phases = [d / scale for d in range(scale)]
    return torch.stack([cubic @ torch.tensor([1, s, s**2, s**3], dtype=torch.float32) for s in phases])


class BicubicUpsample(nn.Module):
    """TecoGAN/EGVSR cubic upsampling (x4): replicate-pad (1, 2), separable 4-tap phase kernels.

    Not ``F.interpolate(mode='bicubic')``: kernel and sampling grid differ (output pixel ``k`` of
    input pixel ``i`` samples at ``i + k/4``, not at pixel centres).
    """

    kernels: Tensor

    def __init__(self, scale: int = SCALE) -> None:
        super().__init__()
        if scale != 4:
            raise ModelError(f"EGVSR cubic upsampling is x4 only, got x{scale}")
        self.scale = scale
        self.register_buffer("kernels", cubic_kernels(scale))

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        s = self.scale
        x = F.pad(x, (1, 2, 1, 2), mode="replicate")
        k = self.kernels.to(x.dtype)
        out = F.conv2d(x, k.repeat(c, 1).view(-1, 1, s, 1), groups=c)  # (n, c*s, h, w+3)
        out = out.reshape(n, c, s, h, w + 3).permute(0, 1, 3, 2, 4).reshape(n, c, h * s, w + 3)
        out = F.conv2d(out, k.repeat(c, 1).view(-1, 1, 1, s), groups=c)  # (n, c*s, h*s, w)
        return out.reshape(n, c, s, h * s, w).permute(0, 1, 3, 4, 2).reshape(n, c, h * s, w * s)


def space_to_depth(x: Tensor, scale: int = SCALE) -> Tensor:
    """``tf.space_to_depth`` channel order: (N, C, H, W) -> (N, s*s*C, H/s, W/s), offset-major."""
    n, c, h, w = x.shape
    x = x.reshape(n, c, h // scale, scale, w // scale, scale).permute(0, 3, 5, 1, 2, 4)
    return x.reshape(n, scale * scale * c, h // scale, w // scale)


def backward_warp(x: Tensor, flow: Tensor) -> Tensor:
    """Sample ``x`` at ``p + flow(p)`` (pixels): bilinear, border padding, ``align_corners=True``."""
    n, _, h, w = x.shape
    iu = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=flow.dtype).view(1, 1, 1, w).expand(n, -1, h, -1)
    iv = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=flow.dtype).view(1, 1, h, 1).expand(n, -1, -1, w)
    grid = torch.cat([iu, iv], 1)
    norm = torch.cat([flow[:, 0:1] / ((w - 1.0) / 2.0), flow[:, 1:2] / ((h - 1.0) / 2.0)], dim=1)
    grid = (grid + norm).permute(0, 2, 3, 1)
    return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="border", align_corners=True)


class ResidualBlock(nn.Module):
    """``conv(relu(conv(x))) + x`` (no batch norm)."""

    def __init__(self, nf: int = 64) -> None:
        super().__init__()
        self.conv = nn.Sequential(_conv(nf, nf), nn.ReLU(inplace=True), _conv(nf, nf))

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x) + x


class SRNet(nn.Module):
    """Reconstruction: conv_in on [lr, s2d(warped hr_prev)], res blocks, PixelShuffle(4)+ReLU, conv_out."""

    def __init__(
        self, in_nc: int = 3, out_nc: int = 3, nf: int = 64, nb: int = 10, upsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv_in = nn.Sequential(
            nn.Conv2d((SCALE**2 + 1) * in_nc, nf, 3, 1, 1, bias=True), nn.ReLU(inplace=True)
        )
        self.resblocks = nn.Sequential(*(ResidualBlock(nf) for _ in range(nb)))
        # Defined (and trained as dead weights) upstream but unused in forward: kept for strict loading.
        self.conv_up = nn.Sequential(
            nn.ConvTranspose2d(nf, nf, 3, 2, 1, output_padding=1, bias=True),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(nf, nf, 3, 2, 1, output_padding=1, bias=True),
            nn.ReLU(inplace=True),
        )
        self.conv_up_cheap = nn.Sequential(nn.PixelShuffle(SCALE), nn.ReLU(inplace=True))
        self.conv_out = nn.Conv2d(nf // SCALE**2, out_nc, 3, 1, 1, bias=True)
        self.upsample_func = upsample if upsample is not None else BicubicUpsample(SCALE)

    def forward(self, lr_curr: Tensor, hr_prev_s2d: Tensor) -> Tensor:
        out = self.resblocks(self.conv_in(torch.cat([lr_curr, hr_prev_s2d], dim=1)))
        return self.conv_out(self.conv_up_cheap(out))


@dataclass
class EGVSRState:
    """Recurrent state between steps: the previous LR frame and the previous HR output."""

    lr_prev: Tensor
    hr_prev: Tensor


class EGVSR(nn.Module):
    """EGVSR generator (FRNet with the EGVSR configuration: nf 64, nb 10, BD cubic flow upsampling).

    Use :meth:`step` for one frame with explicit state, or :meth:`forward` for a clip ``(T, 3, H, W)``
    processed in order from ``state`` (zeros when None). The module itself is stateless.
    """

    def __init__(self, in_nc: int = 3, out_nc: int = 3, nf: int = 64, nb: int = 10) -> None:
        super().__init__()
        if nf % SCALE**2:
            raise ModelError(f"EGVSR nf {nf} must be a multiple of 16 (PixelShuffle(4) before conv_out)")
        self.scale = SCALE
        self.upsample_func = BicubicUpsample(SCALE)
        self.fnet = FNet(in_nc)
        self.srnet = SRNet(in_nc, out_nc, nf, nb, BicubicUpsample(SCALE))

    def initial_state(self, lr: Tensor) -> EGVSRState:
        """Zeros for a clip whose frames look like ``lr`` (N, C, H, W)."""
        n, c, h, w = lr.shape
        return EGVSRState(torch.zeros_like(lr), lr.new_zeros((n, c, h * SCALE, w * SCALE)))

    def step(self, lr_curr: Tensor, state: EGVSRState | None = None) -> tuple[Tensor, EGVSRState]:
        """One frame: (N, 3, H, W) -> ((N, 3, 4H, 4W), new state)."""
        h, w = int(lr_curr.shape[-2]), int(lr_curr.shape[-1])
        if h < 8 or w < 8:
            raise ModelError(f"EGVSR needs frames of at least 8x8 pixels, got {w}x{h}")
        if state is None:
            state = self.initial_state(lr_curr)
        lr_flow = self.fnet(lr_curr, state.lr_prev)
        pad_h, pad_w = h % 8, w % 8  # FNet's output is (H//8*8, W//8*8): pad back as upstream
        if pad_h or pad_w:
            lr_flow = F.pad(lr_flow, (0, pad_w, 0, pad_h), mode="reflect")
        hr_flow = SCALE * self.upsample_func(lr_flow)
        hr_warp = backward_warp(state.hr_prev, hr_flow)
        hr_curr = self.srnet(lr_curr, space_to_depth(hr_warp, SCALE))
        return hr_curr, EGVSRState(lr_curr, hr_curr)

    def forward(self, clip: Tensor, state: EGVSRState | None = None) -> Tensor:
        """(T, 3, H, W) frames in display order -> (T, 3, 4H, 4W), starting from ``state``."""
        outs = []
        for t in range(clip.shape[0]):
            y, state = self.step(clip[t : t + 1], state)
            outs.append(y)
        return torch.cat(outs)


@dataclass(frozen=True)
class EGVSRParams:
    """Hyper-parameters of :class:`EGVSR` (constructor keyword names)."""

    in_nc: int = 3
    out_nc: int = 3
    nf: int = 64
    nb: int = 10


def complete_state(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Add the deterministic cubic-kernel buffers when missing; refuse non-BD kernels (ModelError)."""
    out = dict(state)
    expected = cubic_kernels()
    for key in KERNEL_KEYS:
        if key not in out:
            out[key] = expected.clone()
        elif tuple(out[key].shape) != tuple(expected.shape) or not torch.allclose(out[key].float(), expected):
            raise ModelError(
                f"EGVSR {key} does not hold the BD cubic kernels: a BI-degradation or modified model",
                hint="only the official BD (Gaussian-blur) EGVSR configuration is supported",
            )
    return out


def detect_params(state: Mapping[str, Tensor]) -> EGVSRParams:
    """Read EGVSR hyper-parameters (nf, nb, channels) from an official-layout state dict."""
    try:
        conv_in = state["srnet.conv_in.0.weight"]
        conv_out = state["srnet.conv_out.weight"]
    except KeyError as exc:
        raise ModelError(f"EGVSR state dict lacks {exc.args[0]!r}") from None
    in_nc = int(conv_in.shape[1]) // (SCALE**2 + 1)
    nb = 1 + max((int(k.split(".")[2]) for k in state if k.startswith("srnet.resblocks.")), default=-1)
    return EGVSRParams(in_nc=in_nc, out_nc=int(conv_out.shape[0]), nf=int(conv_in.shape[0]), nb=nb)


def descriptor(params: EGVSRParams) -> ModelDescriptor:
    """Engine contract: recurrent (whole frames in order, never tiled or batched), x4, >= 8 px."""
    return ModelDescriptor(
        arch="egvsr",
        scale=SCALE,
        in_channels=params.in_nc,
        out_channels=params.out_nc,
        size_multiple=1,
        min_size=8,
        receptive_radius=None,
        temporal=True,
        warmup_frames=DEFAULT_WARMUP,
    )


def flops_per_pixel(params: EGVSRParams) -> float:
    """FLOPs (2 x MACs) per LR input pixel of one recurrent step (FNet + SRNet; warps are minor)."""

    def conv(cin: int, cout: int, area: float = 1.0) -> float:  # area: pixels per LR pixel
        return 9.0 * cin * cout * area

    fnet = 0.0
    for (cin, cout), area in zip(
        [(2 * params.in_nc, 32), (32, 64), (64, 128), (128, 256), (256, 128), (128, 64)],
        [1.0, 1 / 4, 1 / 16, 1 / 64, 1 / 16, 1 / 4],
        strict=True,
    ):
        fnet += conv(cin, cout, area) + conv(cout, cout, area)
    fnet += conv(64, 32) + conv(32, 2)
    nf = params.nf
    srnet = conv((SCALE**2 + 1) * params.in_nc, nf) + 2 * params.nb * conv(nf, nf)
    srnet += conv(nf // SCALE**2, params.out_nc, SCALE**2)
    return 2.0 * (fnet + srnet)
