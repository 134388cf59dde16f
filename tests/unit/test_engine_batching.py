"""``--batch auto``: the chooser's arithmetic, the probe protocol with a fake device, the CPU rule."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vsrflow.engine.batching import MAX_AUTO_BATCH, auto_batch, auto_batch_for, choose_batch, parse_batch
from vsrflow.engine.upscaler import Upscaler
from vsrflow.models.descriptor import ModelDescriptor

GIB = 2**30


def test_parse_batch() -> None:
    assert parse_batch("auto") is None and parse_batch(" AUTO ") is None
    assert parse_batch("4") == 4
    for bad in ("0", "-2", "x", "1.5"):
        with pytest.raises(ValueError):
            parse_batch(bad)


def test_choose_batch_fits_the_free_memory() -> None:
    # 10 GiB free, 80 % usable = 8 GiB; 1 GiB fixed; 1.5 GiB per frame -> 4 frames (7 GiB), not 5.
    assert choose_batch(10 * GIB, 1 * GIB, 1.5 * GIB) == 4
    assert choose_batch(10 * GIB, 1 * GIB, 1.5 * GIB, fraction=1.0) == 6
    assert choose_batch(10 * GIB, 0, 0.1 * GIB) == MAX_AUTO_BATCH  # capped
    assert choose_batch(1 * GIB, 0, 4 * GIB) == 1  # never 0: the OOM fallback tiles instead
    assert choose_batch(1 * GIB, 0, 0) == MAX_AUTO_BATCH  # a probe that saw no growth


class FakeCard:
    """A card whose allocator peak grows by ``per_frame`` bytes per frame over ``fixed``."""

    def __init__(self, fixed: int, per_frame: int, free: int) -> None:
        self.fixed, self.per_frame, self.free = fixed, per_frame, free
        self.probed: list[int] = []

    def peak(self, n: int) -> int:
        self.probed.append(n)
        return self.fixed + n * self.per_frame

    def mem_get_info(self) -> int:
        return self.free


def test_auto_batch_on_cuda_probes_one_and_two_frames() -> None:
    # 1080p animevideov3-like: 2 GiB per frame, 0.5 GiB fixed, 40 GiB free -> 32 GiB usable -> capped.
    card = FakeCard(fixed=GIB // 2, per_frame=2 * GIB, free=40 * GIB)
    batch, info = auto_batch("cuda", card.peak, card.mem_get_info)
    assert card.probed == [1, 2]
    assert batch == MAX_AUTO_BATCH
    assert info["bytes_per_frame"] == 2 * GIB and info["fixed_bytes"] == GIB // 2
    small = FakeCard(fixed=GIB // 2, per_frame=2 * GIB, free=6 * GIB)  # 4.8 GiB usable -> 2 frames
    assert auto_batch("cuda", small.peak, small.mem_get_info)[0] == 2


def test_auto_batch_is_one_on_cpu_and_for_temporal_models() -> None:
    card = FakeCard(0, GIB, 100 * GIB)
    assert auto_batch("cpu", card.peak, card.mem_get_info)[0] == 1
    assert auto_batch("cuda", card.peak, card.mem_get_info, temporal=True)[0] == 1
    assert card.probed == []  # nothing ran


class Nearest2(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")


def test_auto_batch_for_a_cpu_upscaler_is_one_without_a_probe() -> None:
    up = Upscaler(Nearest2(), ModelDescriptor(arch="n2", scale=2, receptive_radius=0), device="cpu", batch=3)
    batch, info = auto_batch_for(up, 36, 64)
    assert batch == 1 and info["reason"] == "cpu: batch 1"
    assert up.batch == 3  # the caller applies the choice
