"""The Upscaler: one model, frames in, frames out, with every input-contract detail handled.

Responsibilities, in the order a batch meets them (all on the compute device):
    upload (uint8/uint16, not float: 4x/2x fewer bytes) -> normalise to [0, 1] float32
    -> pad to ``size_multiple`` / ``min_size`` -> model at native scale (whole frame or tiles,
    compute dtype, channels_last, autocast) -> crop -> optional antialiased resize to the
    requested scale/size -> clamp -> quantise ONCE with rounding -> download.

Policies (documented decisions):
    * ``tile`` is the tile CORE side in input pixels (Real-ESRGAN convention); the model sees up
      to ``tile + 2 * tile_pad``. ``tile_pad`` defaults to the model's receptive radius, capped at
      :data:`MAX_DEFAULT_TILE_PAD`; tiling is exact (to float rounding) only when
      ``tile_pad >= receptive_radius``, and a warning says so otherwise.
    * Out of memory (CUDA OOM or a RuntimeError saying "out of memory"): release the cache,
      halve the tile (or start tiling at half the frame) and recompute the SAME batch from
      scratch. The smaller tile sticks for later batches. Below :data:`MIN_TILE` pixels the
      Upscaler raises :class:`ModelError`. Any other exception propagates unchanged.
    * Precision: the module is cast to the compute dtype (no per-call weight casts) AND runs
      under autocast, so ops autocast keeps in fp32 (softmax, norms) stay in fp32. fp16 on CPU
      falls back to fp32 (see :mod:`vsrflow.engine.device`).
    * The Upscaler takes ownership of ``module``: it is moved/cast in place and set to eval.
    * ``tile=None`` means the model's default (:attr:`ModelDescriptor.default_tile`: whole
      frames for convolutional nets, bounded tiles for transformers such as Swin2SR); ``0``
      forces whole frames.
    * Temporal (recurrent) models (``descriptor.temporal``, e.g. EGVSR) run frame by frame in call
      order through ``module.step(x, state)``, carrying the state across calls: successive
      :meth:`upscale_frames` calls continue one clip. :meth:`reset` starts a new clip and
      :meth:`warm_up` advances the state without producing output (chunk warm-up). They run on
      whole frames: no tiling and no OOM fallback (a ModelError says so).
    * Sanity guard (``guard``, on in every CLI path): each output frame is measured before it is
      clamped (:func:`vsrflow.engine.guard.check_frames`); a frame past the thresholds is a
      blow-up and, per ``guard.policy``, is redone with the fallback model (then bicubic if that
      trips too or there is none), kept with a warning, or kept and reported by
      :meth:`check_artifacts` (``fail``). Frames are numbered from :meth:`reset`'s
      ``first_frame`` in call order; :attr:`report` holds the counts of the current clip.
    * Colour fix (``colour_fix``): after the guard, the output's low frequencies are replaced by
      those of a bicubic upscale of the input (:mod:`vsrflow.engine.colourfix`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F

from vsrflow.engine.colourfix import apply_colour_fix
from vsrflow.engine.device import (
    configure_device,
    is_oom_error,
    release_cached_memory,
    resolve_device,
    resolve_precision,
)
from vsrflow.engine.guard import Guard, bicubic, check_frames
from vsrflow.engine.quality import COLOUR_FIX, DEFAULT_COLOUR_FIX, GuardReport, check_choice
from vsrflow.engine.stagetimer import NULL_TIMER, StageTimer
from vsrflow.engine.tiling import pad_frame, plan_tiles, round_down, round_up
from vsrflow.errors import InputError, ModelError
from vsrflow.models.descriptor import ModelDescriptor

log = logging.getLogger(__name__)

#: Smallest tile core side (input pixels) the OOM fallback goes down to before giving up.
MIN_TILE = 16
#: Cap on the default tile_pad for models with a large or unbounded receptive field.
MAX_DEFAULT_TILE_PAD = 32

_MAXVAL: dict[np.dtype[np.generic], int] = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}
_TORCH_INT: dict[np.dtype[np.generic], torch.dtype] = {
    np.dtype(np.uint8): torch.uint8,
    np.dtype(np.uint16): torch.uint16,
}


def _check_scale(scale: float | None, descriptor: ModelDescriptor) -> float:
    native = descriptor.scale
    if scale is None:
        return float(native)
    if isinstance(scale, bool) or not isinstance(scale, int | float):
        raise InputError(f"scale {scale!r} is not a number", hint=f"use a scale in (0, {native}]")
    s = float(scale)
    if not math.isfinite(s) or s <= 0 or s > native:
        raise InputError(
            f"scale {scale} is not supported by model {descriptor.arch!r} (native scale x{native})",
            hint=f"use a scale in (0, {native}]: the model runs at x{native} and the output is "
            "resized down to the requested scale",
        )
    return s


def _check_size(output_size: tuple[int, int]) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in output_size)
    except (TypeError, ValueError):
        raise InputError(f"output_size {output_size!r} is not a (height, width) pair") from None
    if h < 1 or w < 1 or (h, w) != tuple(output_size):
        raise InputError(f"output_size {output_size!r} must be two positive integers (height, width)")
    return h, w


class Upscaler:
    """Super-resolve frames with one model, honouring its :class:`ModelDescriptor`.

    Args:
        module: the network; maps (N, in_channels, h, w) to (N, out_channels, h*scale, w*scale)
            for h, w multiples of ``size_multiple`` and >= ``min_size``. Taken over (moved, cast,
            eval mode).
        descriptor: the module's input contract.
        scale: output scale; ``None`` = the native scale. Must be finite, > 0 and <= native.
            Non-native scales run the model natively, then resize (antialiased) before quantising.
        device: ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N``.
        precision: ``auto`` (fp16 on CUDA, fp32 on CPU) | ``fp32`` | ``fp16`` | ``bf16``.
        tile: tile core side in input pixels; ``None`` = the model's default tile
            (``descriptor.default_tile``, whole frames for most models); 0 = whole frame.
            Rounded up to the model's ``size_multiple``. Small tiles are correct but slow (context is
            recomputed
            per tile); the OOM fallback never goes below :data:`MIN_TILE` on its own.
        tile_pad: context pixels around each tile core; default ``min(receptive_radius,
            MAX_DEFAULT_TILE_PAD)`` (the cap when the radius is unbounded). Rounded up to
            ``size_multiple``.
        batch: frames per model call (frames of one call share a size).
        guard: the per-frame sanity guard, or None (no checks: library callers, benchmarks).
        colour_fix: ``off`` | ``wavelet`` | ``gaussian`` (see :mod:`vsrflow.engine.colourfix`).

    Raises:
        InputError: an invalid option (names the option and the allowed values).
    """

    def __init__(
        self,
        module: torch.nn.Module,
        descriptor: ModelDescriptor,
        *,
        scale: float | None = None,
        device: str = "auto",
        precision: str = "auto",
        tile: int | None = None,
        tile_pad: int | None = None,
        batch: int = 1,
        guard: Guard | None = None,
        colour_fix: str = DEFAULT_COLOUR_FIX,
    ) -> None:
        self.descriptor = descriptor
        self.guard = guard
        self.colour_fix = check_choice("colour_fix", colour_fix, COLOUR_FIX)
        self._fallback: Upscaler | None = None
        self._fallback_built = False
        self._frame_no = 0
        #: the guard's counts for the current clip (since :meth:`reset`).
        self.report = self._new_report()
        self.scale = _check_scale(scale, descriptor)
        self.device = resolve_device(device)
        self.dtype = resolve_precision(precision, self.device)
        if batch < 1:
            raise InputError(f"batch {batch} must be >= 1")
        self.batch = int(batch)

        self._align = max(1, descriptor.size_multiple)
        self._min_len = round_up(max(1, descriptor.min_size), self._align)
        self._min_tile = round_up(MIN_TILE, self._align)
        if tile is None:
            tile = descriptor.default_tile or 0
        if descriptor.temporal and tile:
            log.warning(
                "%s is a temporal model: it runs on whole frames; tile %d ignored", descriptor.arch, tile
            )
            tile = 0
        if tile < 0:
            raise InputError(f"tile {tile} must be 0 (no tiling) or a positive number of pixels")
        #: current tile core side (0 = whole frame); the OOM fallback lowers it.
        self.tile = round_up(tile, self._align) if tile else 0

        radius = descriptor.receptive_radius
        if tile_pad is None:
            tile_pad = MAX_DEFAULT_TILE_PAD if radius is None else min(radius, MAX_DEFAULT_TILE_PAD)
        if tile_pad < 0:
            raise InputError(f"tile_pad {tile_pad} must be >= 0 pixels")
        self.tile_pad = round_up(tile_pad, self._align)
        self._seam_warned = False

        configure_device(self.device)
        module.eval()
        module.requires_grad_(False)
        module.to(device=self.device, dtype=self.dtype)
        # NHWC lets cuDNN/oneDNN pick tensor-core/vectorised conv kernels without transposes.
        module.to(memory_format=torch.channels_last)  # type: ignore[call-overload,unused-ignore]
        self.module = module
        #: recurrent state of a temporal model (opaque to the engine) and the frame shape it is for.
        self._state: Any = None
        self._state_shape: tuple[int, ...] | None = None
        #: per-stage timer of :meth:`upscale_frames` (``h2d``, ``model``, ``d2h``); a no-op by default.
        self.timer: StageTimer = NULL_TIMER

    # ------------------------------------------------------------------ public API

    @property
    def native_scale(self) -> int:
        """The model's integer scale factor."""
        return self.descriptor.scale

    @property
    def temporal(self) -> bool:
        """True for recurrent models: frames must arrive in display order, one clip at a time."""
        return self.descriptor.temporal

    @property
    def warmup_frames(self) -> int:
        """Frames before a chunk's start to feed through :meth:`warm_up` (0 for frame models)."""
        return self.descriptor.warmup_frames if self.descriptor.temporal else 0

    def reset(self, first_frame: int = 0) -> None:
        """Start a new clip: forget the recurrent state, start a new guard report.

        ``first_frame`` is the number of the next frame :meth:`upscale_frames` gets (a chunk's
        first source frame), so the report names source frames.
        """
        self._state = None
        self._state_shape = None
        self._frame_no = int(first_frame)
        self.report = self._new_report()

    def check_artifacts(self) -> GuardReport:
        """The current clip's report; raises its ModelError when the policy is ``fail`` and a
        frame tripped (call once the clip is done, before its output is kept)."""
        if self.guard is not None and self.guard.policy == "fail" and self.report.tripped:
            raise self.report.error()
        return self.report

    def warm_up(self, frames: np.ndarray) -> None:
        """Advance a temporal model's state over ``frames`` (N, H, W, 3), discarding the outputs.

        Frame models have no state: nothing runs. Used before a chunk's first frame with the
        frames that precede it, so the chunk starts from (nearly) the state an unchunked run has.
        """
        if not self.temporal or frames.shape[0] == 0:
            return
        if frames.dtype not in _MAXVAL:
            raise InputError(f"frames must be uint8 or uint16 RGB, got dtype {frames.dtype}")
        self._check_input_shape(tuple(frames.shape), layout="NHWC")
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device)
            x = x.permute(0, 3, 1, 2).to(torch.float32).div_(_MAXVAL[frames.dtype])
            self._native(x)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """Output (height, width) for an input frame of (height, width) at ``self.scale``.

        Native scale: exact multiples. Otherwise ``round(side * scale)``, at least 1.
        """
        if self.scale == self.native_scale:
            return height * self.native_scale, width * self.native_scale
        return (
            max(1, math.floor(height * self.scale + 0.5)),
            max(1, math.floor(width * self.scale + 0.5)),
        )

    def upscale_tensor(self, x: torch.Tensor, output_size: tuple[int, int] | None = None) -> torch.Tensor:
        """Upscale float frames.

        Args:
            x: (N, 3, H, W) float tensor in [0, 1], any device.
            output_size: (H', W') to produce; default :meth:`output_size` of (H, W).

        Returns:
            (N, 3, H', W') float32 in [0, 1] on ``x``'s device (not quantised).
        """
        n, h, w = self._check_input_shape(tuple(x.shape), layout="NCHW")
        size = self.output_size(h, w) if output_size is None else _check_size(output_size)
        if not x.is_floating_point():
            raise InputError(f"upscale_tensor needs a float tensor in [0, 1], got {x.dtype}")
        outs: list[torch.Tensor] = []
        with torch.inference_mode():
            for start in range(0, n, self.batch):
                chunk = x[start : start + self.batch].to(self.device, torch.float32)
                # Out-of-place clamp: the model may return (a view of) the caller's tensor.
                outs.append(self._process(chunk, size).clamp(0.0, 1.0).to(x.device))
        return torch.cat(outs)

    def upscale_frames(self, frames: np.ndarray, output_size: tuple[int, int] | None = None) -> np.ndarray:
        """Upscale integer RGB frames.

        Args:
            frames: (N, H, W, 3) uint8 or uint16 RGB. The bit depth is taken from the dtype
                (uint8: full scale 255; uint16: 65535), never from pixel values.
            output_size: (H', W') to produce; default :meth:`output_size` of (H, W).

        Returns:
            (N, H', W', 3) array of the input dtype. Normalisation, padding, clamping and the
            single rounding quantisation happen on the compute device.
        """
        if frames.dtype not in _MAXVAL:
            raise InputError(f"frames must be uint8 or uint16 RGB, got dtype {frames.dtype}")
        n, h, w = self._check_input_shape(tuple(frames.shape), layout="NHWC")
        size = self.output_size(h, w) if output_size is None else _check_size(output_size)
        out = np.empty((n, size[0], size[1], 3), dtype=frames.dtype)
        for start, result in self._frames_batches(frames, size):
            out[start : start + result.shape[0]] = result
        return out

    # ------------------------------------------------------------------ internals

    def _check_input_shape(self, shape: tuple[int, ...], *, layout: str) -> tuple[int, int, int]:
        channels = self.descriptor.in_channels
        if len(shape) != 4:
            raise InputError(f"expected a 4-D {layout} batch of frames, got shape {shape}")
        if layout == "NCHW":
            n, c, h, w = shape
        else:
            n, h, w, c = shape
        if c != channels:
            raise InputError(f"expected {channels} channels ({layout}), got shape {shape}")
        if h < 1 or w < 1:
            raise InputError(f"frame size {w}x{h} (WxH) is empty; nothing to upscale")
        return n, h, w

    def _frames_batches(self, frames: np.ndarray, size: tuple[int, int]) -> Iterator[tuple[int, np.ndarray]]:
        maxval = _MAXVAL[frames.dtype]
        int_dtype = _TORCH_INT[frames.dtype]
        with torch.inference_mode():
            for start in range(0, frames.shape[0], self.batch):
                with self.timer.stage("h2d"):
                    host = torch.from_numpy(np.ascontiguousarray(frames[start : start + self.batch]))
                    if self.device.type == "cuda":
                        # Pinned staging makes the upload a real async DMA of the integer frames.
                        host = host.pin_memory()
                    dev = host.to(self.device, non_blocking=True)
                with self.timer.stage("model"):
                    x = dev.permute(0, 3, 1, 2).to(torch.float32).div_(maxval)
                    y = self._process(x, size)
                    # The one quantisation: scale, round to nearest, clamp (overshoot of the model or
                    # the bicubic resize), cast. Out-of-place first op: never write into the input.
                    q = y.mul(maxval).round_().clamp_(0, maxval).to(int_dtype)
                with self.timer.stage("d2h"):
                    result = q.permute(0, 2, 3, 1).cpu().numpy()
                yield start, result

    def _new_report(self) -> GuardReport:
        guard = self.guard
        if guard is None:
            return GuardReport(policy="off")
        return GuardReport(policy=guard.policy, fallback=guard.fallback_name)

    def _process(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Model, guard, colour fix: (B,3,H,W) float32 [0, 1] -> (B,3,*size) float32, not clamped."""
        y = self._upscale_float(x, size)
        if self.guard is not None:
            y = self._guarded(x, y, size, self.guard)
        if self.colour_fix != "off":
            y = apply_colour_fix(y, x, self.colour_fix)
        return y

    def _guarded(self, x: torch.Tensor, y: torch.Tensor, size: tuple[int, int], guard: Guard) -> torch.Tensor:
        """Measure ``y`` (raw output of ``x``), count, and replace blow-ups per the policy."""
        first = self._frame_no
        self._frame_no += int(x.shape[0])
        checks = check_frames(x, y, guard.limits)
        self.report.checked += len(checks)
        bad = [(i, p) for i, c in enumerate(checks) if (p := c.problems(guard.limits))]
        if not bad:
            return y
        numbers = [first + i for i, _ in bad]
        problem = "; ".join(bad[0][1])
        self.report.add_tripped(numbers, problem)
        if guard.policy != "fallback":
            self.report.kept += len(bad)
            log.warning(
                "frame(s) %s: %s output blew up (%s); kept%s",
                ", ".join(map(str, numbers)), self.descriptor.arch, problem,
                " (the run fails at the end: --on-artifact fail)" if guard.policy == "fail" else "",
            )  # fmt: skip
            return y
        index = torch.tensor([i for i, _ in bad], device=y.device)
        xb = x.index_select(0, index)
        redo, name = self._fallback_output(xb, size, guard)
        y = y.index_copy(0, index, redo)
        log.warning(
            "frame(s) %s: %s output blew up (%s); redone with %s",
            ", ".join(map(str, numbers)), self.descriptor.arch, problem, name,
        )  # fmt: skip
        return y

    def _fallback_output(
        self, xb: torch.Tensor, size: tuple[int, int], guard: Guard
    ) -> tuple[torch.Tensor, str]:
        """The fallback's frames for the tripped inputs ``xb``: the fallback model's where they
        pass the guard, bicubic for the rest (and for all when there is no fallback model)."""
        if not self._fallback_built:
            self._fallback_built = True
            self._fallback = guard.fallback() if guard.fallback is not None else None
        n = int(xb.shape[0])
        safe = bicubic(xb, size)
        if self._fallback is None:
            self.report.bicubic += n
            return safe, "bicubic"
        # The fallback runs at the primary's output size, unguarded (its frames are checked here).
        yb = self._fallback._upscale_float(xb.to(self._fallback.device), size).to(xb.device)
        ok = torch.tensor(
            [not c.problems(guard.limits) for c in check_frames(xb, yb, guard.limits)], device=xb.device
        )
        self.report.redone += int(ok.sum())
        self.report.bicubic += n - int(ok.sum())
        out = torch.where(ok[:, None, None, None], yb, safe)
        name = (
            guard.fallback_name if bool(ok.all()) else f"{guard.fallback_name} (bicubic where it tripped too)"
        )
        return out, name

    def _upscale_float(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """(B, 3, H, W) float32 [0, 1] on device -> (B, 3, *size) float32, NOT yet clamped."""
        y = self._native(x)
        if tuple(y.shape[-2:]) != size:
            # Antialiased bicubic: a downscale (4x model serving 2x) low-pass filters first, so
            # detail above the new Nyquist averages out instead of aliasing into moire.
            y = F.interpolate(y, size=size, mode="bicubic", antialias=True, align_corners=False)
        return y

    def _native(self, x: torch.Tensor) -> torch.Tensor:
        """Model at native scale with padding and cropping: (B,3,H,W) -> (B,3,H*s,W*s) float32."""
        h, w = int(x.shape[-2]), int(x.shape[-1])
        xp = pad_frame(x, self._align, self._min_len)
        y = self._run_temporal(xp) if self.temporal else self._run_with_fallback(xp)
        s = self.native_scale
        return y[..., : h * s, : w * s]

    def _run_temporal(self, xp: torch.Tensor) -> torch.Tensor:
        """Frames of ``xp`` one by one through ``module.step``, carrying the recurrent state."""
        shape = tuple(xp.shape[1:])
        if self._state_shape != shape:  # a new clip or another frame size: start from zeros
            self._state, self._state_shape = None, shape
        outs = []
        lo, hi = self.descriptor.input_range
        step = cast(Any, self.module).step
        for i in range(xp.shape[0]):
            inp = xp[i : i + 1].to(self.dtype).contiguous(memory_format=torch.channels_last)
            if (lo, hi) != (0.0, 1.0):
                inp = inp * (hi - lo) + lo
            try:
                with torch.autocast(
                    device_type=self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32
                ):
                    y, self._state = step(inp, self._state)
            except Exception as exc:
                if not is_oom_error(exc):
                    raise
                self.reset()
                raise ModelError(
                    f"out of memory on {self.device} running temporal model {self.descriptor.arch!r} on a "
                    f"{xp.shape[-1]}x{xp.shape[-2]} frame (temporal models are not tiled)",
                    hint="use precision fp16/bf16, a smaller input, or free the GPU",
                ) from None
            y = y.float()
            if (lo, hi) != (0.0, 1.0):
                y = (y - lo) / (hi - lo)
            outs.append(y)
        return torch.cat(outs)

    def _run_with_fallback(self, xp: torch.Tensor) -> torch.Tensor:
        """Run the padded batch, shrinking the tile on OOM and retrying the same batch."""
        while True:
            tile = self.tile
            try:
                return self._run_tiles(xp, tile)
            except Exception as exc:
                if not is_oom_error(exc):
                    raise
                reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            # Outside the except block the traceback (and the tensors its frames hold) is gone,
            # so the cache release below can actually free the failed attempt's memory.
            release_cached_memory(self.device)
            hp, wp = int(xp.shape[-2]), int(xp.shape[-1])
            current = min(tile, max(hp, wp)) if tile else max(hp, wp)
            smaller = round_down(current // 2, self._align)
            if smaller < self._min_tile:
                raise ModelError(
                    f"out of memory on {self.device} even with {current}px tiles for "
                    f"{xp.shape[0]} frame(s) of {wp}x{hp} (padded): {reason}",
                    hint="lower --batch, use a smaller model or precision fp16/bf16, or free the GPU",
                )
            log.warning(
                "out of memory on %s with %s; retrying the same %d frame(s) with %dpx tiles",
                self.device,
                f"{tile}px tiles" if tile else "whole frames",
                xp.shape[0],
                smaller,
            )
            self.tile = smaller

    def _run_tiles(self, xp: torch.Tensor, tile: int) -> torch.Tensor:
        hp, wp = int(xp.shape[-2]), int(xp.shape[-1])
        if tile == 0 or (hp <= tile and wp <= tile):
            return self._forward(xp)
        self._warn_if_seams()
        s = self.native_scale
        out = xp.new_empty((xp.shape[0], self.descriptor.out_channels, hp * s, wp * s))
        for t in plan_tiles(hp, wp, tile, self.tile_pad, self._align, self._min_len):
            r, c = t.rows, t.cols
            y = self._forward(xp[..., r.region_start : r.region_stop, c.region_start : c.region_stop])
            # Paste only the core: its outputs saw >= tile_pad real context on every inner side.
            oy, ox = (r.core_start - r.region_start) * s, (c.core_start - c.region_start) * s
            hh, ww = (r.core_stop - r.core_start) * s, (c.core_stop - c.core_start) * s
            out[..., r.core_start * s : r.core_stop * s, c.core_start * s : c.core_stop * s] = y[
                ..., oy : oy + hh, ox : ox + ww
            ]
        return out

    def _warn_if_seams(self) -> None:
        radius = self.descriptor.receptive_radius
        if not self._seam_warned and (radius is None or self.tile_pad < radius):
            self._seam_warned = True
            log.warning(
                "tiling %s with tile_pad %d < receptive radius %s: tile seams may be visible",
                self.descriptor.arch,
                self.tile_pad,
                "unbounded" if radius is None else radius,
            )

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """One model call on a valid-size float32 batch -> float32 output in model units."""
        lo, hi = self.descriptor.input_range
        inp = x.to(self.dtype).contiguous(memory_format=torch.channels_last)
        if (lo, hi) != (0.0, 1.0):
            inp = inp * (hi - lo) + lo
        with torch.autocast(
            device_type=self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32
        ):
            y = self.module(inp)
        b, _, h, w = x.shape
        s = self.native_scale
        expected = (b, self.descriptor.out_channels, h * s, w * s)
        if not isinstance(y, torch.Tensor) or tuple(y.shape) != expected:
            got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise ModelError(
                f"model {self.descriptor.arch!r} returned {got} for input {tuple(x.shape)}; "
                f"its descriptor promises {expected}",
                hint="the model descriptor (scale, channels) does not match the network",
            )
        y = y.float()
        if (lo, hi) != (0.0, 1.0):
            y = (y - lo) / (hi - lo)
        return y
