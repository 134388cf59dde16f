"""Preview before a long run: `vsrflow upscale --frames A:B` / `--start T --duration D` upscale a
frame-exact slice (audio cut to the same span), so a model can be judged in a minute."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from tests.conftest import run_cli
from tests.mediagen import decode_rgb, make_video
from vsrflow.media.probe import probe

FAST = "realesr-animevideov3"


@pytest.fixture(scope="module")
def env(model_env: dict[str, str]) -> dict[str, str]:
    return model_env


@pytest.mark.slow
def test_frames_slice_is_frame_exact_with_audio(env: dict[str, str], tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", size=(32, 24), frames=20, audio_tracks=1)
    out = tmp_path / "preview.mp4"
    proc = run_cli(
        ["upscale", str(src), "-o", str(out), "--model", FAST, "--scale", "2", "--frames", "5:13"], env
    )
    assert proc.returncode == 0, proc.stderr
    assert "preview: frames 5..12 of 20" in proc.stderr
    info = probe(out)
    assert (info.width, info.height, info.frame_count) == (64, 48, 8)
    assert abs(info.duration - 8 / 25) <= 1 / 25 + 1e-6
    assert len(info.audio_streams) == 1
    with av.open(str(out)) as container:  # the audio is cut to the slice's span too
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        # The slice holds exactly 0.32 s; the final mux may end on a whole audio packet (4096 samples).
        assert abs(samples / stream.rate - 8 / 25) < 4096 / 48000 + 1e-3
    # Frame-exact: the preview's frames are the full upscale's frames 5..12, pixel for pixel
    # (lossless FFV1 both ways; the model sees the same decoded input values).
    full, part = tmp_path / "full.mkv", tmp_path / "part.mkv"
    common = ["--model", FAST, "--scale", "2", "--codec", "ffv1"]
    assert run_cli(["upscale", str(src), "-o", str(full), *common], env).returncode == 0
    proc = run_cli(["upscale", str(src), "-o", str(part), *common, "--frames", "5:13"], env)
    assert proc.returncode == 0, proc.stderr
    _, full_frames, _ = decode_rgb(full)
    _, part_frames, kinds = decode_rgb(part)
    assert kinds == ["video", "audio"] and len(part_frames) == 8
    assert all(np.array_equal(a, b) for a, b in zip(part_frames, full_frames[5:13], strict=True))


@pytest.mark.slow
def test_start_and_duration_pick_frames_by_time(env: dict[str, str], tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", size=(32, 24), frames=20)
    out = tmp_path / "preview.mkv"
    argv = [
        "upscale",
        str(src),
        "-o",
        str(out),
        "--model",
        FAST,
        "--scale",
        "2",
        "--start",
        "0.4",
        "--duration",
        "0.2",
    ]
    proc = run_cli(argv, env)
    assert proc.returncode == 0, proc.stderr
    assert "preview: frames 10..14 of 20" in proc.stderr  # 25 fps: 0.4 s is frame 10; 0.2 s is 5 frames
    assert probe(out).frame_count == 5


def test_bad_slices_are_input_errors(env: dict[str, str], tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", size=(32, 24), frames=6)
    for flags, message in (
        (["--frames", "4:2"], "is not A:B"),
        (["--frames", "3:9"], "is not inside its 6 frames"),
        (["--start", "-1", "--duration", "1"], "--start -1.0 must be >= 0"),
    ):
        proc = run_cli(["upscale", str(src), "-o", str(tmp_path / "o.mp4"), "--model", FAST, *flags], env)
        assert proc.returncode == 2 and message in proc.stderr, (flags, proc.stderr)
        assert not (tmp_path / "o.mp4").exists()
