"""Facts about the inputs of an evaluation, checked before the long pass: sizes, counts, the crop.

:func:`frame_count` lets a frame-count mismatch fail in seconds instead of after a full pass (the
evaluation's own count stays authoritative). The border-crop rule (documented in ``vsrflow evaluate --help``):

1. ``--scale S`` given: crop ``S`` pixels from each border (the SR-literature convention crop = scale).
2. else ``--input LR`` given: the scale is inferred from the sizes, ``S = round(ref_w / lr_w)``; the
   low-resolution size times ``S`` must match the reference within the evaluator's "slight" tolerance
   in both dimensions (codec padding, odd sizes), otherwise the input is not the reference's
   downscale and :class:`InputError` says so.
3. else: crop 0 (every pixel measured) and a note says that the numbers are not comparable with
   published ones, which crop ``scale`` pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vsrflow.errors import InputError
from vsrflow.media.probe import probe
from vsrflow.metrics.evaluate import slight_tolerance
from vsrflow.metrics.picks import close_frames
from vsrflow.metrics.sources import IMAGE_SUFFIXES, iter_frames, list_images

Size = tuple[int, int]


@dataclass(frozen=True)
class CropDecision:
    """The border crop in pixels and, when it was not given explicitly, a note saying how it was chosen."""

    crop: int
    note: str | None


def frame_size(path: Path) -> Size:
    """(width, height) of the first frame of a video, image folder or image.

    Decodes one frame and closes the source. Raises :class:`InputError` for a missing path, an empty
    folder, a file that is not a video, or a source with no frames.
    """
    frames = iter_frames(path)
    try:
        first = next(frames, None)
    finally:
        close_frames(frames)
    if first is None:
        raise InputError(
            f"{path}: holds no decodable frames", hint="pass a video or image folder with frames"
        )
    return int(first.shape[1]), int(first.shape[0])


def frame_count(path: Path) -> int:
    """Frames in a source without decoding: images in a folder, 1 for an image, packets for a video.

    For a video this is :func:`vsrflow.media.probe.probe`'s count (from packets, which a damaged
    file can overstate); the evaluation counts decoded frames and has the last word.
    """
    if path.is_dir():
        return len(list_images(path))
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return 1
    return probe(path).frame_count


def infer_scale(input_size: Size, reference_size: Size, *, input_name: str = "input") -> int:
    """The integer factor between a low-resolution input and the reference (see module rule 2).

    Raises:
        InputError: the input is not smaller than the reference by a near-integer factor in both
            dimensions (names both sizes and suggests ``--scale``).
    """
    (lw, lh), (rw, rh) = input_size, reference_size
    factor = round(rw / lw)
    fits = (
        factor >= 1
        and abs(factor * lw - rw) <= slight_tolerance(rw)
        and abs(factor * lh - rh) <= slight_tolerance(rh)
    )
    if not fits:
        raise InputError(
            f"{input_name} frames {lw}x{lh} are not an integer downscale of the reference {rw}x{rh} "
            f"(ratios {rw / lw:.3g} x {rh / lh:.3g})",
            hint="pass the low-resolution source of this reference as --input, or give --scale explicitly",
        )
    return factor


def decide_crop(
    scale: int | None, input_size: Size | None, reference_size: Size, *, input_name: str = "input"
) -> CropDecision:
    """Apply the module's rule: explicit ``scale`` first, then the size ratio, else 0 with a note.

    ``input_name`` (the --input path) is named in the error when the sizes do not fit.
    """
    if scale is not None:
        if scale < 0:
            raise InputError(
                f"--scale {scale} must be >= 0", hint="pass the upscaling factor, e.g. --scale 4"
            )
        return CropDecision(scale, None)
    if input_size is not None:
        factor = infer_scale(input_size, reference_size, input_name=input_name)
        return CropDecision(factor, f"border crop {factor} px = scale inferred from --input size ratio")
    return CropDecision(
        0,
        "no --scale or --input: no border crop (published SR numbers crop `scale` px; pass --scale)",
    )
