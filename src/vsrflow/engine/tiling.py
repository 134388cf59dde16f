"""Frame padding and tile planning: pure geometry, no model, no device policy.

Why padding and tiling live together: exact (seamless) tiling needs every tile boundary on the
model's ``size_multiple`` grid and every tile at least ``min_size`` long, and the simplest way
to guarantee that is to pad the whole frame ONCE (to the multiple and the minimum size), tile
the padded frame on an aligned grid, and crop the stitched output once. Then no tile is ever
padded on its own, and a tile sees exactly the pixels (real or padding) that the whole-frame run
would have seen around its core.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def round_up(value: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` that is >= ``value`` (``multiple`` >= 1)."""
    return -(-value // multiple) * multiple


def round_down(value: int, multiple: int) -> int:
    """Largest multiple of ``multiple`` that is <= ``value`` (``multiple`` >= 1)."""
    return (value // multiple) * multiple


def padded_side(side: int, multiple: int, min_side: int) -> int:
    """Side length after padding ``side`` up to ``multiple`` and at least ``min_side``."""
    return max(round_up(side, multiple), round_up(min_side, multiple))


def pad_frame(x: torch.Tensor, multiple: int, min_side: int) -> torch.Tensor:
    """Pad a (N, C, H, W) tensor at the bottom/right to ``padded_side`` in both dimensions.

    Reflect padding (no artificial edge) where the pad is smaller than the side, as reflect
    requires; replicate padding otherwise (tiny frames, e.g. 1x1 to a min_size of 16). Each
    dimension picks its own mode. The caller crops the output back to ``(H*s, W*s)``.
    """
    h, w = int(x.shape[-2]), int(x.shape[-1])
    ph = padded_side(h, multiple, min_side) - h
    pw = padded_side(w, multiple, min_side) - w
    if ph:
        x = F.pad(x, (0, 0, 0, ph), mode="reflect" if ph < h else "replicate")
    if pw:
        x = F.pad(x, (0, pw, 0, 0), mode="reflect" if pw < w else "replicate")
    return x


@dataclass(frozen=True)
class Span:
    """One tile along one axis, in input pixels of the padded frame (half-open ranges).

    ``core`` is the part of the output this tile owns (cores partition the axis);
    ``region`` is what the model sees: the core plus up to ``pad`` context on each side.
    """

    core_start: int
    core_stop: int
    region_start: int
    region_stop: int


@dataclass(frozen=True)
class Tile:
    """A 2-D tile: a row span and a column span."""

    rows: Span
    cols: Span


def plan_axis(length: int, tile: int, pad: int, align: int, min_len: int) -> list[Span]:
    """Split one axis of ``length`` pixels into balanced cores of at most ``tile`` pixels.

    Preconditions (the caller guarantees them): ``length`` is a multiple of ``align`` and
    >= ``min_len``; ``tile`` and ``pad`` are multiples of ``align``; ``tile >= align``.

    Cores are balanced (``ceil(length / n)`` rounded up to ``align``) rather than
    ``tile, tile, ..., remainder`` so no sliver tile wastes a model call on mostly context.
    Every region boundary is a multiple of ``align`` (or ``length``), and every region is at
    least ``min_len`` long: a short edge region grows inwards, which only adds real context.
    """
    n = max(1, math.ceil(length / tile))
    core = min(round_up(math.ceil(length / n), align), length)
    spans: list[Span] = []
    start = 0
    while start < length:
        stop = min(start + core, length)
        r0 = max(0, start - pad)
        r1 = min(length, stop + pad)
        if r1 - r0 < min_len:
            r0 = max(0, round_down(r1 - min_len, align))
        if r1 - r0 < min_len:
            r1 = min(length, round_up(r0 + min_len, align))
        spans.append(Span(start, stop, r0, r1))
        start = stop
    return spans


def plan_tiles(height: int, width: int, tile: int, pad: int, align: int, min_len: int) -> list[Tile]:
    """Row-major grid of tiles over a padded (height, width) frame; see :func:`plan_axis`."""
    rows = plan_axis(height, tile, pad, align, min_len)
    cols = plan_axis(width, tile, pad, align, min_len)
    return [Tile(r, c) for r in rows for c in cols]
