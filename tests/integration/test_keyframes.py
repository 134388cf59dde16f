"""keyframe_indices / scan_frames on real clips, checked against ffprobe's packet list."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.mediagen import FFMPEG, make_video, run
from vsrflow.errors import InputError
from vsrflow.media.keyframes import keyframe_indices, scan_frames
from vsrflow.media.probe import probe
from vsrflow.workflow.job.plan import plan_chunks

FFPROBE = shutil.which("ffprobe") or "ffprobe"


def ffprobe_keyframes(path: Path) -> tuple[list[int], list[int]]:
    """(sorted pts, presentation indices of 'K' packets) of the first video stream, per ffprobe."""
    out = subprocess.run(
        [
            FFPROBE,
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts,flags",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    packets = [(int(p["pts"]), "K" in p["flags"]) for p in json.loads(out)["packets"]]
    packets.sort()
    return [p for p, _ in packets], [i for i, (_, key) in enumerate(packets) if key]


def x264_clip(path: Path, frames: int, gop: int, *, bframes: int = 2, extra: tuple[str, ...] = ()) -> Path:
    """A libx264 clip with a keyframe exactly every ``gop`` frames (no scene-cut keyframes)."""
    run(
        [
            *(FFMPEG, "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25"),
            *("-frames:v", str(frames), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"),
            *("-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-bf", str(bframes), *extra),
            str(path),
        ]
    )
    return path


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_fixed_gop_with_bframes_matches_ffprobe(tmp_path: Path, suffix: str) -> None:
    # ultrafast disables B-frames; re-enable them so decode order != presentation order.
    clip = x264_clip(tmp_path / f"gop{suffix}", 120, 12, extra=("-x264-params", "bframes=2:b-adapt=0"))
    table = scan_frames(clip)
    pts, keys = ffprobe_keyframes(clip)
    assert list(table.pts) == pts
    assert keyframe_indices(clip) == keys == list(range(0, 120, 12))
    assert table.frame_count == probe(clip).frame_count == 120
    # Decode order really differs from presentation order (the B-frame case is exercised).
    dts_order = subprocess.run(
        [
            FFPROBE,
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts",
            "-of",
            "csv=p=0",
            str(clip),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert [int(x) for x in dts_order] != sorted(int(x) for x in dts_order)


def test_make_video_default_gop_has_one_keyframe(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "short.mp4", frames=30, codec="libx264")
    assert keyframe_indices(clip) == ffprobe_keyframes(clip)[1] == [0]


def test_vfr_clip_pts_match_ffprobe(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "vfr.mkv", frames=40, vfr=True)
    table = scan_frames(clip)
    pts, keys = ffprobe_keyframes(clip)
    assert list(table.pts) == pts and list(table.keyframes) == keys
    info = probe(clip)
    assert info.is_vfr
    chunks = plan_chunks(info, list(table.keyframes), target_seconds=1.0, frame_pts=table.pts)
    assert chunks[-1].end == info.frame_count
    assert all(c.start_pts == table.pts[c.start] for c in chunks)


def test_plan_on_a_real_clip_is_keyframe_aligned(tmp_path: Path) -> None:
    clip = x264_clip(tmp_path / "long.mp4", 300, 25, bframes=0)
    table = scan_frames(clip)
    chunks = plan_chunks(probe(clip), list(table.keyframes), target_seconds=3.0)
    assert [(c.start, c.end) for c in chunks] == [(0, 75), (75, 150), (150, 225), (225, 300)]
    assert all(c.aligned for c in chunks)
    assert [c.start_pts for c in chunks] == [table.pts[c.start] for c in chunks]


def test_not_a_video_is_an_input_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 10)
    with pytest.raises(InputError, match=r"junk\.mp4"):
        keyframe_indices(junk)
