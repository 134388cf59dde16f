"""Pictures for the report, drawn with OpenCV: labelled close-up strips and the contact sheet.

Every function takes and returns ``(H, W, 3)`` RGB uint8 arrays; :func:`write_png` converts to
OpenCV's BGR only at the file boundary. Close-ups are enlarged with *nearest neighbour* so each
source pixel stays a visible square: the point of a close-up is to judge pixels, and a smooth
enlargement would add its own blur to all three panels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vsrflow.metrics.image import rgb_to_y
from vsrflow.metrics.sources import RGB8

Box = tuple[int, int, int, int]  # x, y, width, height

FONT = cv2.FONT_HERSHEY_SIMPLEX
BACKGROUND = (24, 24, 28)
TEXT = (235, 235, 235)
MUTED = (150, 150, 160)
RED = (235, 80, 70)
GREEN = (90, 200, 110)
#: Gradient magnitude (Sobel, 8-bit levels) above which an edge counts no more as "detail".
DETAIL_CLIP = 40.0
#: Gradient below this is grain or codec noise, not detail.
DETAIL_FLOOR = 8.0
#: |Y error| that maps to the top of the heat map, in 8-bit levels (fixed so worst and best compare).
HEAT_MAX_LEVELS = 32.0


@dataclass(frozen=True)
class Panel:
    """One labelled picture of a strip."""

    label: str
    image: RGB8
    colour: tuple[int, int, int] = TEXT


def error_map(output: RGB8, reference: RGB8) -> np.ndarray:
    """Absolute BT.601 Y difference per pixel (float64, 8-bit levels), the quantity PSNR-Y averages."""
    return np.abs(rgb_to_y(output) - rgb_to_y(reference))


def region_side(width: int, height: int) -> int:
    """Side of the square close-up region: a third of the short side, kept between 32 and 256 px."""
    return min(width, height, max(32, min(256, min(width, height) // 3)))


def _argmax_box(score: np.ndarray, side: int, crop: int) -> Box:
    """The ``side``-square box (inside the ``crop`` border when possible) with the largest mean score."""
    height, width = score.shape
    inner = score.copy()
    if crop > 0 and 2 * crop + side <= min(width, height):
        # Border pixels are not measured (crop = scale), so the close-up must not point at them.
        inner[:crop, :] = inner[-crop:, :] = 0.0
        inner[:, :crop] = inner[:, -crop:] = 0.0
    # Box-filter mean over the window, then the best centre that keeps the box inside the frame.
    mean = cv2.boxFilter(inner, cv2.CV_64F, (side, side), borderType=cv2.BORDER_CONSTANT)
    half = side // 2
    lo_y, hi_y = half, height - (side - half)
    lo_x, hi_x = half, width - (side - half)
    valid = mean[lo_y : hi_y + 1, lo_x : hi_x + 1]
    cy, cx = np.unravel_index(int(np.argmax(valid)), valid.shape)
    return int(cx), int(cy), side, side


def worst_error_box(output: RGB8, reference: RGB8, *, crop: int) -> Box:
    """Square region (see :func:`region_side`) around the largest local Y error of a frame pair."""
    height, width = reference.shape[:2]
    return _argmax_box(error_map(output, reference), region_side(width, height), crop)


def detail_box(reference: RGB8, *, crop: int) -> Box:
    """Square region with the most detail (clipped local gradient energy) of the reference frame.

    Used for the best frame, whose error is small everywhere: showing where detail is shows
    whether it was reconstructed.
    """
    height, width = reference.shape[:2]
    y = rgb_to_y(reference)
    gradient = np.abs(cv2.Sobel(y, cv2.CV_64F, 1, 0)) + np.abs(cv2.Sobel(y, cv2.CV_64F, 0, 1))
    # Clipped so that texture (many moderate edges) wins over one strong edge, which is easy to
    # upscale and says little about detail.
    energy = np.clip(gradient - DETAIL_FLOOR, 0.0, DETAIL_CLIP)
    return _argmax_box(energy, region_side(width, height), crop)


def cut(img: np.ndarray, box: Box) -> np.ndarray:
    x, y, w, h = box
    return img[y : y + h, x : x + w]


def heat_map(errors: np.ndarray) -> RGB8:
    """Colour an error map (levels) with the inferno palette; ``HEAT_MAX_LEVELS`` and above are white-hot."""
    levels = np.clip(errors / HEAT_MAX_LEVELS * 255.0, 0, 255).astype(np.uint8)
    bgr = cv2.applyColorMap(levels, cv2.COLORMAP_INFERNO)
    rgb: RGB8 = np.ascontiguousarray(bgr[..., ::-1])
    return rgb


def zoom(img: np.ndarray, target: int) -> RGB8:
    """Enlarge by the integer factor that brings the longer side closest to ``target`` (nearest neighbour)."""
    factor = max(1, round(target / max(img.shape[:2])))
    size = (img.shape[1] * factor, img.shape[0] * factor)
    return np.asarray(cv2.resize(img, size, interpolation=cv2.INTER_NEAREST), dtype=np.uint8)


def _text_width(text: str, scale: float, thickness: int) -> int:
    (w, _), _ = cv2.getTextSize(text, FONT, scale, thickness)
    return int(w)


def _fit_text(text: str, width: int, scale: float, thickness: int) -> str:
    # Long labels (paths) are shortened from the left: the end of a name is the informative part.
    if _text_width(text, scale, thickness) <= width:
        return text
    while len(text) > 1 and _text_width("..." + text, scale, thickness) > width:
        text = text[1:]
    return "..." + text


#: Caption text: Hershey scale and stroke (about 17 px cap height: readable at 100 % zoom).
LABEL_SCALE, LABEL_THICKNESS = 0.7, 2
SUB_SCALE = 0.55
#: Height of a one-line caption bar (px); :func:`caption` adds :data:`SUB_BAR` for a ``sub`` line.
CAPTION_BAR, SUB_BAR = 36, 24


def caption(img: np.ndarray, text: str, *, colour: tuple[int, int, int] = TEXT, sub: str = "") -> RGB8:
    """``img`` with a dark bar above it holding ``text`` (and a smaller grey ``sub`` line).

    The bar is :data:`CAPTION_BAR` px tall (plus :data:`SUB_BAR` with ``sub``); text too wide for
    ``img`` is shortened from the left, so a label never runs into the next panel.
    """
    width = img.shape[1]
    bar_h = CAPTION_BAR + (SUB_BAR if sub else 0)
    bar = np.full((bar_h, width, 3), BACKGROUND, np.uint8)
    line = _fit_text(text, width - 10, LABEL_SCALE, LABEL_THICKNESS)
    cv2.putText(bar, line, (6, 25), FONT, LABEL_SCALE, colour, LABEL_THICKNESS, cv2.LINE_AA)
    if sub:
        small = _fit_text(sub, width - 10, SUB_SCALE, 1)
        cv2.putText(bar, small, (6, CAPTION_BAR + 16), FONT, SUB_SCALE, MUTED, 1, cv2.LINE_AA)
    return np.vstack([bar, img])


def _pad_to(img: np.ndarray, height: int, width: int) -> np.ndarray:
    out = np.full((height, width, 3), BACKGROUND, np.uint8)
    out[: img.shape[0], : img.shape[1]] = img
    return out


def hstack(images: Sequence[np.ndarray], gap: int = 8) -> RGB8:
    """Images side by side on the background colour, top-aligned, ``gap`` pixels apart."""
    height = max(i.shape[0] for i in images)
    parts: list[np.ndarray] = []
    for n, img in enumerate(images):
        if n:
            parts.append(np.full((height, gap, 3), BACKGROUND, np.uint8))
        parts.append(_pad_to(img, height, img.shape[1]))
    return np.hstack(parts)


def vstack(images: Sequence[np.ndarray], gap: int = 8) -> RGB8:
    """Images one above the other, left-aligned, ``gap`` pixels apart."""
    width = max(i.shape[1] for i in images)
    parts: list[np.ndarray] = []
    for n, img in enumerate(images):
        if n:
            parts.append(np.full((gap, width, 3), BACKGROUND, np.uint8))
        parts.append(_pad_to(img, img.shape[0], width))
    return np.vstack(parts)


def border(img: np.ndarray, size: int = 10) -> RGB8:
    """``img`` framed by ``size`` pixels of the background colour."""
    out = cv2.copyMakeBorder(img, size, size, size, size, cv2.BORDER_CONSTANT, value=BACKGROUND)
    return np.asarray(out, dtype=np.uint8)


def locator(reference: RGB8, box: Box, target: int, colour: tuple[int, int, int]) -> RGB8:
    """The whole reference frame scaled to ``target`` px tall with the close-up ``box`` outlined."""
    height, width = reference.shape[:2]
    factor = target / height
    small = cv2.resize(
        reference,
        (max(1, round(width * factor)), target),
        interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC,
    )
    x, y, w, h = (round(v * factor) for v in box)
    cv2.rectangle(small, (x, y), (x + max(w, 2) - 1, y + max(h, 2) - 1), colour, 2, cv2.LINE_AA)
    return np.ascontiguousarray(small)


def comparison_strip(panels: Sequence[Panel], *, target: int = 300) -> RGB8:
    """Equal-size close-ups, each zoomed to about ``target`` px and labelled, in one row."""
    return border(hstack([caption(zoom(p.image, target), p.label, colour=p.colour) for p in panels]))


def write_png(path: Path, image: RGB8) -> Path:
    """Write an RGB image as PNG (OpenCV wants BGR); raise OSError when it cannot be written."""
    if not cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1])):
        raise OSError(f"could not write {path}")
    return path
