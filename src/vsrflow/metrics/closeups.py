"""Close-up strips of one frame: where (locator), input (bicubic), output, reference, |error|.

The region is chosen on the measured pixels (the output already at the reference size):

* ``"error"`` (worst frame): the square with the largest mean |Y error|, i.e. what pulled PSNR down;
* ``"detail"`` (best frame): the square with the most reference detail, where a good result shows.

The same region is cut from every panel so they compare pixel for pixel.
"""

from __future__ import annotations

import math
from typing import Literal

from vsrflow.metrics.image import image_scores
from vsrflow.metrics.panels import (
    CAPTION_BAR,
    GREEN,
    RED,
    TEXT,
    Box,
    Panel,
    border,
    caption,
    cut,
    detail_box,
    error_map,
    heat_map,
    hstack,
    locator,
    worst_error_box,
    zoom,
)
from vsrflow.metrics.panels import HEAT_MAX_LEVELS as HEAT_MAX
from vsrflow.metrics.sources import RGB8

Region = Literal["error", "detail"]

#: Approximate on-screen size (px) of each zoomed close-up.
PANEL_TARGET = 300


def _db(value: float) -> str:
    return f"{value:.2f} dB" if math.isfinite(value) else "identical"


def closeup_strip(
    *,
    index: int,
    output: RGB8,
    reference: RGB8,
    upscaled_input: RGB8 | None,
    scale_label: str,
    crop: int,
    region: Region,
) -> tuple[RGB8, Box]:
    """The labelled strip for frame ``index`` and the region shown (x, y, w, h in reference pixels).

    All frames are ``(H, W, 3)`` RGB uint8 at the reference size (``upscaled_input`` already
    bicubic-upscaled). Panel labels carry each picture's Y-PSNR against the reference.
    """
    box = (
        worst_error_box(output, reference, crop=crop)
        if region == "error"
        else detail_box(reference, crop=crop)
    )
    colour = RED if region == "error" else GREEN
    panels: list[Panel] = []
    if upscaled_input is not None:
        bicubic = image_scores(upscaled_input, reference, crop=crop).psnr_y
        panels.append(Panel(f"input, bicubic {scale_label}: {_db(bicubic)}", cut(upscaled_input, box)))
    ours = image_scores(output, reference, crop=crop).psnr_y
    panels.append(Panel(f"output: {_db(ours)}", cut(output, box)))
    panels.append(Panel("reference", cut(reference, box)))
    heat = heat_map(error_map(cut(output, box), cut(reference, box)))
    panels.append(Panel(f"|error| Y, 0-{HEAT_MAX:.0f} levels", heat))
    zoomed = [caption(zoom(p.image, PANEL_TARGET), p.label, colour=p.colour) for p in panels]
    what = "largest error" if region == "error" else "most detail"
    where = caption(
        locator(reference, box, zoomed[0].shape[0] - CAPTION_BAR, colour),
        f"frame {index}: {what}",
        colour=colour if region == "error" else TEXT,
    )
    return border(hstack([where, *zoomed])), box
