"""Tile planning and frame padding: pure geometry."""

from __future__ import annotations

import itertools

import pytest
import torch

from vsrflow.engine.tiling import pad_frame, padded_side, plan_axis, plan_tiles, round_down, round_up


def test_rounding_helpers() -> None:
    assert (round_up(13, 4), round_up(12, 4), round_down(13, 4), round_down(3, 4)) == (16, 12, 12, 0)
    assert padded_side(13, 4, 1) == 16
    assert padded_side(2, 4, 16) == 16
    assert padded_side(7, 1, 1) == 7


@pytest.mark.parametrize("align", [1, 2, 4, 8])
def test_plan_axis_invariants(align: int) -> None:
    for length_units, tile_units, pad_units, min_units in itertools.product(
        range(1, 40), (2, 3, 5, 8, 16), (0, 1, 2, 4), (1, 2, 5)
    ):
        length, tile, pad = length_units * align, tile_units * align, pad_units * align
        min_len = min(min_units * align, length)
        spans = plan_axis(length, tile, pad, align, min_len)
        # Cores partition the axis, in order, each at most `tile` long.
        assert spans[0].core_start == 0 and spans[-1].core_stop == length
        for a, b in itertools.pairwise(spans):
            assert a.core_stop == b.core_start
        for s in spans:
            assert 0 < s.core_stop - s.core_start <= tile
            # Region holds the core plus at least `pad` context wherever the frame has it.
            assert s.region_start <= max(0, s.core_start - pad)
            assert s.region_stop >= min(length, s.core_stop + pad)
            assert s.region_start >= 0 and s.region_stop <= length
            assert s.region_stop - s.region_start >= min_len
            # Aligned boundaries keep pixel-unshuffle/window phase identical to the whole frame.
            assert s.region_start % align == 0
            assert s.region_stop % align == 0


def test_plan_axis_balances_tiles() -> None:
    spans = plan_axis(100, 96, 0, 1, 1)
    assert [(s.core_start, s.core_stop) for s in spans] == [(0, 50), (50, 100)]


def test_plan_tiles_grid() -> None:
    tiles = plan_tiles(64, 96, 32, 4, 4, 8)
    assert len(tiles) == 2 * 3
    covered = torch.zeros(64, 96, dtype=torch.int32)
    for t in tiles:
        covered[t.rows.core_start : t.rows.core_stop, t.cols.core_start : t.cols.core_stop] += 1
    assert bool((covered == 1).all())


def test_pad_frame_reflect_and_replicate() -> None:
    x = torch.arange(5 * 3, dtype=torch.float32).view(1, 1, 5, 3)
    reflected = pad_frame(x, 4, 1)  # 5x3 -> 8x4: pads 3 < 5 rows and 1 < 3 cols: reflect
    assert reflected.shape == (1, 1, 8, 4)
    assert torch.equal(reflected[..., :5, :3], x)
    assert torch.equal(reflected[0, 0, 5, :3], x[0, 0, 3])
    assert torch.equal(reflected[0, 0, :5, 3], x[0, 0, :, 1])
    tiny = torch.full((1, 3, 1, 2), 0.5)
    replicated = pad_frame(tiny, 4, 16)  # pads >= size: replicate
    assert replicated.shape == (1, 3, 16, 16)
    assert bool((replicated == 0.5).all())
    assert pad_frame(x, 1, 1) is x
