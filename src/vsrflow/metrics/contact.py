"""The contact sheet: a grid of (output | reference) thumbnail pairs spread across the video.

Each cell shows the output thumbnail on the left and the reference on the right, with the frame
number and its PSNR-Y underneath; the worst frame's caption is red and the best's green, so the
sheet also says where in the video quality drops.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from vsrflow.metrics.panels import GREEN, MUTED, RED, TEXT, border, caption, hstack, vstack
from vsrflow.metrics.sources import RGB8

#: Width of one thumbnail (a cell holds two) and the most columns of cells.
THUMB_WIDTH = 360
COLUMNS = 2


def thumb_size(width: int, height: int, thumb_width: int = THUMB_WIDTH) -> tuple[int, int]:
    """(width, height) of a thumbnail keeping the frame's aspect ratio (never enlarging past 2x)."""
    w = min(thumb_width, 2 * width)
    return w, max(1, round(height * w / width))


def _cell(index: int, out: RGB8, ref: RGB8, psnr_y: float, worst: int, best: int) -> np.ndarray:
    pair = hstack([caption(out, "output", colour=MUTED), caption(ref, "reference", colour=MUTED)], gap=2)
    tag = " (worst)" if index == worst else " (best)" if index == best else ""
    colour = RED if index == worst else GREEN if index == best else TEXT
    score = f"{psnr_y:.2f} dB" if math.isfinite(psnr_y) else "identical"
    # Two lines (frame, then score) so that a narrow cell (a small source) still shows both whole.
    label = caption(
        np.zeros((0, pair.shape[1], 3), np.uint8), f"frame {index}{tag}", colour=colour, sub=f"Y-PSNR {score}"
    )
    return vstack([pair, label], gap=0)


def contact_sheet(
    indices: Sequence[int],
    outputs: Mapping[int, RGB8],
    references: Mapping[int, RGB8],
    psnr_y: Mapping[int, float],
    *,
    worst: int,
    best: int,
    columns: int = COLUMNS,
) -> RGB8:
    """Lay out the cells of ``indices`` (those present in both sources) in rows of ``columns``.

    Raises ValueError when no index has both thumbnails (the caller skips the sheet then).
    """
    cells = [
        _cell(i, outputs[i], references[i], psnr_y[i], worst, best)
        for i in indices
        if i in outputs and i in references
    ]
    if not cells:
        raise ValueError("no frame has both an output and a reference thumbnail")
    rows = [hstack(cells[r : r + columns], gap=12) for r in range(0, len(cells), columns)]
    sheet = vstack(rows, gap=12)
    return border(sheet, 12)
