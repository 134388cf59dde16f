"""iter_frames on image folders and single images (videos: tests/integration/test_metrics_video.py)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from vsrflow.errors import InputError
from vsrflow.metrics.sources import iter_frames, list_images


def _write(path: Path, rgb: np.ndarray) -> None:
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))  # OpenCV writes BGR


@pytest.fixture
def frames() -> list[np.ndarray]:
    photo = data.chelsea()
    return [np.ascontiguousarray(photo[10 * t : 10 * t + 40, 20:84]) for t in range(11)]


def test_folder_yields_rgb_uint8_in_natural_order(tmp_path: Path, frames: list[np.ndarray]) -> None:
    for i, frame in enumerate(frames):
        _write(tmp_path / f"f{i}.png", frame)  # f10 must come after f9, not after f1
    (tmp_path / "notes.txt").write_text("not a frame")
    got = list(iter_frames(tmp_path))
    assert len(got) == len(frames)
    for g, f in zip(got, frames, strict=True):
        assert g.dtype == np.uint8 and g.shape == (40, 64, 3)
        assert np.array_equal(g, f)  # PNG is lossless and channels come back as RGB


def test_jpg_and_single_image(tmp_path: Path, frames: list[np.ndarray]) -> None:
    _write(tmp_path / "a.JPG", frames[0])
    _write(tmp_path / "b.jpeg", frames[1])
    assert [p.name for p in list_images(tmp_path)] == ["a.JPG", "b.jpeg"]
    (single,) = iter_frames(tmp_path / "a.JPG")
    # Lossy, but red stays red: a BGR/RGB swap would move the mean far more than JPEG error.
    assert np.abs(single.astype(int) - frames[0]).mean() < 4


def test_sixteen_bit_grey_and_alpha_pngs(tmp_path: Path) -> None:
    value16 = np.array([[0, 257 * 10 + 128, 65535]], np.uint16)  # 10.498 -> 10 after /257, rounded
    rgb16 = np.repeat(value16[..., None], 3, axis=2)
    assert cv2.imwrite(str(tmp_path / "a16.png"), rgb16)
    assert cv2.imwrite(str(tmp_path / "b_grey.png"), np.array([[5, 6, 7]], np.uint8))
    bgra = np.zeros((1, 3, 4), np.uint8)
    bgra[..., 0], bgra[..., 3] = 200, 255  # blue in BGRA
    assert cv2.imwrite(str(tmp_path / "c_alpha.png"), bgra)
    a16, grey, alpha = iter_frames(tmp_path)
    assert a16.dtype == np.uint8 and a16[0, :, 0].tolist() == [0, 10, 255]
    assert grey.shape == (1, 3, 3) and grey[0, 2].tolist() == [7, 7, 7]
    assert alpha.shape == (1, 3, 3) and alpha[0, 0].tolist() == [0, 0, 200]


def test_bad_paths_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no PNG/JPG images"):
        list(iter_frames(tmp_path))
    with pytest.raises(InputError, match="no such video file or image folder"):
        list(iter_frames(tmp_path / "missing"))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="not a readable PNG/JPG image"):
        list(iter_frames(tmp_path / "broken.png"))
    text = tmp_path / "clip.mp4"
    text.write_text("this is not a video\n" * 20)
    with pytest.raises(InputError, match=r"clip\.mp4"):
        list(iter_frames(text))
