"""PSNR/SSIM/Y of vsrflow.metrics.image against hand computation and scikit-image on real photos.

scikit-image is an independent implementation: its ``rgb2ycbcr`` is the same BT.601 studio-swing
formula (MATLAB's), and ``structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=255)`` filters the whole image (reflect padding, truncate
3.5 -> the same 11-tap kernel) and then drops a 5-pixel rim before averaging. The SSIM values it
averages are therefore exactly our 'valid' window positions, so both sides are compared on the
same cropped arrays with no further adjustment.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from skimage import data
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from vsrflow.errors import InputError
from vsrflow.metrics.image import image_scores, psnr, rgb_to_y, ssim

SK_SSIM = {"data_range": 255, "gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
PHOTOS = ("astronaut", "coffee", "chelsea")


def _photo(name: str) -> np.ndarray:
    img = getattr(data, name)()
    assert img.dtype == np.uint8 and img.ndim == 3
    return np.ascontiguousarray(img)


def _degrade(ref: np.ndarray, how: str) -> np.ndarray:
    h, w = ref.shape[:2]
    if how == "bicubic_x4":
        # The classic SR degradation: area-downscale by 4, bicubic back up, quantised once.
        small = cv2.resize(ref, (w // 4, h // 4), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(7)
    noisy = ref.astype(np.float64) + rng.normal(0.0, 8.0, ref.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module", params=[(p, d) for p in PHOTOS for d in ("bicubic_x4", "noise")], ids=str)
def pair(request: pytest.FixtureRequest) -> tuple[np.ndarray, np.ndarray]:
    name, how = request.param
    ref = _photo(name)
    return _degrade(ref, how), ref


def test_psnr_rgb_matches_skimage(pair: tuple[np.ndarray, np.ndarray]) -> None:
    out, ref = pair
    c = 4
    expected = peak_signal_noise_ratio(ref[c:-c, c:-c], out[c:-c, c:-c], data_range=255)
    assert psnr(out, ref, crop=c, channel="rgb") == pytest.approx(expected, rel=1e-12)


def test_psnr_y_matches_skimage(pair: tuple[np.ndarray, np.ndarray]) -> None:
    out, ref = pair
    c = 4
    y_ref = rgb2ycbcr(ref[c:-c, c:-c])[..., 0]
    y_out = rgb2ycbcr(out[c:-c, c:-c])[..., 0]
    expected = peak_signal_noise_ratio(y_ref, y_out, data_range=255)
    assert psnr(out, ref, crop=c, channel="y") == pytest.approx(expected, rel=1e-12)


def test_ssim_y_matches_skimage(pair: tuple[np.ndarray, np.ndarray]) -> None:
    out, ref = pair
    c = 4
    y_ref = rgb2ycbcr(ref[c:-c, c:-c])[..., 0]
    y_out = rgb2ycbcr(out[c:-c, c:-c])[..., 0]
    expected = structural_similarity(y_out, y_ref, **SK_SSIM)
    assert ssim(out, ref, crop=c, channel="y") == pytest.approx(expected, abs=1e-9)


def test_ssim_rgb_matches_skimage(pair: tuple[np.ndarray, np.ndarray]) -> None:
    out, ref = pair
    c = 2
    expected = structural_similarity(out[c:-c, c:-c], ref[c:-c, c:-c], channel_axis=2, **SK_SSIM)
    assert ssim(out, ref, crop=c, channel="rgb") == pytest.approx(expected, abs=1e-9)


def test_image_scores_equal_the_single_metric_functions(pair: tuple[np.ndarray, np.ndarray]) -> None:
    out, ref = pair
    scores = image_scores(out, ref, crop=4)
    assert scores.psnr_rgb == psnr(out, ref, crop=4, channel="rgb")
    assert scores.psnr_y == psnr(out, ref, crop=4, channel="y")
    assert scores.ssim_rgb == ssim(out, ref, crop=4, channel="rgb")
    assert scores.ssim_y == ssim(out, ref, crop=4, channel="y")


def test_psnr_by_hand_on_a_tiny_frame() -> None:
    ref = np.zeros((4, 4, 3), np.uint8)
    out = ref.copy()
    out[1, 2, 0] = 10  # one sample off by 10 among 48: MSE = 100 / 48
    expected = 10 * math.log10(255**2 * 48 / 100)
    assert psnr(out, ref, crop=0, channel="rgb") == pytest.approx(expected, rel=1e-15)
    # In Y the red error is scaled by 65.481/255 at one of 16 pixels.
    dy = 10 / 255 * 65.481
    expected_y = 10 * math.log10(255**2 * 16 / dy**2)
    assert psnr(out, ref, crop=0, channel="y") == pytest.approx(expected_y, rel=1e-13)
    # A difference on the border is removed by the crop; one inside is not.
    edge = ref.copy()
    edge[0, 2, 1] = 50
    assert psnr(edge, ref, crop=1, channel="rgb") == math.inf
    assert psnr(out, ref, crop=1, channel="rgb") == pytest.approx(10 * math.log10(255**2 * 12 / 100))


@pytest.mark.parametrize(
    ("rgb", "y"),
    [
        ((0, 0, 0), 16.0),
        ((255, 255, 255), 235.0),
        ((255, 0, 0), 16.0 + 65.481),
        ((0, 255, 0), 16.0 + 128.553),
        ((0, 0, 255), 16.0 + 24.966),
        ((51, 102, 204), 16.0 + 0.2 * 65.481 + 0.4 * 128.553 + 0.8 * 24.966),
    ],
)
def test_y_conversion_constants(rgb: tuple[int, int, int], y: float) -> None:
    img = np.array(rgb, np.uint8).reshape(1, 1, 3)
    result = rgb_to_y(img)
    assert result.dtype == np.float64 and result.shape == (1, 1)
    assert result[0, 0] == pytest.approx(y, abs=1e-12)


def test_y_is_not_rounded_and_uint16_maps_to_the_8bit_scale() -> None:
    img8 = np.array([[[1, 2, 3]]], np.uint8)
    y8 = rgb_to_y(img8)[0, 0]
    assert y8 != round(y8)
    img16 = img8.astype(np.uint16) * 257  # the same colours at 16 bits
    assert rgb_to_y(img16)[0, 0] == pytest.approx(y8, abs=1e-12)
    assert rgb_to_y(np.full((1, 1, 3), 65535, np.uint16))[0, 0] == pytest.approx(235.0, abs=1e-12)


def test_uint16_frames_score_like_their_8bit_equivalents() -> None:
    ref = _photo("chelsea")[:96, :128]
    out = _degrade(ref, "noise")
    for channel in ("y", "rgb"):
        as16 = (out.astype(np.uint16) * 257, ref.astype(np.uint16) * 257)
        assert psnr(*as16, crop=2, channel=channel) == pytest.approx(
            psnr(out, ref, crop=2, channel=channel), rel=1e-12
        )
        assert ssim(*as16, crop=2, channel=channel) == pytest.approx(
            ssim(out, ref, crop=2, channel=channel), abs=1e-12
        )


def test_identical_frames() -> None:
    ref = _photo("coffee")[:64, :64]
    assert psnr(ref, ref.copy(), crop=4, channel="y") == math.inf
    assert ssim(ref, ref.copy(), crop=4, channel="rgb") == pytest.approx(1.0, abs=1e-12)


def test_crop_border_changes_the_measured_region() -> None:
    ref = np.full((32, 32, 3), 128, np.uint8)
    out = ref.copy()
    out[:2, :, :] = 0  # damage only the top two rows
    assert psnr(out, ref, crop=2, channel="rgb") == math.inf
    assert psnr(out, ref, crop=1, channel="rgb") < 40


@pytest.mark.parametrize(
    ("a", "b", "match"),
    [
        (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8), "output 8x8, reference 9x8"),
        (np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8), r"shape \(H, W, 3\)"),
        (np.zeros((8, 8, 3), np.float32), np.zeros((8, 8, 3), np.float32), "uint8 or uint16"),
    ],
)
def test_bad_inputs_are_input_errors(a: np.ndarray, b: np.ndarray, match: str) -> None:
    with pytest.raises(InputError, match=match):
        psnr(a, b, crop=0, channel="rgb")


def test_crop_and_window_limits() -> None:
    img = np.zeros((20, 20, 3), np.uint8)
    with pytest.raises(InputError, match="leaves nothing"):
        psnr(img, img, crop=10, channel="y")
    with pytest.raises(InputError, match="crop must be >= 0"):
        psnr(img, img, crop=-1, channel="y")
    with pytest.raises(InputError, match="at least 11x11"):
        ssim(img, img, crop=5, channel="y")  # 10x10 left
    assert ssim(img, img, crop=4, channel="y") == pytest.approx(1.0)  # 12x12 left: 2x2 valid windows
