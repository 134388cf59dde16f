"""tOF: zero for a perfect copy, growing with injected temporal jitter, streaming one pair at a time."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from vsrflow.errors import InputError
from vsrflow.metrics.temporal import TemporalFlowMeter, farneback, flow_difference, to_grey

H, W, FRAMES = 72, 96, 8


def _panning_sequence(offsets: list[tuple[int, int]]) -> list[np.ndarray]:
    """Crops of a real photo moving 2 px right per frame, plus a per-frame (dy, dx) offset."""
    photo = data.astronaut()
    return [
        np.ascontiguousarray(photo[100 + dy : 100 + dy + H, 150 + 2 * t + dx : 150 + 2 * t + dx + W])
        for t, (dy, dx) in enumerate(offsets)
    ]


def _mean_tof(outputs: list[np.ndarray], references: list[np.ndarray], crop: int = 0) -> float:
    meter = TemporalFlowMeter(crop=crop)
    values = [meter.update(o, r) for o, r in zip(outputs, references, strict=True)]
    assert values[0] is None
    steps = [v for v in values[1:] if v is not None]
    assert len(steps) == len(outputs) - 1
    return float(np.mean(steps))


def _jitter(amplitude: int) -> list[tuple[int, int]]:
    rng = np.random.default_rng(3)
    return [(int(a), int(b)) for a, b in rng.integers(-amplitude, amplitude + 1, size=(FRAMES, 2))]


def test_identical_sequences_have_zero_tof() -> None:
    ref = _panning_sequence([(0, 0)] * FRAMES)
    assert _mean_tof([f.copy() for f in ref], ref) == 0.0
    assert _mean_tof([f.copy() for f in ref], ref, crop=4) == 0.0


def test_tof_grows_with_jitter() -> None:
    ref = _panning_sequence([(0, 0)] * FRAMES)
    small = _mean_tof(_panning_sequence(_jitter(1)), ref)
    large = _mean_tof(_panning_sequence(_jitter(4)), ref)
    assert 0.0 < small < large


def test_spatial_error_without_motion_error_scores_low() -> None:
    # Uniform blur changes every frame but not the motion: tOF stays far below real jitter.
    ref = _panning_sequence([(0, 0)] * FRAMES)
    blurred = [cv2.GaussianBlur(f, (5, 5), 1.0) for f in ref]
    jittered = _panning_sequence(_jitter(2))
    assert _mean_tof(blurred, ref) < 0.5 * _mean_tof(jittered, ref)


def test_step_value_is_mean_l2_norm_of_the_flow_difference() -> None:
    ref = _panning_sequence([(0, 0)] * 2)
    out = _panning_sequence([(0, 0), (1, 2)])
    meter = TemporalFlowMeter()
    assert meter.update(out[0], ref[0]) is None
    value = meter.update(out[1], ref[1])
    f_out = farneback(to_grey(out[0]), to_grey(out[1]))
    f_ref = farneback(to_grey(ref[0]), to_grey(ref[1]))
    expected = np.mean(np.linalg.norm(f_out.astype(np.float64) - f_ref, axis=-1))
    assert value == pytest.approx(expected, rel=1e-12)
    assert flow_difference(f_out, f_ref) == value


def test_reset_and_uint16_input() -> None:
    ref = _panning_sequence([(0, 0)] * 2)
    meter = TemporalFlowMeter()
    meter.update(ref[0], ref[0])
    meter.reset()
    assert meter.update(ref[1], ref[1]) is None
    # uint16 frames are rounded to the same uint8 grey frames.
    as16 = ref[0].astype(np.uint16) * 257
    assert np.array_equal(to_grey(as16), to_grey(ref[0]))


def test_mismatched_pair_is_refused() -> None:
    meter = TemporalFlowMeter()
    with pytest.raises(InputError, match="shapes differ"):
        meter.update(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8))
    meter.update(np.zeros((16, 16, 3), np.uint8), np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(InputError, match="16x16 -> 20x16"):
        meter.update(np.zeros((16, 20, 3), np.uint8), np.zeros((16, 20, 3), np.uint8))
