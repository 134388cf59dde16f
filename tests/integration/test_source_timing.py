"""Capture timing with real ffmpeg: clock jumps, mid-GOP starts, edit lists, AVI without index.

Each source is made here with ffmpeg, then upscaled by ``vsrflow upscale`` and by the chunked
job (``vsrflow submit --executor local``, several chunks); both outputs are checked with
ffprobe: frame count, every frame's time, and the A/V offset against the source's.
"""

from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.mediagen import FFMPEG, make_legacy, run

MODEL = "realesr-animevideov3"


def _ffprobe(path: Path, *args: str) -> str:
    return subprocess.run(
        ["ffprobe", "-v", "error", *args, str(path)], capture_output=True, text=True, check=True
    ).stdout


def frame_times(path: Path) -> list[float]:
    """Every decoded video frame's time (s), as ffprobe reports them."""
    out = _ffprobe(path, "-select_streams", "v:0", "-show_entries", "frame=best_effort_timestamp_time",
                   "-of", "csv=p=0")  # fmt: skip
    return [float(t.split(",")[0]) for t in out.split() if t.split(",")[0]]


def starts(path: Path) -> dict[str, float]:
    """start_time of the first video and the first audio stream (s)."""
    data = json.loads(_ffprobe(path, "-show_entries", "stream=codec_type,start_time", "-of", "json"))
    out: dict[str, float] = {}
    for st in data["streams"]:
        out.setdefault(st["codec_type"], float(st["start_time"]))
    return out


def both_paths(
    src: Path, tmp_path: Path, env: dict[str, str], chunk_frames: int = 24
) -> tuple[Path, Path, str]:
    """Upscale ``src`` with ``upscale`` and with the chunked job; (single, chunked, their stderr)."""
    common = ["--model", MODEL, "--scale", "2", "--preset-x264", "ultrafast"]
    single, chunked = tmp_path / "single.mkv", tmp_path / "chunked.mkv"
    proc = run_cli(["upscale", str(src), "-o", str(single), "--no-progress", *common], env)
    assert proc.returncode == 0, proc.stderr
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    proc2 = run_cli(["submit", str(src), "-o", str(chunked), "--jobs-root", str(jobs),
                     "--chunk-frames", str(chunk_frames), *common], env)  # fmt: skip
    assert proc2.returncode == 0, proc2.stderr
    return single, chunked, proc.stderr + proc2.stderr


def assert_same_timeline(single: Path, chunked: Path, frames: int, step: float) -> list[float]:
    a, b = frame_times(single), frame_times(chunked)
    assert len(a) == frames and a == b
    assert all(abs((y - x) - step) < 1.5e-3 for x, y in itertools.pairwise(a)), a
    return a


@pytest.mark.slow
def test_joined_captures_are_retimed_in_both_paths(model_env: dict[str, str], tmp_path: Path) -> None:
    """Two TS captures joined with ``cat`` (the clock jumps from ~101 s to ~6 s): re-timed into one
    continuous timeline, each segment with its own A/V offset, said in a warning; before, refused."""
    a = make_legacy(tmp_path / "a.ts", "progressive", size=(64, 48), frames=25, audio=True, start_seconds=100)
    b = make_legacy(tmp_path / "b.ts", "progressive", size=(64, 48), frames=25, audio=True, start_seconds=5)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(a.read_bytes() + b.read_bytes())
    single, chunked, stderr = both_paths(joined, tmp_path, model_env)
    assert "clock jumps" in stderr and "re-timed monotonically" in stderr and "joined.ts" in stderr
    # 50 frames at 25 fps, no gap and no overlap where the captures meet.
    times = assert_same_timeline(single, chunked, 50, 0.04)
    assert times[-1] - times[0] == pytest.approx(49 * 0.04, abs=1.5e-3)
    s, o1, o2 = starts(a), starts(single), starts(chunked)
    assert o1 == o2
    assert o1["video"] - o1["audio"] == pytest.approx(s["video"] - s["audio"], abs=1.5e-3)
    assert not list((tmp_path / "jobs").rglob("retimed.*")), "the re-timed copy is removed when done"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".single")], "no hidden copy left"


@pytest.mark.slow
def test_ts_cut_mid_gop_skips_the_undecodable_lead_in_both_paths(
    model_env: dict[str, str], tmp_path: Path
) -> None:
    """A TS whose first packets reference pictures before the cut: counted as the decodable
    frames up front (ffprobe's decoded count), the skipped packets named; before, the count
    mismatch surfaced only after the whole upscale (single) or failed the chunk (job)."""
    full = make_legacy(tmp_path / "full.ts", "progressive", size=(64, 48), frames=84, audio=True)
    data = full.read_bytes()
    cut = tmp_path / "cut.ts"
    cut.write_bytes(data[(len(data) * 2 // 5) // 188 * 188 :])  # whole TS packets, mid-GOP
    decodable = len(frame_times(cut))
    listing = _ffprobe(cut, "-select_streams", "v:0", "-show_entries", "packet=pts", "-of", "csv=p=0")
    packets = len(listing.split())
    assert 48 <= decodable < packets  # the cut really starts with undecodable packets
    single, chunked, stderr = both_paths(cut, tmp_path, model_env)
    skipped = packets - decodable
    assert f"{skipped} leading video packets before the first keyframe cannot be decoded" in stderr
    assert_same_timeline(single, chunked, decodable, 0.04)


@pytest.mark.slow
def test_edit_list_mp4_chunks_like_the_single_pass(model_env: dict[str, str], tmp_path: Path) -> None:
    """A stream-copy cut (``-ss 0.5 -c copy``) starts between keyframes: the MP4 edit list hides
    the preroll packets. Every counter skips them alike, so the job plans and splits it; before,
    extract counted the preroll and refused the source."""
    src = tmp_path / "src.mp4"
    run([FFMPEG, "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25",
         "-f", "lavfi", "-i", "sine=sample_rate=48000:duration=2.6", "-frames:v", "65", "-c:v", "libx264",
         "-preset", "ultrafast", "-g", "12", "-c:a", "aac", "-t", "2.6", str(src)])  # fmt: skip
    cut = tmp_path / "cut.mp4"
    run([FFMPEG, "-nostdin", "-v", "error", "-y", "-ss", "0.52", "-i", str(src), "-c", "copy", str(cut)])
    shown = len(frame_times(cut))
    single, chunked, _ = both_paths(cut, tmp_path, model_env)
    assert_same_timeline(single, chunked, shown, 0.04)
    s, o = starts(cut), starts(single)
    assert o["video"] - o["audio"] == pytest.approx(s["video"] - s["audio"], abs=1.5e-3)


@pytest.mark.slow
def test_avi_without_index_in_both_paths(model_env: dict[str, str], tmp_path: Path) -> None:
    """An AVI whose idx1 index is gone (a capture tool that never wrote it): read in order, the
    chunks seek without an index (the demuxer scans), every frame comes through."""
    full = tmp_path / "full.avi"
    run([FFMPEG, "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25",
         "-f", "lavfi", "-i", "sine=sample_rate=48000:duration=2", "-frames:v", "50", "-c:v", "mpeg4",
         "-g", "12", "-c:a", "pcm_s16le", "-t", "2", str(full)])  # fmt: skip
    data = full.read_bytes()
    noidx = tmp_path / "noidx.avi"
    noidx.write_bytes(data[: data.rfind(b"idx1")])
    assert b"idx1" not in noidx.read_bytes()
    single, chunked, _ = both_paths(noidx, tmp_path, model_env)
    assert_same_timeline(single, chunked, 50, 0.04)
    s, o = starts(noidx), starts(single)
    assert o["video"] - o["audio"] == pytest.approx(s["video"] - s["audio"], abs=1.5e-3)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("suffix", "video", "audio"),
    [
        # Opus pre-skip: ffmpeg 5.1's Matroska muxer moved the video 7 ms late (every stream but
        # the Opus one is shifted by its codec delay); the mux now measures and compensates.
        (".webm", ["-c:v", "libvpx-vp9", "-deadline", "realtime"], ["-c:a", "libopus"]),
        # Xvid with B-frames in AVI (decode times only): the derived pts start one frame (40 ms)
        # after the stream; the mux puts the first frame back at the stream's start.
        (".avi", ["-c:v", "mpeg4", "-vtag", "XVID", "-bf", "2", "-g", "12"], ["-c:a", "libmp3lame"]),
    ],
    ids=["vp9-opus-webm", "xvid-bframes-mp3-avi"],
)
def test_av_start_offset_is_kept_exactly(
    model_env: dict[str, str], tmp_path: Path, suffix: str, video: list[str], audio: list[str]
) -> None:
    """The output's video-to-audio start offset (ffprobe start_time) equals the source's within
    1 ms (Matroska's precision; an Opus/MP3 frame is 20-26 ms, so this is far below one)."""
    src = tmp_path / f"src{suffix}"
    run([FFMPEG, "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2", "-frames:v", "50",
         "-t", "2", *video, *audio, str(src)])  # fmt: skip
    single, chunked, _ = both_paths(src, tmp_path, model_env)
    s, o1, o2 = starts(src), starts(single), starts(chunked)
    for out in (o1, o2):
        assert out["video"] - out["audio"] == pytest.approx(s["video"] - s["audio"], abs=1e-3), (s, out)
    assert frame_times(single) == frame_times(chunked) and len(frame_times(single)) == 50
