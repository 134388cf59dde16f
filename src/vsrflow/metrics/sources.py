"""Frame sources for evaluation: a video file, an image folder, or a single image, as RGB uint8.

All sources stream: one frame in memory at a time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from vsrflow.errors import InputError
from vsrflow.media.reader import FrameReader
from vsrflow.metrics.temporal import to_uint8

#: Image suffixes read from a folder (case-insensitive).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})

RGB8 = NDArray[np.uint8]


def _natural_key(path: Path) -> list[int | str]:
    # frame_2.png before frame_10.png; identical to plain sorting for zero-padded names.
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def list_images(folder: Path) -> list[Path]:
    """The PNG/JPG files directly inside ``folder``, in natural name order."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=_natural_key)


def read_image(path: Path) -> RGB8:
    """Read one image file as ``(H, W, 3)`` RGB uint8.

    Grey images are expanded to three channels, alpha is dropped, 16-bit PNGs are quantised with
    ``round(value / 257)``. Raises InputError for an unreadable file.
    """
    # IMREAD_UNCHANGED keeps 16-bit data so it is quantised once, by our rule, not by OpenCV's.
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise InputError(f"{path}: not a readable PNG/JPG image", hint="re-export the frame or remove it")
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2BGR)
    if img.dtype not in (np.uint8, np.uint16):
        raise InputError(f"{path}: unsupported sample type {img.dtype}", hint="use 8- or 16-bit images")
    rgb: RGB8 = np.ascontiguousarray(to_uint8(img)[..., ::-1])  # OpenCV decodes to BGR
    return rgb


def _iter_folder(folder: Path) -> Iterator[RGB8]:
    files = list_images(folder)
    if not files:
        raise InputError(
            f"{folder}: folder holds no PNG/JPG images",
            hint="pass a video file or a folder of frames named in display order",
        )
    for file in files:
        yield read_image(file)


def _iter_video(path: Path) -> Iterator[RGB8]:
    with FrameReader(path) as reader:
        for frame in reader:
            yield to_uint8(frame.image)


def iter_frames(path: Path | str) -> Iterator[RGB8]:
    """Yield the frames of ``path`` as ``(H, W, 3)`` RGB uint8, in display order, one at a time.

    ``path`` may be:

    * a folder: its ``.png``/``.jpg``/``.jpeg`` files (not recursive) in natural name order, read
      with OpenCV (BGR -> RGB);
    * a single PNG/JPG file: one frame;
    * any other file: decoded as video with :class:`vsrflow.media.reader.FrameReader` (source matrix
      and range honoured); 16-bit frames are quantised with ``round(value / 257)``.

    Raises:
        InputError: missing path, empty folder, unreadable image, or a file that is not a video
            (raised when iteration starts, since this is a generator).
    """
    path = Path(path)
    if path.is_dir():
        yield from _iter_folder(path)
    elif path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
        yield read_image(path)
    elif path.is_file():
        yield from _iter_video(path)
    else:
        raise InputError(
            f"{path}: no such video file or image folder",
            hint="check the path; pass a video file or a folder of PNG/JPG frames",
        )
