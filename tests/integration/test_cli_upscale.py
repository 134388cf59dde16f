"""`vsrflow upscale` end to end through the real CLI: real ffmpeg, real converted weights.

Every run uses a real model (realesr-animevideov3 or SPAN, ncnn exports imported once per test
cache) on tiny synthetic clips made with the ffmpeg CLI, and checks what a user would: frame
count, timestamps, every stream, colours, exit codes, one-line errors, no partial files.
"""

from __future__ import annotations

import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests.conftest import run_cli
from tests.mediagen import (
    make_audio_only,
    make_text_file,
    make_truncated_mp4,
    make_video,
    make_zero_byte,
)
from vsrflow.media.probe import probe

FAST = "realesr-animevideov3"
FIDELITY = "SPAN_x2_ch48"


@pytest.fixture(scope="module")
def env(model_env: dict[str, str]) -> dict[str, str]:
    return model_env


def _upscale(env: dict[str, str], src: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli(["upscale", str(src), "-o", str(out), "--no-progress", *extra], env)


def _video_pts_seconds(path: Path) -> list[Fraction]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        tb = s.time_base
        assert tb is not None
        pts = sorted(p.pts for p in c.demux(s) if p.pts is not None)
    return [Fraction(p) * tb for p in pts]


def _packets(path: Path, kind: str) -> list[list[bytes]]:
    """Payload of every packet of every ``kind`` stream, in file order (one demux pass, no seek:
    a seek to 0 would skip packets with negative timestamps such as AAC priming)."""
    with av.open(str(path)) as c:
        streams = [s for s in c.streams if s.type == kind]
        out: dict[int, list[bytes]] = {s.index: [] for s in streams}
        for packet in c.demux(streams):
            if packet.size:
                out[packet.stream.index].append(bytes(packet))
    return list(out.values())


def _assert_frame_exact(src: Path, out: Path) -> None:
    a, b = probe(src), probe(out)
    assert b.frame_count == a.frame_count
    assert abs(b.duration - a.duration) <= float(a.frame_duration) + 1e-6
    pa, pb = _video_pts_seconds(src), _video_pts_seconds(out)
    pa0, pb0 = [p - pa[0] for p in pa], [p - pb[0] for p in pb]
    # output time base may differ (e.g. 1/1000 in MKV): equal to its resolution
    res = max(Fraction(1, 1000), Fraction(1, 90000))
    assert all(abs(x - y) <= res for x, y in zip(pa0, pb0, strict=True))


def test_mkv_two_audio_srt_ass_chapters(env: dict[str, str], tmp_path: Path) -> None:
    src = make_video(
        tmp_path / "in.mkv",
        size=(64, 48),
        frames=12,
        audio_tracks=2,
        subtitles=["srt", "ass"],
        chapters=2,
        attachment=True,
    )
    out = tmp_path / "out.mkv"
    proc = _upscale(env, src, out, "--model", FAST)
    assert proc.returncode == 0, proc.stderr
    assert "12 frames" in proc.stdout
    info = probe(out)
    assert (info.width, info.height) == (256, 192)
    kinds = sorted(s.kind for s in info.streams)
    assert kinds == sorted(s.kind for s in probe(src).streams)
    assert info.chapters == 2
    assert _packets(out, "audio") == _packets(src, "audio")  # stream copy: bit-identical
    _assert_frame_exact(src, out)


def test_mp4_mov_text_and_scale_2_from_x4_model(env: dict[str, str], tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", size=(64, 48), frames=10, audio_tracks=1, subtitles=["mov_text"])
    out = tmp_path / "out.mp4"
    proc = _upscale(env, src, out, "--model", FAST, "--scale", "2")
    assert proc.returncode == 0, proc.stderr
    info = probe(out)
    assert (info.width, info.height) == (128, 96)
    assert [s.codec for s in info.streams if s.kind == "subtitle"] == ["mov_text"]
    _assert_frame_exact(src, out)


def test_vfr_stays_vfr(env: dict[str, str], tmp_path: Path) -> None:
    src = make_video(tmp_path / "vfr.mkv", size=(64, 48), frames=12, vfr=True)
    assert probe(src).is_vfr
    out = tmp_path / "out.mkv"
    proc = _upscale(env, src, out, "--model", FAST, "--scale", "2")
    assert proc.returncode == 0, proc.stderr
    assert probe(out).is_vfr
    _assert_frame_exact(src, out)


def test_10bit_rotation_sar(env: dict[str, str], tmp_path: Path) -> None:
    src = make_video(
        tmp_path / "in.mp4",
        size=(64, 48),
        frames=8,
        pix_fmt="yuv420p10le",
        rotation=90,
        sar="4/3",
        codec="libx264",
    )
    out = tmp_path / "out.mp4"
    proc = _upscale(env, src, out, "--model", FAST, "--scale", "2")
    assert proc.returncode == 0, proc.stderr
    info = probe(out)
    assert info.pix_fmt == "yuv420p10le" and info.bit_depth == 10
    assert info.rotation == probe(src).rotation == 90
    assert info.sar == Fraction(4, 3)
    _assert_frame_exact(src, out)


@pytest.mark.parametrize(
    ("colour", "pix_fmt"), [("bt709", "yuv420p"), ("bt601", "yuv420p"), ("bt709", "yuv420p10le")]
)
def test_flat_colour_does_not_shift(env: dict[str, str], tmp_path: Path, colour: str, pix_fmt: str) -> None:
    rgb = (180, 90, 40)
    src = make_video(
        tmp_path / "flat.mp4", size=(64, 48), frames=3, flat_rgb=rgb, colour=colour, pix_fmt=pix_fmt
    )
    out = tmp_path / "out.mp4"
    proc = _upscale(env, src, out, "--model", FIDELITY)
    assert proc.returncode == 0, proc.stderr
    info_in, info_out = probe(src), probe(out)
    assert info_out.color_matrix == info_in.color_matrix
    assert info_out.color_primaries == info_in.color_primaries

    def mean_rgb(path: Path) -> np.ndarray:
        # decode with the matrix the source is tagged with (the source was made by ffmpeg CLI)
        with av.open(str(path)) as c:
            frame = next(c.decode(video=0))
            arr = frame.to_ndarray(format="rgb24", src_colorspace=_matrix(colour))
        h, w = arr.shape[:2]
        return arr[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4].reshape(-1, 3).mean(axis=0)

    assert np.abs(mean_rgb(out) - mean_rgb(src)).max() <= 1.0
    assert np.abs(mean_rgb(src) - np.array(rgb)).max() <= 2.0  # the source really is that colour


def _matrix(colour: str) -> str:
    return {"bt709": "ITU709", "bt601": "ITU601"}[colour]


def test_odd_dimensions(env: dict[str, str], tmp_path: Path) -> None:
    src = make_video(tmp_path / "odd.mkv", size=(321, 241), frames=2)
    out = tmp_path / "out.mkv"
    # h264_nvenc where no NVIDIA device is: libx264 with a warning, the job still runs
    proc = _upscale(env, src, out, "--model", FAST, "--scale", "2", "--codec", "h264_nvenc")
    assert proc.returncode == 0, proc.stderr
    assert "(batch 1)" in proc.stdout  # --batch auto on a CPU
    if not Path("/dev/nvidia0").exists():
        assert "h264_nvenc is not usable here" in proc.stderr and "libx264 instead" in proc.stderr
    info = probe(out)
    assert (info.width, info.height) == (642, 482)
    assert info.frame_count == 2


def test_one_frame_and_tiny_frames(env: dict[str, str], tmp_path: Path) -> None:
    one = make_video(tmp_path / "one.mp4", size=(64, 48), frames=1)
    proc = _upscale(env, one, tmp_path / "one_out.mp4", "--model", FAST, "--scale", "2")
    assert proc.returncode == 0, proc.stderr
    assert probe(tmp_path / "one_out.mp4").frame_count == 1
    tiny = make_video(tmp_path / "tiny.mkv", size=(8, 6), frames=3, codec="ffv1")
    proc = _upscale(env, tiny, tmp_path / "tiny_out.mkv", "--model", FAST, "--tile", "4")
    assert proc.returncode == 0, proc.stderr
    assert probe(tmp_path / "tiny_out.mkv").frame_count == 3


def _assert_clean_failure(proc: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    err_lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("vsrflow:")]
    assert len(err_lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in err_lines[0], err_lines[0]


@pytest.mark.parametrize(
    "maker",
    [
        lambda p: p,  # missing
        make_zero_byte,
        make_truncated_mp4,
        make_text_file,
        make_audio_only,
    ],
    ids=["missing", "zero-byte", "truncated", "text", "audio-only"],
)
def test_bad_inputs_exit_2_and_leave_nothing(env: dict[str, str], tmp_path: Path, maker: object) -> None:
    src = tmp_path / "bad.mp4"
    assert callable(maker)
    maker(src)
    outdir = tmp_path / "outdir"
    outdir.mkdir()
    proc = _upscale(env, src, outdir / "out.mp4", "--model", FAST)
    _assert_clean_failure(proc, 2, "bad.mp4")
    assert list(outdir.iterdir()) == []


@pytest.mark.slow
def test_bad_options(env: dict[str, str], tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", size=(32, 24), frames=2)
    out = tmp_path / "o" / "out.mp4"
    (tmp_path / "o").mkdir()
    _assert_clean_failure(_upscale(env, src, out, "--model", "nope"), 2, "nope")
    _assert_clean_failure(_upscale(env, src, out, "--model", FAST, "--scale", "8"), 2, "scale")
    _assert_clean_failure(_upscale(env, src, out, "--model", FAST, "--scale", "0"), 2, "scale")
    _assert_clean_failure(_upscale(env, src, out, "--model", FAST, "--batch", "0"), 2, "--batch")
    _assert_clean_failure(_upscale(env, src, Path("/proc/vsrflow_out.mp4"), "--model", FAST), 2, "/proc")
    assert list((tmp_path / "o").iterdir()) == []


def test_corrupt_weight_file(env: dict[str, str], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(Path(env["VSRFLOW_CACHE_DIR"]) / "weights", cache / "weights")
    weight = next(
        p
        for p in (cache / "weights").rglob("*")
        if p.is_file() and FAST in p.name and p.suffix in {".pth", ".safetensors"}
    )
    data = bytearray(weight.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weight.write_bytes(bytes(data))
    bad_env = dict(env, VSRFLOW_CACHE_DIR=str(cache))
    src = make_video(tmp_path / "in.mp4", size=(32, 24), frames=2)
    proc = _upscale(bad_env, src, tmp_path / "out.mp4", "--model", FAST)
    _assert_clean_failure(proc, 1, FAST)
    assert "import-ncnn" in proc.stderr or "fetch" in proc.stderr
    assert not (tmp_path / "out.mp4").exists()
    verify = run_cli(["models", "verify", FAST], bad_env)
    assert verify.returncode != 0
