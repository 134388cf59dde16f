"""`vsrflow upscale` on still images, as Real-ESRGAN users expect: one image to one image, a folder
to a folder; 16-bit PNG stays 16-bit, alpha and grayscale are kept, the pixels are the model's."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import run_cli
from vsrflow.media.images import read_image

FAST = "realesr-animevideov3"  # x4


@pytest.fixture(scope="module")
def env(model_env: dict[str, str]) -> dict[str, str]:
    return model_env


def _gradient(h: int, w: int, dtype: type) -> np.ndarray:
    full = np.iinfo(dtype).max
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * full // (w - 1), y * full // (h - 1), (x + y) * full // (w + h - 2)], axis=2)
    return rgb.astype(dtype)


def test_a_16_bit_png_comes_out_16_bit_and_upscaled(env: dict[str, str], tmp_path: Path) -> None:
    src, out = tmp_path / "photo.png", tmp_path / "big.png"
    rgb = _gradient(12, 16, np.uint16)
    assert cv2.imwrite(str(src), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    proc = run_cli(["upscale", str(src), "-o", str(out), "--model", FAST, "--scale", "2"], env)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}: 16x12 -> 32x24, 16-bit" in proc.stdout
    got = read_image(out)
    assert got.rgb.dtype == np.uint16 and got.rgb.shape == (24, 32, 3) and got.alpha is None
    # Really 16-bit data (not 8-bit values scaled up): levels between multiples of 257 occur.
    assert np.count_nonzero(got.rgb % 257) > got.rgb.size // 4
    # The model's picture: a smooth gradient stays close to the bicubic upscale of the source.
    ref = cv2.resize(rgb, (32, 24), interpolation=cv2.INTER_CUBIC).astype(np.float64)
    assert np.abs(got.rgb.astype(np.float64) - ref).mean() < 0.08 * 65535


def test_alpha_and_gray_are_kept(env: dict[str, str], tmp_path: Path) -> None:
    rgba = np.dstack([_gradient(10, 14, np.uint8), np.full((10, 14), 128, np.uint8)])
    assert cv2.imwrite(str(tmp_path / "a.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    assert cv2.imwrite(str(tmp_path / "g.png"), _gradient(10, 14, np.uint8)[:, :, 0])
    for name in ("a.png", "g.png"):
        proc = run_cli(
            ["upscale", str(tmp_path / name), "-o", str(tmp_path / f"x{name}"), "--model", FAST], env
        )
        assert proc.returncode == 0, proc.stderr
    a = cv2.imread(str(tmp_path / "xa.png"), cv2.IMREAD_UNCHANGED)
    assert a.shape == (40, 56, 4) and abs(int(np.median(a[:, :, 3])) - 128) <= 1
    g = cv2.imread(str(tmp_path / "xg.png"), cv2.IMREAD_UNCHANGED)
    assert g.shape == (40, 56)


@pytest.mark.slow
def test_a_folder_of_images_goes_to_a_folder(env: dict[str, str], tmp_path: Path) -> None:
    src = tmp_path / "photos"
    src.mkdir()
    for i, suffix in enumerate((".png", ".jpg", ".webp")):
        assert cv2.imwrite(str(src / f"p{i}{suffix}"), _gradient(8 + i, 12, np.uint8))
    (src / "notes.txt").write_text("not an image")
    out = tmp_path / "big"
    proc = run_cli(["upscale", str(src), "-o", str(out), "--model", FAST, "--scale", "2"], env)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["p0.png", "p1.jpg", "p2.webp"]
    assert [read_image(out / f"p{i}{s}").rgb.shape for i, s in enumerate((".png", ".jpg", ".webp"))] == [
        (16, 24, 3), (18, 24, 3), (20, 24, 3),
    ]  # fmt: skip
    again = run_cli(["upscale", str(src), "-o", str(out), "--model", FAST], env)
    assert again.returncode == 2 and "already exists" in again.stderr and "--overwrite" in again.stderr


def test_bad_image_inputs_are_input_errors(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    proc = run_cli(["upscale", str(bad), "-o", str(tmp_path / "o.png"), "--model", FAST], env)
    assert proc.returncode == 2 and "not a readable image" in proc.stderr
    good = tmp_path / "ok.png"
    assert cv2.imwrite(str(good), _gradient(8, 8, np.uint8))
    proc = run_cli(["upscale", str(good), "-o", str(tmp_path / "o.mp4"), "--model", FAST], env)
    assert proc.returncode == 2 and "an image input writes an image" in proc.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_cli(["upscale", str(empty), "-o", str(tmp_path / "out"), "--model", FAST], env)
    assert proc.returncode == 2 and "holds no images" in proc.stderr
