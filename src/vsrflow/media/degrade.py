"""Make low-resolution inputs from high-resolution clips, for honest super-resolution evaluation.

Per frame, in float64 on RGB pixels of the source's scale (8-bit or 16-bit), in this order:

1. optional Gaussian blur of the HR frame (``blur`` = sigma in HR pixels; kernel side
   ``2 * ceil(3 sigma) + 1``; symmetric border, the same border rule as the resize);
2. **bicubic downscale by an integer factor with antialiasing, MATLAB ``imresize`` compatible**:
   Keys cubic with a = -0.5, the kernel stretched by ``scale`` (support ``4 * scale`` input
   pixels) so it low-passes before decimating, pixel-centre alignment
   (``u = x * scale + 0.5 * (1 - scale)``, 1-based), symmetric (mirror) padding at the borders,
   rows then columns, no rounding between the passes. This is the kernel the SR literature
   (DIV2K, Set5/Set14 "BI" degradation, BasicSR ``imresize``) builds its LR sets with, so numbers
   measured on our LR clips compare with published ones. ``cv2.INTER_CUBIC`` is not antialiased
   (it aliases when decimating) and ``cv2.INTER_AREA`` is a box filter, so neither is used;
3. optional additive Gaussian noise (``noise`` = sigma in 8-bit levels, scaled by 257 for 16-bit
   frames), drawn from ``numpy.random.default_rng((seed, frame_index))``: the noise of a frame
   depends only on the seed and its index, never on processing order;
4. rounding half away from zero (MATLAB's uint8 conversion) and clipping to the pixel range;
5. optional JPEG re-compression of each frame (``cv2.imencode`` quality ``jpeg``, libjpeg's
   default 4:2:0 chroma); JPEG is 8-bit, so a 16-bit frame goes through 8 bits and back (x257).

Every step is deterministic for a given seed.

Output: video-only FFV1 in RGB (``bgr0`` for <= 8-bit sources, ``gbrp16le`` deeper) so decoding the
file gives back exactly the degraded frames (no chroma subsampling, no YUV matrix), muxed into
Matroska with every other stream of the source (audio stream-copied) by
:func:`~vsrflow.media.assemble.assemble_output`, which also checks frame count and duration. Every
frame keeps its pts. Matroska stores milliseconds: exact for 25/50 fps and MKV sources, rounded to
the millisecond for e.g. 30000/1001 MP4 sources (as any MKV would be).

Sizes not divisible by ``scale``: refused with an :class:`InputError` that names the size, unless
``crop_reference`` is given. Then the HR frames are cropped at the top-left to the largest multiple
of ``scale`` (right/bottom remainder dropped, the literature's "mod crop") and that cropped HR is
written losslessly to ``crop_reference``, so the LR clip always has an exactly matching reference.
Nothing is cropped silently.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import uuid
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from vsrflow.errors import InputError
from vsrflow.media.assemble import assemble_output
from vsrflow.media.info import VideoInfo
from vsrflow.media.probe import probe
from vsrflow.media.reader import FrameReader
from vsrflow.media.writer import INTERMEDIATE_SUFFIX, EncoderOptions, FrameWriter

log = logging.getLogger(__name__)

Image = npt.NDArray[np.uint8] | npt.NDArray[np.uint16]

#: Output containers degrade writes (FFV1 needs Matroska among the final-mux containers).
OUTPUT_SUFFIXES = (".mkv",)


def _cubic(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Keys cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


def resize_weights(in_len: int, factor: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.intp]]:
    """Weights and 0-based source indices of MATLAB ``imresize(..., 1/factor, 'bicubic')`` on one axis.

    Returns ``(weights, indices)``, both (in_len // factor, taps): output pixel ``i`` is
    ``sum_t weights[i, t] * x[indices[i, t]]``. Rows of ``weights`` sum to 1.
    """
    out_len = in_len // factor
    scale = 1.0 / factor
    width = 4.0 / scale  # antialiasing: the kernel support grows with the decimation factor
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)  # output pixel centre in 1-based input coordinates
    left = np.floor(u - width / 2.0)
    taps = math.ceil(width) + 2
    idx1 = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]
    weights = scale * _cubic(scale * (u[:, None] - idx1))
    weights /= weights.sum(axis=1, keepdims=True)
    # Symmetric padding as MATLAB does it: the sequence 1..n, n..1 repeated.
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len)[::-1]])
    indices = mirror[np.mod(idx1.astype(np.intp) - 1, 2 * in_len)]
    keep = np.any(weights != 0, axis=0)  # MATLAB drops all-zero tap columns; same result, fewer taps
    return weights[:, keep], indices[:, keep]


def _resize_axis(image: npt.NDArray[np.float64], factor: int, axis: int) -> npt.NDArray[np.float64]:
    weights, indices = resize_weights(image.shape[axis], factor)
    out: npt.NDArray[np.float64] | None = None
    # One tap at a time keeps memory at a few output-sized arrays (a full gather would hold
    # taps x output pixels: hundreds of MB for a 4K frame at x4).
    for t in range(weights.shape[1]):
        taken = np.take(image, indices[:, t], axis=axis)
        shape = [1] * image.ndim
        shape[axis] = weights.shape[0]
        term = taken * weights[:, t].reshape(shape)
        out = term if out is None else out + term
    assert out is not None
    return out


def bicubic_downscale(image: npt.NDArray[np.float64], factor: int) -> npt.NDArray[np.float64]:
    """Antialiased MATLAB-style bicubic downscale of an (H, W, C) float image by an integer factor.

    H and W must be multiples of ``factor``; the result is (H/factor, W/factor, C), not rounded.
    """
    if factor == 1:
        return image
    return _resize_axis(_resize_axis(image, factor, 0), factor, 1)


def _round_clip(image: npt.NDArray[np.float64], dtype: type[np.generic]) -> Image:
    peak = float(np.iinfo(dtype).max)  # type: ignore[type-var,unused-ignore]
    # Half away from zero (MATLAB's conversion); values are >= 0 after clipping, so floor(x + 0.5).
    out: Image = np.floor(np.clip(image, 0.0, peak) + 0.5).astype(dtype)
    return out


def _jpeg(image: Image, quality: int) -> Image:
    deep = image.dtype == np.uint16
    eight = (np.floor(image.astype(np.float64) / 257.0 + 0.5)).astype(np.uint8) if deep else image
    ok, data = cv2.imencode(
        ".jpg", np.ascontiguousarray(eight[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:  # pragma: no cover - libjpeg does not fail on valid 8-bit RGB
        raise InputError(f"JPEG encoding at quality {quality} failed")
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if decoded is None:  # pragma: no cover - we just encoded it
        raise InputError(f"JPEG decoding at quality {quality} failed")
    rgb: npt.NDArray[np.uint8] = np.ascontiguousarray(decoded[..., ::-1])
    if deep:
        deep_out: Image = rgb.astype(np.uint16) * np.uint16(257)
        return deep_out
    return rgb


def frame_rng(seed: int, index: int) -> np.random.Generator:
    """The noise generator of frame ``index``: depends only on (seed, index)."""
    return np.random.default_rng((seed, index))


def degrade_frame(
    image: Image,
    *,
    scale: int,
    blur: float = 0.0,
    noise: float = 0.0,
    jpeg: int | None = None,
    rng: np.random.Generator | None = None,
) -> Image:
    """Degrade one (H, W, 3) RGB frame (uint8 or uint16) as the module docstring describes.

    H and W must be multiples of ``scale``. ``rng`` is required when ``noise`` > 0.
    """
    h, w = image.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f"frame {w}x{h} is not a multiple of scale {scale}")
    dtype = np.uint16 if image.dtype == np.uint16 else np.uint8
    level = 257.0 if dtype == np.uint16 else 1.0  # 8-bit level in this frame's units
    work = image.astype(np.float64)
    if blur > 0:
        k = 2 * math.ceil(3 * blur) + 1
        blurred = cv2.GaussianBlur(work, (k, k), sigmaX=blur, sigmaY=blur, borderType=cv2.BORDER_REFLECT)
        work = np.asarray(blurred, dtype=np.float64)
    work = bicubic_downscale(work, scale)
    if noise > 0:
        if rng is None:
            raise ValueError("noise > 0 needs a random generator (see frame_rng)")
        work = work + rng.normal(0.0, noise * level, size=work.shape)
    out = _round_clip(work, dtype)
    if jpeg is not None:
        out = _jpeg(out, jpeg)
    return out


def _check_args(src: Path, dst: Path, scale: int, blur: float, noise: float, jpeg: int | None) -> None:
    if not isinstance(scale, int) or scale < 1:
        raise InputError(f"--scale {scale} must be a whole number >= 1")
    if blur < 0 or noise < 0:
        raise InputError(f"--blur {blur} and --noise {noise} must be >= 0")
    if jpeg is not None and not 1 <= jpeg <= 100:
        raise InputError(f"--jpeg {jpeg} must be a quality between 1 and 100")
    if dst.suffix.lower() not in OUTPUT_SUFFIXES:
        raise InputError(
            f"{dst}: degrade writes lossless FFV1, which needs a Matroska file", hint="name the output .mkv"
        )
    if dst.exists() and dst.resolve() == src.resolve():
        raise InputError(f"output {dst} is the input file", hint="choose another output path")


def _crop_size(info: VideoInfo, scale: int, crop_reference: Path | None) -> tuple[int, int]:
    """(width, height) of the HR area used; refuses a non-multiple size without crop_reference."""
    w, h = info.width, info.height
    cw, ch = w - w % scale, h - h % scale
    if cw == 0 or ch == 0:
        raise InputError(f"{info.path}: {w}x{h} is smaller than --scale {scale}")
    if (cw, ch) != (w, h) and crop_reference is None:
        raise InputError(
            f"{info.path}: {w}x{h} is not divisible by --scale {scale}",
            hint=(
                f"pass --crop-reference HR.mkv to crop the top-left {cw}x{ch} and write that matching "
                f"reference, or crop first: ffmpeg -i {info.path} -vf crop={cw}:{ch}:0:0 -c:v ffv1 "
                "-c:a copy HR.mkv"
            ),
        )
    return cw, ch


def degrade_video(
    src: Path,
    dst: Path,
    *,
    scale: int,
    blur: float = 0,
    noise: float = 0,
    jpeg: int | None = None,
    seed: int = 0,
    crop_reference: Path | None = None,
) -> VideoInfo:
    """Write the degraded (LR) version of ``src`` to ``dst`` (.mkv); return the probe of ``dst``.

    Args:
        src: the HR clip.
        dst: the LR clip to write (replaced atomically; nothing is left there on failure).
        scale: integer downscale factor; the output is (width / scale) x (height / scale).
        blur: Gaussian blur sigma in HR pixels before the downscale (0: none).
        noise: Gaussian noise sigma in 8-bit levels after the downscale (0: none).
        jpeg: JPEG quality 1..100 for a per-frame re-compression (None: none).
        seed: seeds the noise; equal seeds give bit-identical outputs.
        crop_reference: where to write the top-left-cropped HR when the size is not a multiple of
            ``scale`` (also written, uncropped, when it is). None: such sizes are refused.

    Raises:
        InputError: bad options, unreadable source, a size not divisible by ``scale`` without
            ``crop_reference``.
        ExternalToolError / OutputValidationError: encoding or the final mux failed.
    """
    src, dst = Path(src), Path(dst)
    _check_args(src, dst, scale, blur, noise, jpeg)
    if crop_reference is not None:
        crop_reference = Path(crop_reference)
        _check_args(src, crop_reference, 1, 0, 0, None)
        if crop_reference.resolve() == dst.resolve():
            raise InputError(f"--crop-reference {crop_reference} is the LR output path")
    info = probe(src)
    cw, ch = _crop_size(info, scale, crop_reference)
    pix_fmt = "gbrp16le" if info.bit_depth > 8 else "bgr0"
    options = EncoderOptions(codec="ffv1", crf=None, preset=None, pix_fmt=pix_fmt)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    lr_tmp = dst.with_name(f".{dst.stem}.{tag}.video{INTERMEDIATE_SUFFIX}")
    ref_tmp = None if crop_reference is None else crop_reference.with_name(
        f".{crop_reference.stem}.{tag}.video{INTERMEDIATE_SUFFIX}"
    )  # fmt: skip
    log.info(
        "degrading %s: %dx%d -> %dx%d (x1/%d, blur %g, noise %g, jpeg %s, seed %d)",
        src, info.width, info.height, cw // scale, ch // scale, scale, blur, noise, jpeg, seed,
    )  # fmt: skip
    try:
        written = 0
        with contextlib.ExitStack() as stack:
            reader = stack.enter_context(FrameReader(src, info))
            lr_writer = stack.enter_context(
                FrameWriter(lr_tmp, width=cw // scale, height=ch // scale, source=info, options=options)
            )
            ref_writer = None
            if ref_tmp is not None:
                ref_writer = stack.enter_context(
                    FrameWriter(ref_tmp, width=cw, height=ch, source=info, options=options)
                )
            for frame in reader:
                hr: Image = np.ascontiguousarray(frame.image[:ch, :cw])  # type: ignore[assignment,unused-ignore]
                rng = frame_rng(seed, frame.index) if noise > 0 else None
                lr = degrade_frame(hr, scale=scale, blur=blur, noise=noise, jpeg=jpeg, rng=rng)
                lr_writer.write(lr, frame.pts)
                if ref_writer is not None:
                    ref_writer.write(hr, frame.pts)
                written += 1
        if written != info.frame_count:
            raise InputError(
                f"{src}: decoded {written} frames but the probe counted {info.frame_count}",
                hint="the video stream may be damaged; remux or re-encode the source",
            )
        result = assemble_output(lr_tmp, info, dst, expected_frames=written)
        if ref_tmp is not None and crop_reference is not None:
            assemble_output(ref_tmp, info, crop_reference, expected_frames=written)
    finally:
        lr_tmp.unlink(missing_ok=True)
        if ref_tmp is not None:
            ref_tmp.unlink(missing_ok=True)
    log.info("wrote %s: %dx%d, %d frames", dst, result.width, result.height, result.frame_count)
    return result
