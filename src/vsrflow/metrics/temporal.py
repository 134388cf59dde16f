"""tOF: temporal consistency of an output sequence against its reference (TecoGAN / EGVSR).

For each step ``t-1 -> t`` dense optical flow is computed with OpenCV's Farneback method on the grey
uint8 frames of the reference and, separately, of the output::

    cv2.calcOpticalFlowFarneback(prev, cur, None, 0.5, 3, 15, 3, 5, 1.2, 0)

and the step's tOF is the mean over pixels of the L2 norm of the difference of the two flow fields,
in pixels of motion (lower is better; 0 for an output whose motion matches the reference exactly).
A sequence of N frames has N-1 tOF values; the first frame has none.

Grey is OpenCV's ``COLOR_RGB2GRAY`` (BT.601 full-range weights, rounded to uint8) because Farneback
needs 8-bit input and the published tOF numbers were computed that way. uint16 frames are first
rounded to uint8 with ``value / 257``. The same border ``crop`` as the spatial metrics is applied to
the frames before the flow is computed.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from vsrflow.errors import InputError
from vsrflow.metrics.image import crop_border

#: Farneback parameters of the published tOF: pyr_scale, levels, winsize, iterations, poly_n,
#: poly_sigma, flags.
FARNEBACK_PARAMS = (0.5, 3, 15, 3, 5, 1.2, 0)

Grey = NDArray[np.uint8]
Flow = NDArray[np.float32]


def to_uint8(img: np.ndarray) -> NDArray[np.uint8]:
    """Quantise a uint8/uint16 frame to uint8 (uint16: ``round(value / 257)``; uint8 unchanged)."""
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return np.rint(img.astype(np.float64) / 257.0).astype(np.uint8)
    raise InputError(f"expected a uint8 or uint16 frame, got dtype {img.dtype}")


def to_grey(img: np.ndarray, *, crop: int = 0) -> Grey:
    """``(H, W, 3)`` RGB uint8/uint16 -> ``(H-2crop, W-2crop)`` grey uint8 (OpenCV RGB2GRAY weights)."""
    if img.ndim != 3 or img.shape[2] != 3:
        raise InputError(f"expected an RGB frame of shape (H, W, 3), got shape {img.shape}")
    rgb = np.ascontiguousarray(crop_border(to_uint8(img), crop))
    return np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), dtype=np.uint8)


def farneback(prev: Grey, cur: Grey) -> Flow:
    """Dense flow ``prev -> cur`` as ``(H, W, 2)`` float32 (dx, dy) in pixels, with the tOF parameters."""
    pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags = FARNEBACK_PARAMS
    # flow=None (a fresh output array) as in the published tOF code. Some OpenCV releases' stubs
    # omit None and others accept it, so the call goes through an untyped handle: a per-line
    # ignore would be "unused" on one release and required on the other.
    calc: Any = cv2.calcOpticalFlowFarneback
    flow = calc(
        prev,
        cur,
        None,
        pyr_scale,
        levels,
        winsize,
        iterations,
        poly_n,
        poly_sigma,
        flags,
    )
    return np.asarray(flow, dtype=np.float32)


def flow_difference(output_flow: Flow, reference_flow: Flow) -> float:
    """Mean over pixels of ``|| output_flow - reference_flow ||_2`` (pixels), computed in float64."""
    diff = output_flow.astype(np.float64) - reference_flow.astype(np.float64)
    return float(np.mean(np.sqrt(np.sum(diff * diff, axis=-1)), dtype=np.float64))


class TemporalFlowMeter:
    """Streaming tOF: feed frame pairs in order; keeps only the previous grey frame of each sequence.

    Memory is two grey frames regardless of sequence length. Frame pairs must already have equal
    sizes (the evaluator resizes first); the size must not change within a sequence.

    Example::

        meter = TemporalFlowMeter(crop=4)
        for out, ref in zip(outputs, references):
            value = meter.update(out, ref)   # None for the first pair, then the step's tOF
    """

    def __init__(self, *, crop: int = 0) -> None:
        if crop < 0:
            raise InputError(f"crop must be >= 0 pixels, got {crop}")
        self.crop = crop
        self._prev_output: Grey | None = None
        self._prev_reference: Grey | None = None

    def reset(self) -> None:
        """Forget the previous frames (start a new sequence, e.g. after a scene cut)."""
        self._prev_output = None
        self._prev_reference = None

    def update(self, output: np.ndarray, reference: np.ndarray) -> float | None:
        """Add the next pair; return tOF of the step from the previous pair, or None for the first pair.

        Args:
            output, reference: ``(H, W, 3)`` RGB frames of equal shape, uint8 or uint16.
        """
        if output.shape != reference.shape:
            raise InputError(f"tOF frame shapes differ: output {output.shape}, reference {reference.shape}")
        cur_out = to_grey(output, crop=self.crop)
        cur_ref = to_grey(reference, crop=self.crop)
        prev_out, prev_ref = self._prev_output, self._prev_reference
        self._prev_output, self._prev_reference = cur_out, cur_ref
        if prev_out is None or prev_ref is None:
            return None
        if prev_ref.shape != cur_ref.shape:
            raise InputError(
                f"frame size changed within the sequence: {prev_ref.shape[1]}x{prev_ref.shape[0]} -> "
                f"{cur_ref.shape[1]}x{cur_ref.shape[0]} (after crop)",
                hint="tOF needs a constant frame size; call reset() at the change",
            )
        return flow_difference(farneback(prev_out, cur_out), farneback(prev_ref, cur_ref))
