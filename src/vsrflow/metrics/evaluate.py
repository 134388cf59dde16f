"""Compare an output sequence with its reference, frame by frame, streaming.

:func:`evaluate_pair` walks both sequences in lockstep and keeps only the current frames and the
previous grey frames (for tOF), so memory stays flat in sequence length; every frame pair is
measured (no sampling). Per-frame records (a few dozen bytes each) are kept for the CSV report.

Size rule (``resize_policy="slight"``, the default): when an output frame's size differs from its
reference frame by at most ``max(4 px, 2 % of the reference dimension)`` in *both* width and height,
the output frame is resized to the reference size with bicubic interpolation (``cv2.INTER_CUBIC``)
and the result records a note. Such differences come from codec padding (1088 vs 1080 lines) or
rounding of odd sizes (``4 * 359`` vs 1437). Anything larger, including an aspect-ratio change or
a wrong scale factor, raises :class:`InputError` naming both sizes. ``resize_policy="never"``
refuses every size difference.

Frame-count rule (``align``): ``"strict"`` (default) raises :class:`InputError` naming both counts
when the sequences differ in length; ``"truncate"`` compares the first ``min(N, M)`` pairs and notes
both counts. Either way the longer input is read to its end so that the counts reported are exact.
Because inputs stream, a length mismatch is only known when the shorter one ends.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Literal

import cv2
import numpy as np

from vsrflow.errors import InputError
from vsrflow.metrics.image import image_scores
from vsrflow.metrics.report import CSV_COLUMNS, summary_dict, write_csv
from vsrflow.metrics.results import EvaluationResult, FrameRecord, MetricStats, Summary
from vsrflow.metrics.sources import iter_frames
from vsrflow.metrics.temporal import TemporalFlowMeter

__all__ = [
    "CSV_COLUMNS",
    "EvaluationResult",
    "FrameRecord",
    "MetricStats",
    "Summary",
    "evaluate_pair",
    "iter_frames",
    "summary_dict",
    "write_csv",
]

ResizePolicy = Literal["slight", "never"]
Align = Literal["strict", "truncate"]

#: A size difference up to max(SLIGHT_PIXELS, SLIGHT_FRACTION * reference) per dimension is "slight".
SLIGHT_PIXELS = 4
SLIGHT_FRACTION = 0.02


def slight_tolerance(reference_dim: int) -> int:
    """Largest per-dimension difference (pixels) still resized for a reference dimension of this size."""
    return max(SLIGHT_PIXELS, math.floor(SLIGHT_FRACTION * reference_dim))


def _size_error(out_wh: tuple[int, int], ref_wh: tuple[int, int], policy: ResizePolicy) -> InputError:
    (ow, oh), (rw, rh) = out_wh, ref_wh
    ratio_w, ratio_h = ow / rw, oh / rh
    if policy == "never":
        reason = "resize_policy='never' refuses any size difference"
    elif abs(ratio_w - ratio_h) > SLIGHT_FRACTION:
        reason = f"aspect ratios differ ({ow / oh:.4f} vs {rw / rh:.4f})"
    else:
        reason = f"output is {ratio_w:.3g}x the reference size: check the scale factor"
    return InputError(
        f"frame sizes differ too much to compare: output {ow}x{oh}, reference {rw}x{rh} ({reason})",
        hint=(
            f"sizes within max({SLIGHT_PIXELS} px, {SLIGHT_FRACTION:.0%}) per dimension are resized; "
            "compare an output with the reference of the same scale"
        ),
    )


def _match_size(
    output: np.ndarray, reference: np.ndarray, policy: ResizePolicy, notes: list[str]
) -> np.ndarray:
    """Return ``output`` at the reference frame's size (resized if the difference is slight)."""
    oh, ow = output.shape[:2]
    rh, rw = reference.shape[:2]
    if (oh, ow) == (rh, rw):
        return output
    slight = abs(ow - rw) <= slight_tolerance(rw) and abs(oh - rh) <= slight_tolerance(rh)
    if policy != "slight" or not slight:
        raise _size_error((ow, oh), (rw, rh), policy)
    note = f"output frames {ow}x{oh} resized to the reference size {rw}x{rh} (bicubic)"
    if note not in notes:
        notes.append(note)
    # Bicubic on the integer frame: OpenCV saturates to the input dtype, so the result is still a
    # valid uint8/uint16 frame (quantised once, as the conventions require).
    resized: np.ndarray = cv2.resize(output, (rw, rh), interpolation=cv2.INTER_CUBIC)
    return resized


def _check_frame(img: np.ndarray, what: str, index: int) -> None:
    if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3:
        shape = getattr(img, "shape", type(img).__name__)
        raise InputError(f"{what} frame {index}: expected an (H, W, 3) RGB array, got {shape}")


def _drain(frames: Iterator[np.ndarray]) -> int:
    return sum(1 for _ in frames)


def _close(frames: Iterator[np.ndarray]) -> None:
    # Generators (e.g. iter_frames) hold an open decoder until closed; close them on early exit.
    close = getattr(frames, "close", None)
    if callable(close):
        close()


def evaluate_pair(
    output_frames: Iterable[np.ndarray],
    reference_frames: Iterable[np.ndarray],
    *,
    scale_crop: int,
    resize_policy: ResizePolicy = "slight",
    align: Align = "strict",
) -> EvaluationResult:
    """Measure every frame pair of two sequences: PSNR/SSIM (RGB and Y) and tOF.

    Args:
        output_frames: the upscaled frames, ``(H, W, 3)`` RGB uint8/uint16, in display order.
        reference_frames: the ground-truth frames, same format.
        scale_crop: pixels cropped from each border before every metric (the scale factor).
        resize_policy: ``"slight"`` resizes near-equal output sizes to the reference (see module);
            ``"never"`` requires equal sizes.
        align: ``"strict"`` requires equal frame counts; ``"truncate"`` compares the common prefix.

    Returns:
        An :class:`EvaluationResult` with one :class:`FrameRecord` per compared pair and a summary.

    Raises:
        InputError: empty input, a non-RGB frame, sizes that differ too much, or (``strict``)
            differing frame counts; each message names both sizes or counts.
    """
    if align not in ("strict", "truncate"):
        raise InputError(f"unknown align {align!r}", hint="use 'strict' or 'truncate'")
    if resize_policy not in ("slight", "never"):
        raise InputError(f"unknown resize_policy {resize_policy!r}", hint="use 'slight' or 'never'")
    meter = TemporalFlowMeter(crop=scale_crop)
    records: list[FrameRecord] = []
    notes: list[str] = []
    out_it, ref_it = iter(output_frames), iter(reference_frames)
    try:
        index = 0
        while True:
            out = next(out_it, None)
            ref = next(ref_it, None)
            if out is None or ref is None:
                # One (or both) ended: count what is left of the other to report exact lengths.
                n_out = index + (0 if out is None else 1 + _drain(out_it))
                n_ref = index + (0 if ref is None else 1 + _drain(ref_it))
                break
            _check_frame(out, "output", index)
            _check_frame(ref, "reference", index)
            out = _match_size(out, ref, resize_policy, notes)
            scores = image_scores(out, ref, crop=scale_crop)
            tof = meter.update(out, ref)
            records.append(
                FrameRecord(
                    index=index,
                    psnr_rgb=scores.psnr_rgb,
                    psnr_y=scores.psnr_y,
                    ssim_rgb=scores.ssim_rgb,
                    ssim_y=scores.ssim_y,
                    tof=tof,
                )
            )
            index += 1
    finally:
        _close(out_it)
        _close(ref_it)

    if n_out != n_ref:
        if align == "strict":
            raise InputError(
                f"frame counts differ: output has {n_out} frames, reference has {n_ref}",
                hint="an upscale must keep every frame; pass align='truncate' to compare the common prefix",
            )
        notes.append(
            f"frame counts differ (output {n_out}, reference {n_ref}): compared the first {len(records)}"
        )
    if not records:
        raise InputError(
            f"nothing to compare: output has {n_out} frames, reference has {n_ref}",
            hint="check that both inputs hold decodable frames",
        )
    return EvaluationResult(
        frames=records,
        summary=Summary.of(records),
        scale_crop=scale_crop,
        output_frames=n_out,
        reference_frames=n_ref,
        notes=notes,
    )
