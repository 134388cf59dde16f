"""Legacy sources with real ffmpeg: scan-type detection, conditioning, broadcast clocks.

Clips are generated here (tests/mediagen.make_legacy): woven 25i MPEG-2 (TFF and BFF), 3:2
telecined 29.97i film, camera-native 29.97i, progressive MPEG-2, DV AVI (PAL, bottom field
first). Detection needs some pixels (idet cannot judge 64x48), so detection clips are 96x72;
clips that go through the model are 64x48 with the scan type given (``--scan``).
"""

from __future__ import annotations

import itertools
import json
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli
from tests.mediagen import make_legacy
from vsrflow.media.condition import Conditioning
from vsrflow.media.keyframes import scan_frames
from vsrflow.media.probe import probe
from vsrflow.media.reader import FrameReader
from vsrflow.media.scan import detect_scan
from vsrflow.workflow.job.chunk_io import decode_conditioned_chunk
from vsrflow.workflow.job.plan import plan_chunks

MODEL = "realesr-animevideov3"


def ffprobe_video(path: Path) -> dict[str, object]:
    """ffprobe's view of the first video stream: field order, rate, every frame's time (best effort
    timestamp: MPEG-PS frames may come without a pts)."""
    stream = json.loads(
        subprocess.run(
            ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
             "stream=field_order,r_frame_rate,start_time:format=duration,start_time",
             "-of", "json", str(path)],
            capture_output=True, text=True, check=True,
        ).stdout
    )  # fmt: skip
    frames = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "frame=best_effort_timestamp_time", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    st = stream["streams"][0]
    return {
        "field_order": st.get("field_order", "unknown"),
        "rate": Fraction(st["r_frame_rate"]),
        "start": float(st.get("start_time", 0)),
        "format_start": float(stream["format"].get("start_time", 0)),
        "duration": float(stream["format"]["duration"]),
        "pts": [float(p.split(",")[0]) for p in frames if p.split(",")[0]],
    }


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("legacy")


@pytest.mark.parametrize(
    ("kind", "suffix", "frames", "expected"),
    [
        ("interlaced-tff", ".mpg", 25, ("interlaced", "tff", "tt")),
        ("interlaced-bff", ".ts", 25, ("interlaced", "bff", "bb")),
        ("telecine", ".mpg", 50, ("telecine", "tff", "tt")),
        ("camera-2997i", ".mpg", 30, ("interlaced", "tff", "tt")),
        ("progressive", ".mpg", 25, ("progressive", None, "progressive")),
        ("dv-bff", ".avi", 10, ("interlaced", "bff", None)),
    ],
)
def test_scan_type_detected(media: Path, kind: str, suffix: str, frames: int, expected: tuple) -> None:
    src = make_legacy(media / f"{kind}{suffix}", kind, size=(96, 72), frames=frames)
    info = probe(src)
    scan = detect_scan(src, info)
    want_kind, want_parity, want_flag = expected
    assert (scan.kind, scan.parity) == (want_kind, want_parity), scan
    if want_flag is not None:
        assert info.field_order == want_flag
    assert scan.idet is not None and scan.idet.frames >= frames - 1


def test_probe_cli_reports_scan_type(media: Path, cli_env: dict[str, str]) -> None:
    src = make_legacy(media / "tele-cli.mpg", "telecine", size=(96, 72), frames=50)
    proc = run_cli(["probe", str(src)], cli_env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["field_order"] == "tt"
    assert data["scan"]["kind"] == "telecine" and data["scan"]["idet"]["repeated_top"] > 0
    assert data["conditioning"].startswith("inverse telecine")


@pytest.mark.parametrize(
    ("kind", "suffix", "frames", "mode", "chunk_frames", "expected"),
    [
        # 50 frames of 25i -> 50 frames, the source's pts.
        ("interlaced-tff", ".mpg", 50, "bwdif:tff", 25, (50, Fraction(25))),
        # 25i -> 50p: 100 frames at twice the rate, in half the time base.
        ("interlaced-bff", ".ts", 50, "bwdif-field:bff", 50, (100, Fraction(50))),
        # 60 frames of 29.97i telecine -> 48 frames of 23.976p (one of every 5 dropped).
        ("telecine", ".mpg", 60, "ivtc:tff", 24, (48, Fraction(24000, 1001))),
    ],
)
def test_chunks_condition_exactly_like_the_single_pass(
    media: Path, kind: str, suffix: str, frames: int, mode: str, chunk_frames: int, expected: tuple
) -> None:
    """The chunked job's decode (per chunk, with filter context) equals the single pass's frames."""
    src = make_legacy(media / f"eq-{kind}{suffix}", kind, size=(64, 48), frames=frames)
    info = probe(src)
    cond = Conditioning.from_text(mode)
    table = scan_frames(src)
    with FrameReader(src, info, cond) as reader:
        single = list(reader)
    out = cond.output_info(info)
    assert (len(single), out.frame_rate) == expected and out.frame_count == len(single)
    assert [f.pts for f in single] == cond.output_pts(info, table.pts)
    chunks = plan_chunks(
        out,
        cond.output_keyframes(table.keyframes),
        target_frames=chunk_frames,
        frame_pts=cond.output_pts(info, table.pts),
        multiple=cond.cut_multiple,
    )
    assert len(chunks) == 2
    chunked = [f for c in chunks for f in decode_conditioned_chunk(src, info, cond, c, table.pts)]
    assert [(f.index, f.pts) for f in chunked] == [(f.index, f.pts) for f in single]
    for a, b in zip(chunked, single, strict=True):
        assert np.array_equal(a.image, b.image), f"frame {a.index} differs at a chunk boundary"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "frames", "args", "expected_frames", "rate"),
    [
        ("telecine", 60, ["--scan", "telecine"], 48, Fraction(24000, 1001)),
        ("interlaced-bff", 13, ["--scan", "bff", "--deinterlace", "field"], 26, Fraction(50)),
    ],
)
def test_upscale_and_chunked_job_give_the_same_progressive_output(
    model_env: dict[str, str],
    tmp_path: Path,
    kind: str,
    frames: int,
    args: list[str],
    expected_frames: int,
    rate: Fraction,
) -> None:
    src = make_legacy(tmp_path / f"{kind}.mpg", kind, size=(64, 48), frames=frames, audio=True)
    common = ["--model", MODEL, "--scale", "2", "--codec", "ffv1", *args]
    single, chunked = tmp_path / "single.mkv", tmp_path / "chunked.mkv"
    proc = run_cli(["upscale", str(src), "-o", str(single), "--no-progress", *common], model_env)
    assert proc.returncode == 0, proc.stderr
    (tmp_path / "jobs").mkdir()
    proc = run_cli(
        ["submit", str(src), "-o", str(chunked), "--jobs-root", str(tmp_path / "jobs"),
         "--chunk-frames", "24", *common],
        model_env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    a, b = ffprobe_video(single), ffprobe_video(chunked)
    assert a["field_order"] == b["field_order"] == "progressive"
    assert a["rate"] == b["rate"] == rate
    assert len(a["pts"]) == expected_frames and a["pts"] == b["pts"]
    # Frame-exact at the new rate: equally spaced by 1 / rate (to the container's ms precision).
    steps = np.diff(np.array(a["pts"]))
    assert np.allclose(steps, float(1 / rate), atol=1.5e-3)
    pixels = [
        subprocess.run(
            ["ffmpeg", "-v", "error", "-i", str(p), "-map", "0:v", "-f", "framemd5", "-"],
            capture_output=True, text=True, check=True,
        ).stdout.splitlines()[-expected_frames:]
        for p in (single, chunked)
    ]  # fmt: skip
    assert [line.split(",")[-1] for line in pixels[0]] == [line.split(",")[-1] for line in pixels[1]]


# ---- broadcast clocks ---------------------------------------------------------------------------


def _streams(path: Path) -> dict[str, float]:
    """start_time of the first video and audio streams and the format duration (seconds)."""
    data = json.loads(
        subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,start_time:format=duration",
             "-of", "json", str(path)],
            capture_output=True, text=True, check=True,
        ).stdout
    )  # fmt: skip
    out = {"duration": float(data["format"]["duration"])}
    for st in data["streams"]:
        out.setdefault(st["codec_type"], float(st["start_time"]))
    return out


@pytest.mark.slow
@pytest.mark.parametrize(
    ("suffix", "start", "out_suffix"),
    [(".ts", None, ".mkv"), (".ts", 36000.0, ".mp4"), (".mpg", 0.5, ".mkv"), (".ts", 95442.1, ".mkv")],
    ids=["ts-1.4s-mkv", "ts-10h-mp4", "ps-0.5s-mkv", "ts-33bit-wrap-mkv"],
)
def test_broadcast_start_clock_is_not_leading_empty_time(
    model_env: dict[str, str], tmp_path: Path, suffix: str, start: float | None, out_suffix: str
) -> None:
    """A TS/PS clock that starts at 1.4 s / 10 h / 0.5 s, or wraps its 33 bits mid-clip (the
    demuxer then starts it below 0): the output starts at 0 with the same A/V offset.

    Before, the output kept the clock as leading time: 0.61 s in, 2.04 s out (36002 s for 10 h);
    the wrapped TS came out with its video 1.028 s late against the audio (3.03 s long).
    """
    src = make_legacy(tmp_path / f"in{suffix}", "progressive", size=(64, 48), frames=15, audio=True,
                      start_seconds=start)  # fmt: skip
    out = tmp_path / f"out{out_suffix}"
    proc = run_cli(["upscale", str(src), "-o", str(out), "--model", MODEL, "--scale", "2",
                    "--preset-x264", "ultrafast", "--no-progress"], model_env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    s, o = _streams(src), _streams(out)
    assert abs(s["video"]) > 0.2  # the source really starts off zero
    assert min(o["video"], o["audio"]) == pytest.approx(0, abs=1e-3)
    assert o["video"] - o["audio"] == pytest.approx(s["video"] - s["audio"], abs=1.5e-3)  # A/V offset
    # The content's length: the video's lead over the audio plus 15 frames at 25 fps.
    assert o["duration"] == pytest.approx(s["video"] - min(s["video"], s["audio"]) + 0.6, abs=0.002)
    # Source frame times from its packets (ffprobe shows N/A for some MPEG-PS frames).
    table = scan_frames(src)
    src_pts = [float(p * table.time_base) for p in table.pts]
    out_pts = ffprobe_video(out)["pts"]
    assert len(out_pts) == len(src_pts) == 15
    rel = np.array(src_pts) - src_pts[0]
    assert np.allclose(np.array(out_pts) - out_pts[0], rel, atol=1.5e-3)


@pytest.mark.parametrize(
    ("suffix", "start"),
    [(".ts", 36000.0), (".mpg", None), (".ts", 95441.3)],
    ids=["ts-10h", "ps-0.5s", "ts-33bit-wrap"],
)
def test_chunks_of_clocked_sources_decode_frame_exactly(
    media: Path, suffix: str, start: float | None
) -> None:
    """MPEG-PS/TS seeks land after the chunk start; the chunk decoder steps back, never fails."""
    from vsrflow.workflow.job.chunk_io import decode_chunk

    src = make_legacy(media / f"clock{suffix}", "progressive", size=(64, 48), frames=75,
                      start_seconds=start)  # fmt: skip
    info = probe(src)
    table = scan_frames(src)
    with FrameReader(src, info) as reader:
        single = [(f.index, f.pts) for f in reader]
    chunks = plan_chunks(info, table.keyframes, target_frames=25, frame_pts=table.pts)
    assert len(chunks) >= 2
    chunked = [(f.index, f.pts) for c in chunks for f in decode_chunk(src, info, c)]
    assert chunked == single


def test_discontinuous_ts_is_retimed_with_each_segment_in_sync(media: Path, tmp_path: Path) -> None:
    """Two captures joined with ``cat``: the probe names the jump, reading it as it is is refused
    with the fix, and the re-timed copy is continuous, keeps every packet and moves each segment's
    audio exactly with its video (both paths then read that copy: test_source_timing)."""
    import av

    from vsrflow.errors import InputError
    from vsrflow.media.retime import retime

    a, b = (
        make_legacy(media / f"c-{n}.ts", "progressive", size=(64, 48), frames=10, audio=True, start_seconds=t)
        for n, t in (("a", 100), ("b", 5))
    )
    joined = tmp_path / "joined.ts"
    joined.write_bytes(a.read_bytes() + b.read_bytes())
    info = probe(joined)
    assert len(info.clock_jumps) == 1 and info.clock_jumps[0].packet == 10 and info.frame_count == 20
    with pytest.raises(InputError, match="timestamp discontinuity at video packet 10") as err:
        FrameReader(joined, info)
    assert "-c copy retimed.mkv" in (err.value.hint or "")

    def times(path: Path) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        with av.open(str(path)) as c:
            for pkt in c.demux():
                if pkt.pts is not None:
                    out.setdefault(pkt.stream.index, []).append(int(pkt.pts))
        return out

    copy = retime(info, tmp_path / "retimed.ts")
    assert copy.clock_jumps == () and copy.frame_count == 20
    src, out = times(joined), times(copy.path)
    video, audio = src[0], src[1]
    assert len(out[0]) == len(video) and len(out[1]) == len(audio)
    assert all(y - x == 3600 for x, y in itertools.pairwise(out[0]))  # 25 fps at 90 kHz, no gap
    # Each segment moved as a whole: the video-to-audio offset of both segments is the source's.
    for seg_v, seg_a in ((slice(0, 10), slice(0, 1)), (slice(10, 20), slice(len(audio) // 2, None))):
        assert out[0][seg_v][0] - out[1][seg_a][0] == video[seg_v][0] - audio[seg_a][0]
