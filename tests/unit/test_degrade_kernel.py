"""The degradation maths of vsrflow.media.degrade: the MATLAB-style kernel and per-frame steps."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vsrflow.media.degrade import bicubic_downscale, degrade_frame, frame_rng, resize_weights


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_weights_are_normalised_and_symmetric(factor: int) -> None:
    weights, indices = resize_weights(48, factor)
    assert weights.shape[0] == 48 // factor
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    # Interior rows are the same antialiased cubic, symmetric about the block centre.
    mid = weights[weights.shape[0] // 2]
    np.testing.assert_allclose(mid, mid[::-1], atol=1e-12)
    assert indices.min() >= 0 and indices.max() < 48


def test_matlab_support_and_antialiasing() -> None:
    # x4: support 4 * 4 = 16 input pixels (MATLAB drops the two all-zero edge taps of 18).
    weights, _ = resize_weights(64, 4)
    assert weights.shape[1] == 16
    # Negative lobes (cubic, not a box/area filter).
    assert weights.min() < 0


def test_linear_ramp_gives_block_centres() -> None:
    # A symmetric kernel reproduces a linear signal exactly at the output pixel centres, which lie
    # at the centres of the HR blocks (pixel-centre alignment), away from the mirrored borders.
    ramp = np.tile(np.arange(64, dtype=np.float64)[None, :, None], (8, 1, 3))
    out = bicubic_downscale(ramp, 4)
    expected = np.arange(16) * 4 + 1.5
    np.testing.assert_allclose(out[1, 3:-3, 0], expected[3:-3], atol=1e-9)


def test_matches_pillow_antialiased_bicubic_inside() -> None:
    # Pillow's BICUBIC reduce is the same a = -0.5 stretched kernel (it rounds between its two
    # passes and renormalises at borders instead of mirroring): interior pixels agree within 1 level.
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    ours = degrade_frame(image, scale=4)
    pil = np.asarray(Image.fromarray(image).resize((16, 12), Image.Resampling.BICUBIC))
    diff = np.abs(ours.astype(int) - pil.astype(int))[2:-2, 2:-2]
    assert diff.max() <= 1


def test_constant_frame_stays_constant_8_and_16_bit() -> None:
    flat8 = np.full((24, 32, 3), 77, np.uint8)
    assert np.array_equal(degrade_frame(flat8, scale=4), np.full((6, 8, 3), 77, np.uint8))
    flat16 = np.full((24, 32, 3), 40000, np.uint16)
    out16 = degrade_frame(flat16, scale=2)
    assert out16.dtype == np.uint16 and np.array_equal(out16, np.full((12, 16, 3), 40000, np.uint16))


def _image() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, size=(48, 64, 3), dtype=np.uint8)


def test_each_option_changes_the_result_and_is_deterministic() -> None:
    image = _image()
    plain = degrade_frame(image, scale=2)
    variants = {
        "blur": lambda: degrade_frame(image, scale=2, blur=1.5),
        "noise": lambda: degrade_frame(image, scale=2, noise=5, rng=frame_rng(3, 0)),
        "jpeg": lambda: degrade_frame(image, scale=2, jpeg=30),
    }
    for name, make in variants.items():
        first, second = make(), make()
        assert np.array_equal(first, second), name
        assert not np.array_equal(first, plain), name


def test_noise_depends_on_seed_and_frame_index_only() -> None:
    image = _image()
    a = degrade_frame(image, scale=2, noise=5, rng=frame_rng(3, 0))
    assert not np.array_equal(a, degrade_frame(image, scale=2, noise=5, rng=frame_rng(4, 0)))
    assert not np.array_equal(a, degrade_frame(image, scale=2, noise=5, rng=frame_rng(3, 1)))


def test_jpeg_on_16_bit_goes_through_8_bits() -> None:
    image = _image().astype(np.uint16) * 257
    out = degrade_frame(image, scale=2, jpeg=90)
    assert out.dtype == np.uint16 and np.all(out % 257 == 0)


def test_non_multiple_and_missing_rng_are_refused() -> None:
    with pytest.raises(ValueError, match="not a multiple"):
        degrade_frame(np.zeros((10, 10, 3), np.uint8), scale=4)
    with pytest.raises(ValueError, match="random generator"):
        degrade_frame(np.zeros((8, 8, 3), np.uint8), scale=2, noise=1.0)
