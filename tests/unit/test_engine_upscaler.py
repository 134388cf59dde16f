"""Upscaler contract tests on CPU with tiny networks whose receptive radius is known."""

from __future__ import annotations

import copy
import logging
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vsrflow.engine.upscaler import MIN_TILE, Upscaler
from vsrflow.errors import InputError, ModelError
from vsrflow.models.descriptor import ModelDescriptor

# ----------------------------------------------------------------------------- test networks


def conv_x4() -> nn.Module:
    """Three 3x3 convs + PixelShuffle(4): receptive radius 3 input pixels."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 48, 3, padding=1),
        nn.PixelShuffle(4),
        nn.Sigmoid(),
    )


CONV_X4 = ModelDescriptor(arch="conv_x4", scale=4, receptive_radius=3)


class NearestX4(nn.Module):
    """Identity-like x4: nearest-neighbour upsampling (receptive radius 0, exact arithmetic)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=4, mode="nearest")


NEAREST_X4 = ModelDescriptor(arch="nearest_x4", scale=4, receptive_radius=0)


class MaxPoolX4(nn.Module):
    """Two 3x3 max-pools then nearest x4: radius 2 and exact arithmetic (bit-identical tiles)."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.pool(self.pool(x)), scale_factor=4, mode="nearest")


MAXPOOL_X4 = ModelDescriptor(arch="maxpool_x4", scale=4, receptive_radius=2)


class StrictAlignedX2(nn.Module):
    """x2 net that (like window/unshuffle models) rejects sizes off its grid or below its minimum.

    pixel_unshuffle(2) -> 3x3 conv -> pixel_shuffle(4): radius 2*1 + 1 = 3 px.
    """

    def __init__(self, multiple: int, min_size: int) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.multiple, self.min_size = multiple, min_size
        self.conv = nn.Conv2d(12, 48, 3, padding=1)
        self.seen: list[tuple[int, int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        self.seen.append((h, w))
        if h % self.multiple or w % self.multiple or min(h, w) < self.min_size:
            raise AssertionError(f"bad input size {h}x{w}")
        detail = F.pixel_shuffle(self.conv(F.pixel_unshuffle(x, 2)), 4)
        return F.interpolate(x, scale_factor=2, mode="nearest") + 0.01 * torch.tanh(detail)


def aligned_desc(multiple: int, min_size: int) -> ModelDescriptor:
    return ModelDescriptor(
        arch="aligned_x2", scale=2, size_multiple=multiple, min_size=min_size, receptive_radius=4
    )


class OomAbove(nn.Module):
    """Raises an out-of-memory error when one input exceeds ``limit`` pixels (H*W)."""

    def __init__(self, inner: nn.Module, limit: int, exc: type[BaseException] = torch.OutOfMemoryError):
        super().__init__()
        self.inner, self.limit, self.exc = inner, limit, exc
        self.calls: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(x.shape))
        if x.shape[-2] * x.shape[-1] > self.limit:
            if self.exc is RuntimeError:
                raise RuntimeError("CUDA error: out of memory (simulated)")
            raise self.exc("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
        return self.inner(x)


class FailOnCall(nn.Module):
    """Raises ValueError on the ``n``-th call (1-based): an error inside a tile."""

    def __init__(self, inner: nn.Module, n: int) -> None:
        super().__init__()
        self.inner, self.n, self.count = inner, n, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.count += 1
        if self.count == self.n:
            raise ValueError("boom in tile")
        return self.inner(x)


class SubpixelChecker(nn.Module):
    """x4 net whose output for a white input is a 1-pixel HR checkerboard (max frequency)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(x, scale_factor=4, mode="nearest")
        h, w = up.shape[-2:]
        yy = torch.arange(h).view(h, 1)
        xx = torch.arange(w).view(1, w)
        odd = ((yy + xx) % 2 == 1).to(up.dtype)
        return up * (1 - odd) + (1 - up) * odd


class RecordBatches(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.batches: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append(int(x.shape[0]))
        return self.inner(x)


def make(module: nn.Module, desc: ModelDescriptor, **kw: object) -> Upscaler:
    return Upscaler(module, desc, device="cpu", **kw)  # type: ignore[arg-type,unused-ignore]


def rand_frames(n: int, h: int, w: int, dtype: type = np.uint8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hi = np.iinfo(dtype).max
    return rng.integers(0, hi + 1, size=(n, h, w, 3), dtype=np.int64).astype(dtype)


# ----------------------------------------------------------------------------- shapes and scale


@pytest.mark.parametrize(
    ("scale", "expected"),
    [(None, (964, 1284)), (4, (964, 1284)), (2, (482, 642)), (1.5, (362, 482)), (1, (241, 321))],
)
def test_output_shapes_odd_frame(scale: float | None, expected: tuple[int, int]) -> None:
    up = make(NearestX4(), NEAREST_X4, scale=scale)
    assert up.output_size(241, 321) == expected
    out = up.upscale_frames(rand_frames(1, 241, 321))
    assert out.shape == (1, *expected, 3)
    assert out.dtype == np.uint8


def test_explicit_output_size_wins() -> None:
    up = make(NearestX4(), NEAREST_X4, scale=2)
    out = up.upscale_frames(rand_frames(2, 15, 17), output_size=(30, 32))
    assert out.shape == (2, 30, 32, 3)
    t = up.upscale_tensor(torch.rand(1, 3, 15, 17), output_size=(61, 67))
    assert t.shape == (1, 3, 61, 67)


@pytest.mark.parametrize("bad", [0, -1, 4.5, 5, math.nan, math.inf, True, "2"])
def test_unsupported_scale_is_input_error(bad: object) -> None:
    with pytest.raises(InputError) as info:
        make(NearestX4(), NEAREST_X4, scale=bad)
    assert "(0, 4]" in str(info.value)


def test_scale_error_names_native_scale() -> None:
    with pytest.raises(InputError, match=r"native scale x4"):
        make(NearestX4(), NEAREST_X4, scale=8)


@pytest.mark.parametrize("kw", [{"tile": -1}, {"tile_pad": -2}, {"batch": 0}])
def test_bad_options_are_input_errors(kw: dict[str, int]) -> None:
    with pytest.raises(InputError):
        make(NearestX4(), NEAREST_X4, **kw)


def test_bad_frames_are_input_errors() -> None:
    up = make(NearestX4(), NEAREST_X4)
    with pytest.raises(InputError, match="uint8 or uint16"):
        up.upscale_frames(np.zeros((1, 4, 4, 3), np.float32))
    with pytest.raises(InputError, match="channels"):
        up.upscale_frames(np.zeros((1, 4, 4, 4), np.uint8))
    with pytest.raises(InputError, match="4-D"):
        up.upscale_frames(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(InputError, match="0x4"):
        up.upscale_frames(np.zeros((1, 4, 0, 3), np.uint8))


def test_descriptor_scale_mismatch_is_model_error() -> None:
    wrong = ModelDescriptor(arch="liar", scale=2, receptive_radius=0)
    with pytest.raises(ModelError, match="descriptor"):
        make(NearestX4(), wrong).upscale_frames(rand_frames(1, 8, 8))


# ----------------------------------------------------------------------------- tiling


@pytest.mark.parametrize("tile", [4, 16, 24, 50, 64, 100])
def test_tiled_equals_untiled(tile: int) -> None:
    net = conv_x4()
    x = torch.rand(2, 3, 61, 83)
    ref = make(copy.deepcopy(net), CONV_X4).upscale_tensor(x)
    got = make(copy.deepcopy(net), CONV_X4, tile=tile).upscale_tensor(x)
    assert got.shape == ref.shape == (2, 3, 244, 332)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("tile", "size"), [(16, (37, 29)), (24, (50, 66)), (40, (41, 83))])
def test_tiled_equals_untiled_with_size_multiple(tile: int, size: tuple[int, int]) -> None:
    desc = aligned_desc(multiple=4, min_size=8)
    x = torch.rand(1, 3, *size)
    ref_net = StrictAlignedX2(4, 8)
    ref = make(ref_net, desc).upscale_tensor(x)
    tiled_net = copy.deepcopy(ref_net)
    tiled_net.seen.clear()
    got = make(tiled_net, desc, tile=tile).upscale_tensor(x)
    assert len(tiled_net.seen) > 1, "expected several tiles"
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)


def test_tile_pad_below_radius_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="vsrflow.engine"):
        make(conv_x4(), CONV_X4, tile=16, tile_pad=1).upscale_tensor(torch.rand(1, 3, 40, 40))
    assert "seams" in caplog.text


def test_default_tile_pad_is_capped_receptive_radius() -> None:
    assert make(NearestX4(), CONV_X4).tile_pad == 3
    big = ModelDescriptor(arch="rrdb", scale=4, receptive_radius=500)
    assert make(NearestX4(), big).tile_pad == 32
    unbounded = ModelDescriptor(arch="swin", scale=4, receptive_radius=None)
    assert make(NearestX4(), unbounded).tile_pad == 32


def test_exception_in_tile_propagates() -> None:
    net = FailOnCall(NearestX4(), n=3)
    up = make(net, NEAREST_X4, tile=16)
    with pytest.raises(ValueError, match="boom in tile"):
        up.upscale_frames(rand_frames(1, 40, 40))
    assert net.count == 3  # not retried, not swallowed
    assert up.tile == 16  # a non-OOM error never shrinks the tile


# ----------------------------------------------------------------------------- padding and tiny frames


def test_size_multiple_padding_is_cropped_exactly() -> None:
    desc = aligned_desc(multiple=4, min_size=8)
    net = StrictAlignedX2(4, 8)
    frames = rand_frames(2, 13, 7)
    out = make(net, desc).upscale_frames(frames)
    assert net.seen == [(16, 8), (16, 8)]
    assert out.shape == (2, 26, 14, 3)
    # The net is nearest x2 plus a small perturbation: exactly aligned output, no shift.
    nearest = frames.repeat(2, axis=1).repeat(2, axis=2).astype(int)
    assert np.abs(out.astype(int) - nearest).max() <= 3


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (1, 5), (3, 2)])
def test_tiny_frames_work(size: tuple[int, int]) -> None:
    h, w = size
    desc = aligned_desc(multiple=4, min_size=16)
    net = StrictAlignedX2(4, 16)
    frames = np.full((1, h, w, 3), 200, np.uint8)
    out = make(net, desc).upscale_frames(frames)
    assert out.shape == (1, 2 * h, 2 * w, 3)
    assert net.seen == [(16, 16)]
    assert np.abs(out.astype(int) - 200).max() <= 3
    nearest = make(NearestX4(), NEAREST_X4).upscale_frames(frames)
    assert nearest.shape == (1, 4 * h, 4 * w, 3)
    assert (nearest == 200).all()


def test_tiny_frame_with_tiling_enabled() -> None:
    desc = aligned_desc(multiple=4, min_size=16)
    out = make(StrictAlignedX2(4, 16), desc, tile=16).upscale_frames(rand_frames(1, 2, 33))
    assert out.shape == (1, 4, 66, 3)


# ----------------------------------------------------------------------------- dtypes and quantisation


def test_uint8_identity_roundtrip_is_exact() -> None:
    frames = rand_frames(3, 9, 11, np.uint8)
    out = make(NearestX4(), NEAREST_X4).upscale_frames(frames)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, frames.repeat(4, axis=1).repeat(4, axis=2))


def test_uint16_keeps_16_bits_even_for_dark_frames() -> None:
    # All values < 256: a value-based "is this 8-bit?" guess would get this wrong.
    frames = rand_frames(2, 5, 6, np.uint8).astype(np.uint16)
    frames[0, 0, 0] = (1, 257, 65535)
    out = make(NearestX4(), NEAREST_X4).upscale_frames(frames)
    assert out.dtype == np.uint16
    np.testing.assert_array_equal(out, frames.repeat(4, axis=1).repeat(4, axis=2))


class Offset(nn.Module):
    def __init__(self, delta: float) -> None:
        super().__init__()
        self.delta = delta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=4, mode="nearest") + self.delta


@pytest.mark.parametrize(("dtype", "maxval"), [(np.uint8, 255), (np.uint16, 65535)])
def test_quantisation_rounds_and_clamps(dtype: type, maxval: int) -> None:
    frames: np.ndarray = np.array([[[[10, 0, maxval]]]], dtype=dtype)
    up = make(Offset(0.6 / maxval), NEAREST_X4)
    out = up.upscale_frames(frames)
    # +0.6 LSB rounds up (truncation would keep 10); maxval+0.6 clamps to maxval.
    np.testing.assert_array_equal(out[0, 0, 0], [11, 1, maxval])
    down = make(Offset(-0.4 / maxval), NEAREST_X4).upscale_frames(frames)
    np.testing.assert_array_equal(down[0, 0, 0], [10, 0, maxval])


def test_upscale_tensor_range_device_and_no_input_mutation() -> None:
    x = torch.rand(2, 3, 8, 9) * 1.2 - 0.1  # slightly out of range on purpose
    before = x.clone()
    y = make(NearestX4(), NEAREST_X4).upscale_tensor(x)
    assert y.dtype == torch.float32 and y.device == x.device
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    torch.testing.assert_close(x, before, atol=0, rtol=0)


def test_bf16_on_cpu_is_close_to_fp32() -> None:
    net = conv_x4()
    x = torch.rand(1, 3, 20, 24)
    ref = make(copy.deepcopy(net), CONV_X4).upscale_tensor(x)
    up = make(copy.deepcopy(net), CONV_X4, precision="bf16")
    assert up.dtype == torch.bfloat16
    got = up.upscale_tensor(x)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, ref, atol=3e-2, rtol=0)


def test_fp16_on_cpu_falls_back_to_fp32(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="vsrflow.engine"):
        up = make(NearestX4(), NEAREST_X4, precision="fp16")
    assert up.dtype == torch.float32
    assert "fp16" in caplog.text


# ----------------------------------------------------------------------------- OOM fallback


def test_oom_halves_tile_and_returns_identical_frames(caplog: pytest.LogCaptureFixture) -> None:
    frames = rand_frames(5, 64, 96, seed=3)
    ref = make(MaxPoolX4(), MAXPOOL_X4).upscale_frames(frames)
    failing = OomAbove(MaxPoolX4(), limit=40 * 40)
    up = make(failing, MAXPOOL_X4, batch=2)
    with caplog.at_level(logging.WARNING, logger="vsrflow.engine"):
        out = up.upscale_frames(frames)
    assert out.shape == ref.shape
    np.testing.assert_array_equal(out, ref)
    # whole frame (96 px) -> 48 px tiles: 48 + 2*2 context = 52 px > 40 -> 24 px tiles fit.
    assert up.tile == 24
    assert caplog.text.count("out of memory") == 2
    # The smaller tile sticks: later batches do not fail again.
    ooms = sum(1 for s in failing.calls if s[-2] * s[-1] > failing.limit)
    assert ooms == 2


def test_generic_runtime_oom_also_falls_back() -> None:
    frames = rand_frames(1, 40, 40)
    ref = make(MaxPoolX4(), MAXPOOL_X4).upscale_frames(frames)
    up = make(OomAbove(MaxPoolX4(), limit=30 * 30, exc=RuntimeError), MAXPOOL_X4, tile=64)
    np.testing.assert_array_equal(up.upscale_frames(frames), ref)
    assert up.tile == 20


def test_oom_below_min_tile_is_model_error() -> None:
    up = make(OomAbove(NearestX4(), limit=4), NEAREST_X4)
    with pytest.raises(ModelError, match="out of memory"):
        up.upscale_frames(rand_frames(1, 64, 64))
    assert up.tile >= MIN_TILE


def test_non_oom_runtime_error_is_not_retried() -> None:
    class Broken(nn.Module):
        calls = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            Broken.calls += 1
            raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        make(Broken(), NEAREST_X4).upscale_frames(rand_frames(1, 8, 8))
    assert Broken.calls == 1


# ----------------------------------------------------------------------------- resize and batching


@pytest.mark.parametrize("scale", [2, 1.5, 1])
def test_downscale_is_antialiased(scale: float) -> None:
    frames = np.full((1, 24, 32, 3), 255, np.uint8)
    native = make(SubpixelChecker(), NEAREST_X4).upscale_frames(frames)
    assert set(np.unique(native)) == {0, 255}  # a 1-px checkerboard at the model's output
    out = make(SubpixelChecker(), NEAREST_X4, scale=scale).upscale_frames(frames)
    # Antialiased: the pattern is above the new Nyquist limit and averages to grey.
    core = out[0, 4:-4, 4:-4].astype(float)
    assert abs(core.mean() - 127.5) < 2
    assert np.abs(core - 127.5).max() < 16
    if scale == 1.5:
        # Control: without antialiasing the same resize aliases into strong moire.
        t = torch.from_numpy(native).permute(0, 3, 1, 2).float() / 255
        naive = F.interpolate(t, size=out.shape[1:3], mode="bilinear", antialias=False)
        assert float((naive - 0.5).abs().max()) > 0.2


def test_batch_of_three_keeps_all_frames_in_order() -> None:
    frames = np.stack([np.full((6, 5, 3), 10 * i, np.uint8) for i in range(7)])
    net = RecordBatches(NearestX4())
    out = make(net, NEAREST_X4, batch=3).upscale_frames(frames)
    assert net.batches == [3, 3, 1]
    assert out.shape == (7, 24, 20, 3)
    assert [int(f[0, 0, 0]) for f in out] == [10 * i for i in range(7)]


def test_tensor_batching_matches_single_call() -> None:
    net = conv_x4()
    x = torch.rand(5, 3, 12, 10)
    one = make(copy.deepcopy(net), CONV_X4, batch=5).upscale_tensor(x)
    two = make(copy.deepcopy(net), CONV_X4, batch=2).upscale_tensor(x)
    torch.testing.assert_close(one, two, atol=1e-5, rtol=0)
