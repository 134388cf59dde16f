"""Second pass for the report: re-read a source and keep only the frames it needs, by index.

The evaluation streams and keeps no pixels, so the report decides *after* it which frames to show
(worst, best, an even spread for the contact sheet) and re-reads each source once. Memory is bounded
by the number of picked frames, never by the video length: full-size frames only for the few
close-up indices, small thumbnails for the contact sheet.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from vsrflow.metrics.sources import RGB8, iter_frames

Size = tuple[int, int]


@dataclass
class PickedFrames:
    """Frames of one source: ``full`` at the reference size, ``thumbs`` at the thumbnail size."""

    full: dict[int, RGB8] = field(default_factory=dict)
    thumbs: dict[int, RGB8] = field(default_factory=dict)


def close_frames(frames: Iterator[RGB8]) -> None:
    """Close a frame generator early (``iter_frames`` holds an open decoder until closed)."""
    close = getattr(frames, "close", None)
    if callable(close):
        close()


def spread_indices(count: int, how_many: int) -> list[int]:
    """Up to ``how_many`` frame indices evenly spread over ``count`` frames, first and last included."""
    if count <= 0 or how_many <= 0:
        return []
    if count <= how_many:
        return list(range(count))
    return sorted({round(float(x)) for x in np.linspace(0, count - 1, how_many)})


def _resize(img: np.ndarray, size: Size) -> RGB8:
    if (img.shape[1], img.shape[0]) == size:
        return img
    # INTER_CUBIC for every size change: the evaluator's slight-resize and the report's "input
    # upscaled by bicubic" panel must be the same operation; INTER_AREA only for thumbnails.
    return np.asarray(cv2.resize(img, size, interpolation=cv2.INTER_CUBIC), dtype=np.uint8)


def thumbnail(img: np.ndarray, size: Size) -> RGB8:
    """``img`` shrunk (area filter, no aliasing) or enlarged (bicubic) to exactly ``size``."""
    shrinking = size[0] < img.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    return np.asarray(cv2.resize(img, size, interpolation=interpolation), dtype=np.uint8)


def pick_frames(
    path: Path,
    *,
    full: Collection[int],
    thumbs: Collection[int],
    size: Size,
    thumb_size: Size,
) -> PickedFrames:
    """Read ``path`` once and keep frames ``full`` (resized to ``size``) and ``thumbs`` (``thumb_size``).

    Stops decoding after the last wanted index. Indices past the end of the source are simply
    absent from the result (a truncated comparison, a shorter ``--input``); callers check.
    Raises :class:`InputError` as :func:`iter_frames` does.
    """
    wanted_full, wanted_thumbs = set(full), set(thumbs)
    last = max(wanted_full | wanted_thumbs, default=-1)
    picked = PickedFrames()
    frames = iter_frames(path)
    try:
        for index, frame in enumerate(frames):
            if index > last:
                break
            if index in wanted_full:
                picked.full[index] = _resize(frame, size)
            if index in wanted_thumbs:
                picked.thumbs[index] = thumbnail(frame, thumb_size)
    finally:
        close_frames(frames)  # releases the decoder when we stop early
    return picked
