"""Upscaler on a real CUDA device: precision, upload/quantise on the device, a REAL out-of-memory.

Skipped on machines without CUDA (CI); run on a GPU machine with
``PYTHONPATH=src python -m pytest tests/unit/test_engine_cuda.py``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch import nn

from tests.unit.test_engine_upscaler import CONV_X4, NEAREST_X4, NearestX4, conv_x4, rand_frames
from vsrflow.engine.upscaler import Upscaler
from vsrflow.models.descriptor import ModelDescriptor

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_auto_precision_is_fp16_and_close_to_cpu_fp32() -> None:
    net = conv_x4()
    x = torch.rand(2, 3, 70, 90)
    ref = Upscaler(copy.deepcopy(net), CONV_X4, device="cpu").upscale_tensor(x)
    up = Upscaler(copy.deepcopy(net), CONV_X4, device="cuda")
    assert up.dtype == torch.float16 and up.device.type == "cuda"
    assert torch.backends.cudnn.benchmark
    got = up.upscale_tensor(x)
    assert got.device.type == "cpu" and got.dtype == torch.float32
    torch.testing.assert_close(got, ref, atol=5e-3, rtol=0)
    tiled = Upscaler(copy.deepcopy(net), CONV_X4, device="cuda", tile=32).upscale_tensor(x)
    torch.testing.assert_close(tiled, got, atol=2e-3, rtol=0)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_other_precisions(precision: str) -> None:
    net = conv_x4()
    x = torch.rand(1, 3, 40, 52, device="cuda")
    ref = Upscaler(copy.deepcopy(net), CONV_X4, device="cpu").upscale_tensor(x.cpu())
    got = Upscaler(copy.deepcopy(net), CONV_X4, device="cuda:0", precision=precision).upscale_tensor(x)
    assert got.device == x.device
    torch.testing.assert_close(got.cpu(), ref, atol=3e-2 if precision == "bf16" else 1e-4, rtol=0)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_integer_frames_exact_on_cuda(dtype: type) -> None:
    frames = rand_frames(3, 33, 47, dtype)
    out = Upscaler(NearestX4(), NEAREST_X4, device="cuda", batch=2).upscale_frames(frames)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, frames.repeat(4, axis=1).repeat(4, axis=2))


class Wide(nn.Module):
    """Memory-hungry x2 net: 256-channel activations at input resolution (radius 2)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Conv2d(3, 256, 3, padding=1)
        self.b = nn.Conv2d(256, 12, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.b(torch.relu(self.a(x))))


@pytest.fixture
def limited_memory() -> Iterator[None]:
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(2 * 1024**3 / total)
    yield
    torch.cuda.set_per_process_memory_fraction(1.0)
    torch.cuda.empty_cache()


def test_real_oom_falls_back_to_tiles(limited_memory: None, caplog: pytest.LogCaptureFixture) -> None:
    desc = ModelDescriptor(arch="wide", scale=2, receptive_radius=2)
    frames = rand_frames(2, 1536, 1536, seed=5)
    # fp32 whole frame: 256 x 1536^2 x 4 B = 2.4 GB per activation > the 2 GiB budget.
    up = Upscaler(Wide(), desc, device="cuda", precision="fp32")
    with caplog.at_level(logging.WARNING, logger="vsrflow.engine"):
        out = up.upscale_frames(frames)
    assert "out of memory" in caplog.text
    assert 0 < up.tile < 1536
    ref = Upscaler(Wide(), desc, device="cuda", precision="fp32", tile=256).upscale_frames(frames)
    assert out.shape == ref.shape == (2, 3072, 3072, 3)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1
