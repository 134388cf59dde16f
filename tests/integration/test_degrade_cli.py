"""`vsrflow degrade` / degrade_video end to end: real ffmpeg, lossless FFV1, every frame and pts kept."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from tests.conftest import run_cli
from tests.mediagen import make_video
from vsrflow.errors import InputError
from vsrflow.media.degrade import degrade_frame, degrade_video, frame_rng
from vsrflow.media.probe import probe
from vsrflow.media.reader import FrameReader


def _frames(path: Path) -> list[np.ndarray]:
    with FrameReader(path) as reader:
        return [f.image for f in reader]


def _pts(path: Path) -> list[int]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        return sorted(int(p.pts) for p in c.demux(stream) if p.pts is not None)


def _audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


@pytest.fixture(scope="module")
def hr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("hr") / "hr.mkv", size=(64, 48), frames=5, audio_tracks=1)


def test_cli_keeps_frames_pts_audio_and_is_lossless(
    cli_env: dict[str, str], hr: Path, tmp_path: Path
) -> None:
    lr = tmp_path / "lr.mkv"
    proc = run_cli(
        ["degrade", str(hr), "-o", str(lr), "--scale", "4", "--blur", "0.8", "--noise", "3", "--jpeg", "60",
         "--seed", "5"],
        cli_env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    src, out = probe(hr), probe(lr)
    assert (out.width, out.height) == (16, 12)
    assert out.frame_count == src.frame_count == 5
    assert _pts(lr) == _pts(hr)  # both Matroska (1/1000): identical timestamps
    assert abs(out.duration - src.duration) < 1e-6
    assert _audio_packets(lr) == _audio_packets(hr)  # stream copy
    # Decoding the file gives back exactly the frames degraded in memory.
    expected = [
        degrade_frame(img, scale=4, blur=0.8, noise=3, jpeg=60, rng=frame_rng(5, i))
        for i, img in enumerate(_frames(hr))
    ]
    got = _frames(lr)
    assert len(got) == len(expected)
    assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))


def test_seed_determinism_and_options_change_output(hr: Path, tmp_path: Path) -> None:
    def run(name: str, **kw: object) -> list[np.ndarray]:
        degrade_video(hr, tmp_path / f"{name}.mkv", scale=2, **kw)  # type: ignore[arg-type]
        return _frames(tmp_path / f"{name}.mkv")

    plain = run("plain")
    noisy = run("noisy", noise=4.0, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(noisy, run("noisy2", noise=4.0, seed=1), strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(noisy, run("noisy3", noise=4.0, seed=2), strict=True))
    for name, kw in {"noise": {"noise": 4.0}, "blur": {"blur": 1.0}, "jpeg": {"jpeg": 40}}.items():
        frames = noisy if name == "noise" else run(name, **kw)
        assert not np.array_equal(frames[0], plain[0]), name


def test_non_divisible_size_refused_with_size_named(cli_env: dict[str, str], tmp_path: Path) -> None:
    src = make_video(tmp_path / "odd.mp4", size=(66, 50), frames=3)
    proc = run_cli(["degrade", str(src), "-o", str(tmp_path / "lr.mkv"), "--scale", "4"], cli_env)
    assert proc.returncode == 2
    assert "66x50 is not divisible by --scale 4" in proc.stderr
    assert "--crop-reference" in proc.stderr
    assert not (tmp_path / "lr.mkv").exists()


def test_crop_reference_writes_the_matching_hr(tmp_path: Path) -> None:
    src = make_video(tmp_path / "odd.mp4", size=(66, 50), frames=3)
    ref, lr = tmp_path / "hr.mkv", tmp_path / "lr.mkv"
    out = degrade_video(src, lr, scale=4, crop_reference=ref)
    assert (out.width, out.height) == (16, 12)
    assert (probe(ref).width, probe(ref).height) == (64, 48)
    src_frames, ref_frames = _frames(src), _frames(ref)
    # The reference is the top-left crop of the source, bit-exact, and the LR is made from it.
    assert all(np.array_equal(r, s[:48, :64]) for r, s in zip(ref_frames, src_frames, strict=True))
    assert all(
        np.array_equal(lo, degrade_frame(r, scale=4)) for lo, r in zip(_frames(lr), ref_frames, strict=True)
    )


def test_ten_bit_source_stays_16_bit_lossless(tmp_path: Path) -> None:
    src = make_video(tmp_path / "deep.mkv", size=(32, 24), frames=3, pix_fmt="yuv420p10le")
    lr = tmp_path / "lr.mkv"
    assert degrade_video(src, lr, scale=2).pix_fmt == "gbrp16le"
    got, hr_frames = _frames(lr), _frames(src)
    assert got[0].dtype == np.uint16
    assert all(np.array_equal(a, degrade_frame(b, scale=2)) for a, b in zip(got, hr_frames, strict=True))


def test_bad_options_are_input_errors(hr: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="Matroska"):
        degrade_video(hr, tmp_path / "lr.mp4", scale=2)
    with pytest.raises(InputError, match="quality"):
        degrade_video(hr, tmp_path / "lr.mkv", scale=2, jpeg=0)
    with pytest.raises(InputError, match="input file"):
        degrade_video(hr, hr, scale=2)
