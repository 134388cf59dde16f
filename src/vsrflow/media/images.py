"""Still images in and out: PNG, JPEG, WebP, BMP, TIFF (OpenCV's codecs), bit depth kept.

Contract: :func:`read_image` returns an :class:`Image` whose ``rgb`` is ``(H, W, 3)`` RGB,
``uint8`` or ``uint16`` exactly as stored (a 16-bit PNG stays 16-bit: full scale 65535), plus the
alpha plane ``(H, W)`` of the same dtype when the file has one and whether it was grayscale.
:func:`write_image` writes such an image atomically; 16 bits go to formats that hold them
(:data:`vsrflow.formats.SIXTEEN_BIT_IMAGE_SUFFIXES`) and are rounded to 8 with a warning
elsewhere; alpha is dropped with a warning where the format has none (JPEG, BMP).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vsrflow.errors import InputError
from vsrflow.files import atomic_write_bytes
from vsrflow.formats import IMAGE_SUFFIXES, SIXTEEN_BIT_IMAGE_SUFFIXES, suffix_of

log = logging.getLogger(__name__)

_NO_ALPHA = (".jpg", ".jpeg", ".bmp")


@dataclass(frozen=True)
class Image:
    """One decoded image (see the module contract)."""

    rgb: np.ndarray
    alpha: np.ndarray | None
    gray: bool

    @property
    def bits(self) -> int:
        return 16 if self.rgb.dtype == np.uint16 else 8


def is_image(path: Path) -> bool:
    """True when ``path``'s suffix is one of :data:`vsrflow.formats.IMAGE_SUFFIXES`."""
    return suffix_of(path.name) in IMAGE_SUFFIXES


def list_images(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, sorted by name; InputError when there is none."""
    found = sorted(p for p in folder.iterdir() if p.is_file() and is_image(p))
    if not found:
        raise InputError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})", hint="check the folder")
    return found


def read_image(path: Path) -> Image:
    """Decode ``path`` (module contract). InputError when it is missing, unreadable or not 8/16-bit."""
    if not path.is_file():
        raise InputError(f"{path}: file not found", hint="check the path")
    data = np.fromfile(str(path), dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise InputError(f"{path}: not a readable image", hint=f"use one of {', '.join(IMAGE_SUFFIXES)}")
    if img.dtype not in (np.uint8, np.uint16):
        raise InputError(f"{path}: {img.dtype} samples are not supported", hint="convert it to 8- or 16-bit")
    if img.ndim == 2:
        return Image(np.ascontiguousarray(np.repeat(img[:, :, None], 3, axis=2)), None, True)
    channels = img.shape[2]
    if channels == 4:
        rgb = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
        return Image(np.ascontiguousarray(rgb), np.ascontiguousarray(img[:, :, 3]), False)
    if channels == 3:
        return Image(np.ascontiguousarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB)), None, False)
    raise InputError(f"{path}: {channels}-channel images are not supported", hint="use RGB, RGBA or gray")


def write_image(path: Path, image: Image) -> None:
    """Encode ``image`` to ``path`` (format from the suffix), atomically (module contract)."""
    suffix = suffix_of(path.name)
    if suffix not in IMAGE_SUFFIXES:
        raise InputError(
            f"{path}: {suffix or 'no suffix'} is not an image format", hint=", ".join(IMAGE_SUFFIXES)
        )
    rgb, alpha = image.rgb, image.alpha
    if rgb.dtype == np.uint16 and suffix not in SIXTEEN_BIT_IMAGE_SUFFIXES:
        log.warning("%s: %s holds 8 bits per channel; the 16-bit result is rounded", path, suffix)
        rgb = np.round(rgb / 257.0).astype(np.uint8)
        alpha = None if alpha is None else np.round(alpha / 257.0).astype(np.uint8)
    if alpha is not None and suffix in _NO_ALPHA:
        log.warning("%s: %s has no alpha channel; transparency is dropped", path, suffix)
        alpha = None
    if image.gray:
        out = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if alpha is not None:
            out = np.dstack([out, out, out, alpha])
            out = cv2.cvtColor(out, cv2.COLOR_RGBA2BGRA)
    elif alpha is not None:
        out = np.dstack([cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), alpha])
    else:
        out = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(suffix, out)
    if not ok:
        raise InputError(f"{path}: OpenCV could not encode a {suffix} image", hint="try .png")
    atomic_write_bytes(path, encoded.tobytes())


def resize_plane(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``plane`` (H, W) resized to ``size`` (H', W') bicubic, same dtype (for alpha)."""
    return np.asarray(cv2.resize(plane, (size[1], size[0]), interpolation=cv2.INTER_CUBIC), dtype=plane.dtype)
