"""What a source says about its pictures survives, in `vsrflow upscale` and the chunked job alike:
the sample aspect ratio (H.263 in 3GP), HDR10 static metadata; and a source cut short is named.

Inputs are generated with ffmpeg (tests/mediagen.py), outputs are read back with ffprobe.
"""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.mediagen import (
    HDR10_MASTER_DISPLAY,
    HDR10_MAX_CLL,
    make_h263_3gp,
    make_hdr10,
    make_truncated_mkv,
    make_video,
)
from vsrflow.errors import InputError
from vsrflow.media.probe import probe

MODEL = "realesr-animevideov3"
FAST = ["--model", MODEL, "--scale", "2", "--encoder-preset", "ultrafast"]


def ffprobe_json(path: Path, *args: str) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", *args, "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return json.loads(out)


def upscale_and_submit(src: Path, tmp_path: Path, env: dict[str, str], *args: str) -> dict[str, Path]:
    """Run `vsrflow upscale` and `vsrflow submit --executor local` on ``src``; both must succeed."""
    single, chunked = tmp_path / "single.mkv", tmp_path / "chunked.mkv"
    proc = run_cli(["upscale", str(src), "-o", str(single), "--no-progress", *FAST, *args], env)
    assert proc.returncode == 0, proc.stderr
    jobs = tmp_path / "jobs"
    jobs.mkdir(exist_ok=True)
    proc = run_cli(
        ["submit", str(src), "-o", str(chunked), "--executor", "local", "--jobs-root", str(jobs),
         "--chunk-frames", "25", *FAST, *args],
        env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return {"upscale": single, "submit": chunked}


# ---- sample aspect ratio ------------------------------------------------------------------------


def test_h263_sar_is_the_tracks_not_the_decoders(tmp_path: Path) -> None:
    """The 3GP track says 1:1 (what ffprobe reports); FFmpeg's H.263 decoder says 12:11."""
    src = make_h263_3gp(tmp_path / "phone.3gp")
    st = ffprobe_json(src, "-show_entries", "stream=sample_aspect_ratio")["streams"][0]
    assert st["sample_aspect_ratio"] == "1:1"
    assert probe(src).sar == 1


@pytest.mark.slow
def test_h263_sar_survives_both_paths(model_env: dict[str, str], tmp_path: Path) -> None:
    src = make_h263_3gp(tmp_path / "phone.3gp")
    for path, out in upscale_and_submit(src, tmp_path, model_env).items():
        entries = "stream=width,height,sample_aspect_ratio,display_aspect_ratio"
        video = ffprobe_json(out, "-show_entries", entries)["streams"][0]
        assert (video["width"], video["height"]) == (256, 192), path
        assert video.get("sample_aspect_ratio", "1:1") == "1:1", path  # was 12:11
        assert video.get("display_aspect_ratio", "4:3") == "4:3", path


# ---- HDR10 static metadata ----------------------------------------------------------------------


def _hdr_side_data(path: Path) -> dict[str, dict]:
    """The first frame's mastering-display and content-light side data, by type (ffprobe)."""
    data = ffprobe_json(
        path, "-select_streams", "v:0", "-read_intervals", "%+#1", "-show_frames",
        "-show_entries", "frame=side_data_list:stream=pix_fmt,color_transfer,color_primaries",
    )  # fmt: skip
    sides = data["frames"][0].get("side_data_list", [])
    return {
        s["side_data_type"]: s
        for s in sides
        if s["side_data_type"] in ("Mastering display metadata", "Content light level metadata")
    }


def test_probe_reads_hdr10_static_metadata(tmp_path: Path) -> None:
    info = probe(make_hdr10(tmp_path / "hdr.mkv"))
    assert info.hdr is not None and info.color_transfer == "smpte2084" and info.bit_depth == 10
    assert (info.hdr.master_display, info.hdr.max_cll) == (HDR10_MASTER_DISPLAY, HDR10_MAX_CLL)
    assert probe(make_video(tmp_path / "sdr.mkv", frames=2)).hdr is None


@pytest.mark.slow
def test_hdr10_metadata_survives_both_paths(model_env: dict[str, str], tmp_path: Path) -> None:
    src = make_hdr10(tmp_path / "hdr.mkv")
    want = _hdr_side_data(src)
    assert len(want) == 2
    outputs = upscale_and_submit(src, tmp_path, model_env, "--codec", "libx265")
    for path, out in outputs.items():
        got = _hdr_side_data(out)
        assert got == want, path
        st = ffprobe_json(out, "-show_entries", "stream=pix_fmt,color_transfer,color_primaries")["streams"][0]
        assert (st["pix_fmt"], st["color_transfer"], st["color_primaries"]) == (
            "yuv420p10le", "smpte2084", "bt2020",
        ), path  # fmt: skip


def test_hdr_warnings_name_the_signal_and_the_codec(tmp_path: Path) -> None:
    from vsrflow.media.writer import hdr_warnings

    info = probe(make_hdr10(tmp_path / "hdr.mkv"))
    x265 = hdr_warnings(info, "libx265")
    assert len(x265) == 1 and "SDR" in x265[0] and "smpte2084" in x265[0]
    x264 = hdr_warnings(info, "libx264")
    assert len(x264) == 2 and "--codec libx265" in x264[1]
    assert hdr_warnings(probe(make_video(tmp_path / "sdr.mkv", frames=2)), "libx264") == []


# ---- damaged input ------------------------------------------------------------------------------


def test_truncated_mkv_is_refused_by_both_paths(cli_env: dict[str, str], tmp_path: Path) -> None:
    """The first quarter of a 3 s MKV: exit 2 naming the input, the loss and the fix; no output."""
    src = make_truncated_mkv(tmp_path / "cut.mkv")
    out = tmp_path / "out.mkv"
    proc = run_cli(["upscale", str(src), "-o", str(out), "--model", MODEL], cli_env)
    assert proc.returncode == 2, proc.stderr
    assert "cut.mkv: damaged source" in proc.stderr and "declares 3.0" in proc.stderr
    assert "--accept-damaged" in proc.stderr
    (tmp_path / "jobs").mkdir()
    proc = run_cli(
        ["submit", str(src), "-o", str(out), "--executor", "local", "--jobs-root", str(tmp_path / "jobs"),
         "--model", MODEL],
        cli_env,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "cut.mkv: damaged source" in proc.stderr and "--accept-damaged" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.mkv", "jobs"]  # nothing written


@pytest.mark.slow
def test_accept_damaged_upscales_what_is_there_and_reports_the_loss(
    model_env: dict[str, str], tmp_path: Path
) -> None:
    src = make_truncated_mkv(tmp_path / "cut.mkv")
    info = probe(src, accept_damaged=True)
    assert info.damage is not None and info.damage.declared_seconds == pytest.approx(3.0, abs=0.05)
    outputs = upscale_and_submit(src, tmp_path, model_env, "--accept-damaged")
    for path, out in outputs.items():
        frames = ffprobe_json(out, "-select_streams", "v:0", "-show_entries", "frame=pts_time")["frames"]
        assert len(frames) == info.frame_count, path
        duration = float(ffprobe_json(out, "-show_entries", "format=duration")["format"]["duration"])
        assert duration == pytest.approx(info.duration, abs=0.05), path  # what the file held, not 3 s
        sidecar = json.loads(out.with_name(out.name + ".vsrflow.json").read_text())
        damage = sidecar["damage"]
        assert damage["lost_seconds"] == pytest.approx(3.0 - info.duration, abs=0.05), path
        assert damage["lost_frames"] == info.damage.lost_frames and damage["basis"] == "DURATION tag"


def test_whole_and_legitimately_short_streams_are_not_damage(tmp_path: Path) -> None:
    """Audio longer than the video, a plain MKV, an MP4: no damage (the check is per track)."""
    longer_audio = tmp_path / "longer-audio.mkv"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-f", "lavfi",
         "-i", "sine=duration=3", "-frames:v", "25", "-c:v", "libx264", "-preset", "ultrafast",
         "-c:a", "aac", str(longer_audio)],
        check=True,
    )  # fmt: skip
    assert probe(longer_audio).damage is None
    assert probe(make_video(tmp_path / "whole.mkv", frames=10, audio_tracks=1)).damage is None
    assert probe(make_video(tmp_path / "vfr.mkv", frames=10, vfr=True)).damage is None
    assert probe(make_video(tmp_path / "whole.mp4", frames=10, audio_tracks=1)).damage is None
    with pytest.raises(InputError) as err:
        probe(make_truncated_mkv(tmp_path / "cut.mkv"))
    assert "DURATION tag declares" in str(err.value)
    assert err.value.hint and "--accept-damaged" in err.value.hint


# ---- frame durations ----------------------------------------------------------------------------


@pytest.mark.slow
def test_gif_frame_durations_survive_the_last_one_too(model_env: dict[str, str], tmp_path: Path) -> None:
    """An animated GIF whose last frame is shown 0.15 s (the others 0.1 s): every frame keeps its
    time and the last its duration, in both paths and in each container (the NUT intermediate
    stores no durations; the final mux sets the last one, vsrflow.media.lastframe)."""
    src = tmp_path / "anim.gif"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10",
         "-frames:v", "6", "-final_delay", "15", str(src)],
        check=True,
    )  # fmt: skip
    packets = ffprobe_json(src, "-show_entries", "packet=pts_time,duration_time")["packets"]
    want = [float(p["pts_time"]) for p in packets]
    assert float(packets[-1]["duration_time"]) == pytest.approx(0.15)
    info = probe(src)
    assert info.duration == pytest.approx(0.65)
    assert info.last_frame_duration * info.time_base == Fraction(15, 100)
    (tmp_path / "jobs").mkdir()
    outputs = []
    for suffix in (".mkv", ".mp4", ".mov"):
        single, chunked = tmp_path / f"single{suffix}", tmp_path / f"chunked{suffix}"
        proc = run_cli(["upscale", str(src), "-o", str(single), "--no-progress", *FAST], model_env)
        assert proc.returncode == 0, proc.stderr
        assert "did not keep that duration" not in proc.stderr
        outputs.append(single)
        if suffix != ".mov":  # the chunked job: Matroska's rule and MP4's (MOV shares it)
            jobs = ["--jobs-root", str(tmp_path / "jobs")]
            proc = run_cli(["submit", str(src), "-o", str(chunked), *jobs, *FAST], model_env)
            assert proc.returncode == 0, proc.stderr
            assert "did not keep that duration" not in proc.stderr
            outputs.append(chunked)
    for out in outputs:
        frames = ffprobe_json(out, "-select_streams", "v:0", "-show_entries", "frame=pts_time")["frames"]
        assert [float(f["pts_time"]) for f in frames] == pytest.approx(want, abs=1e-3), out
        duration = float(ffprobe_json(out, "-show_entries", "format=duration")["format"]["duration"])
        assert duration == pytest.approx(0.65, abs=1e-3), out


@pytest.mark.slow
def test_a_gif_last_frame_held_long_is_kept(model_env: dict[str, str], tmp_path: Path) -> None:
    """A GIF that holds its last frame 1.5 s (fifteen nominal frames) is upscaled with that hold,
    not refused for a short output nor cut to one nominal frame."""
    src = tmp_path / "hold.gif"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10",
         "-frames:v", "4", "-final_delay", "150", str(src)],
        check=True,
    )  # fmt: skip
    assert probe(src).duration == pytest.approx(1.8)
    for suffix in (".mp4", ".mkv"):
        out = tmp_path / f"hold{suffix}"
        proc = run_cli(["upscale", str(src), "-o", str(out), "--no-progress", *FAST], model_env)
        assert proc.returncode == 0, proc.stderr
        duration = float(ffprobe_json(out, "-show_entries", "format=duration")["format"]["duration"])
        assert duration == pytest.approx(1.8, abs=1e-3), out
        # ... and read back as held, not as damage: the output can be a source again.
        assert probe(out).duration == pytest.approx(1.8, abs=1e-3), out
