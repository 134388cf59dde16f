"""Metrics on real decoded video made by the ffmpeg CLI, cross-checked against ffmpeg itself.

Videos are lossless FFV1 in planar RGB (gbrp), so the decoded frames are exact and ffmpeg's own
``rawvideo rgb24`` output and ``psnr`` filter are independent oracles for our reader and PSNR-RGB.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from vsrflow.errors import InputError
from vsrflow.metrics.evaluate import evaluate_pair
from vsrflow.metrics.sources import iter_frames

# The Makefile installs ffmpeg; a missing CLI is a broken set-up, so fail rather than skip.
FFMPEG = shutil.which("ffmpeg")

W, H, N = 64, 48, 5


def _ffmpeg(*args: str) -> subprocess.CompletedProcess[bytes]:
    assert FFMPEG is not None, "ffmpeg CLI missing: run `make install`"
    argv = [FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *args]
    proc = subprocess.run(argv, capture_output=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc


def _testsrc(path: Path, *, frames: int = N, vf: str | None = None) -> Path:
    args = ["-f", "lavfi", "-i", f"testsrc2=size={W}x{H}:rate=10", "-frames:v", str(frames)]
    if vf:
        args += ["-vf", vf]
    _ffmpeg(*args, "-c:v", "ffv1", "-pix_fmt", "gbrp", str(path))
    return path


def _ffmpeg_rgb24(path: Path) -> np.ndarray:
    raw = _ffmpeg("-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-").stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, H, W, 3)


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("metrics_video")
    ref = _testsrc(folder / "ref.mkv")
    # A 2x down/up round trip: a realistic, smoothly varying error on every frame.
    out = _testsrc(folder / "out.mkv", vf=f"scale={W // 2}:{H // 2}:flags=area,scale={W}:{H}:flags=bicubic")
    return out, ref


def test_iter_frames_decodes_every_frame_exactly(videos: tuple[Path, Path]) -> None:
    _, ref = videos
    frames = list(iter_frames(ref))
    assert len(frames) == N
    assert all(f.dtype == np.uint8 and f.shape == (H, W, 3) for f in frames)
    assert np.array_equal(np.stack(frames), _ffmpeg_rgb24(ref))


def test_psnr_rgb_agrees_with_ffmpeg_psnr_filter(videos: tuple[Path, Path], tmp_path: Path) -> None:
    out, ref = videos
    result = evaluate_pair(iter_frames(out), iter_frames(ref), scale_crop=0)
    assert len(result.frames) == N and result.notes == []
    stats = tmp_path / "psnr.log"
    # Run from tmp_path with a bare file name: the filter's option parser treats ':' as a separator.
    subprocess.run(
        [
            str(FFMPEG),
            "-hide_banner",
            "-loglevel",
            "error",
            "-i",
            str(out),
            "-i",
            str(ref),
            "-lavfi",
            "psnr=stats_file=psnr.log",
            "-f",
            "null",
            "-",
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=300,
    )
    ffmpeg_psnr = [float(m) for m in re.findall(r"psnr_avg:([0-9.]+)", stats.read_text())]
    assert len(ffmpeg_psnr) == N
    for record, theirs in zip(result.frames, ffmpeg_psnr, strict=True):
        assert record.psnr_rgb == pytest.approx(theirs, abs=0.006)  # ffmpeg prints 2 decimals
    assert all(0.5 < r.ssim_y < 1 for r in result.frames)
    assert result.frames[0].tof is None and all(r.tof is not None for r in result.frames[1:])


def test_video_frame_count_mismatch(videos: tuple[Path, Path], tmp_path: Path) -> None:
    _, ref = videos
    short = _testsrc(tmp_path / "short.mkv", frames=3)
    with pytest.raises(InputError, match=f"output has 3 frames, reference has {N}"):
        evaluate_pair(iter_frames(short), iter_frames(ref), scale_crop=2)
