"""`vsrflow compare IN OUT`: chosen frames of the input (bicubic) next to the same frames of OUT."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np

from tests.conftest import run_cli
from tests.mediagen import decode_rgb, make_video
from vsrflow.media.images import read_image
from vsrflow.metrics.compare import GAP


def _doubled(src: Path, out: Path) -> Path:
    """A stand-in upscale: ffmpeg's 2x lanczos, lossless (any OUT of the same frames will do)."""
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(src),
         "-vf", "scale=iw*2:ih*2:flags=lanczos", "-c:v", "ffv1", "-pix_fmt", "yuv444p", str(out)],
        check=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    return out


def test_strip_and_slider(cli_env: dict[str, str], tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", size=(32, 24), frames=9)
    out = _doubled(src, tmp_path / "out.mkv")
    strip, page = tmp_path / "strip.png", tmp_path / "page.html"
    proc = run_cli(["compare", str(src), str(out), "-o", str(strip), "--html", str(page)], cli_env)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {strip} (frames 0, 4, 8)" in proc.stdout
    img = read_image(strip).rgb
    assert img.shape == (3 * 48 + 2 * GAP, 2 * 64 + GAP, 3)
    _, frames, _ = decode_rgb(out)
    for row, index in enumerate((0, 4, 8)):  # the output panel is the output's own pixels
        top = row * (48 + GAP)
        assert np.array_equal(img[top : top + 48, 64 + GAP :], frames[index])
    text = page.read_text()
    assert text.count("data:image/png;base64,") == 6 and 'type="range"' in text
    assert re.search(r"frame 4: left input", text)


def test_chosen_frames_and_bad_ones(cli_env: dict[str, str], tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", size=(32, 24), frames=5)
    out = _doubled(src, tmp_path / "out.mkv")
    proc = run_cli(["compare", str(src), str(out), "-o", str(tmp_path / "s.png"), "--frames", "1,3"], cli_env)
    assert proc.returncode == 0 and "(frames 1, 3)" in proc.stdout, proc.stderr
    assert read_image(tmp_path / "s.png").rgb.shape[0] == 2 * 48 + GAP
    proc = run_cli(["compare", str(src), str(out), "-o", str(tmp_path / "t.png"), "--frames", "7"], cli_env)
    assert proc.returncode == 2 and "frame 7 is not in both files" in proc.stderr
    proc = run_cli(["compare", str(src), str(out)], cli_env)
    assert proc.returncode == 2 and "-o STRIP.png and/or --html" in proc.stderr
