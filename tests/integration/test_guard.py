"""The per-frame sanity guard with real weights, real ffmpeg and the real CLI.

SPAN (the fidelity preset) blows up on saturated graphics (lossless RGB test patterns with exact
0/255 primaries); the guard must catch that, redo the frames with the preset's fallback, report
it, and never trip on footage, anime-style frames or graphics a model handles normally.
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.conftest import run_cli
from tests.mediagen import decode_rgb, make_video
from vsrflow.bench.clips import sample_path
from vsrflow.bench.content import anime_frame, pattern_frames
from vsrflow.config import Settings
from vsrflow.engine.cache import UpscalerCache
from vsrflow.engine.quality import QualityOptions

SPAN = "SPAN_x2_ch48"
FALLBACK = "realesr-animevideov3"
#: The fallback (a GAN) redraws edges: it is this close to bicubic on the patterns, raw SPAN 8-16 dB.
NEAR_BICUBIC_DB = 22.0


@pytest.fixture(scope="module")
def settings(model_env: dict[str, str]) -> Settings:
    return dataclasses.replace(Settings.from_env(model_env), device="cpu")


def _bicubic_psnr(lr: np.ndarray, out: np.ndarray) -> float:
    """PSNR (dB, RGB) of ``out`` against a bicubic upscale of ``lr`` to its size (uint8 both)."""
    x = torch.from_numpy(lr).permute(0, 3, 1, 2).float() / 255
    ref = F.interpolate(x, size=out.shape[1:3], mode="bicubic", align_corners=False).clamp(0, 1)
    ref_u8 = (ref * 255).round().permute(0, 2, 3, 1).numpy()
    mse = float(((out.astype(np.float64) - ref_u8) ** 2).mean())
    return 10 * np.log10(255**2 / mse)


@pytest.mark.parametrize("pattern", ["testsrc2", "smptebars"])
def test_span_blow_up_is_caught_and_redone_near_bicubic(settings: Settings, pattern: str) -> None:
    lr = pattern_frames(pattern, (64, 48), frames=2)
    cache = UpscalerCache(settings)
    raw = cache.get(SPAN, 2.0, QualityOptions(guard=False)).upscale_frames(lr)
    assert _bicubic_psnr(lr, raw) < 17.0  # the blow-up is real: speckle over every saturated edge

    guarded = cache.get(SPAN, 2.0, QualityOptions(fallback=FALLBACK))
    guarded.reset()
    out = guarded.upscale_frames(lr)
    report = guarded.check_artifacts()
    assert (report.checked, report.tripped, report.redone) == (2, 2, 2), report
    assert report.frames == [0, 1] and report.fallback == FALLBACK
    assert _bicubic_psnr(lr, out) >= NEAR_BICUBIC_DB


def _footage(settings: Settings) -> dict[str, np.ndarray]:
    """A few frames of each sample clip (lossy h264 footage), downscaled as a low-res source."""
    out = {}
    for name, size in (("bikes", (160, 68)), ("carphone", (88, 72)), ("bigbuckbunny", (160, 90))):
        src = sample_path(settings, name)
        argv = [settings.ffmpeg, "-nostdin", "-v", "error", "-i", str(src), "-vf",
                f"select='not(mod(n,40))',scale={size[0]}:{size[1]}:flags=area", "-fps_mode", "passthrough",
                "-frames:v", "3", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]  # fmt: skip
        raw = subprocess.run(argv, capture_output=True, check=True).stdout
        out[name] = np.frombuffer(raw, np.uint8).reshape(-1, size[1], size[0], 3).copy()
    return out


@pytest.mark.slow
def test_normal_frames_never_trip(settings: Settings) -> None:
    """No false positive: footage through both test models, anime-style frames (with a burnt-in
    subtitle) through both, graphics through the model that handles them."""
    cache = UpscalerCache(settings)
    anime = np.stack([anime_frame((96, 72), seed) for seed in range(3)])
    cases = [
        (model, name, frames) for name, frames in _footage(settings).items() for model in (SPAN, FALLBACK)
    ]
    cases += [(SPAN, "anime", anime), (FALLBACK, "anime", anime)]
    cases += [(FALLBACK, p, pattern_frames(p, (64, 48))) for p in ("testsrc2", "smptebars", "mandelbrot")]
    tripped = []
    for model, name, frames in cases:
        up = cache.get(model, 2.0, QualityOptions(on_artifact="fail"))
        up.reset()
        up.upscale_frames(frames)
        report = up.report
        assert report.checked == len(frames)
        if report.tripped:
            tripped.append(f"{model} on {name}: {report.summary()}")
    assert tripped == []


@pytest.fixture(scope="module")
def pattern_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """testsrc2 as lossless RGB (FFV1 gbrp): exact 0/255 primaries, as a graphics master has."""
    path = tmp_path_factory.mktemp("guard") / "testsrc2.mkv"
    return make_video(path, size=(64, 48), frames=3, pix_fmt="gbrp", codec="ffv1", pattern="testsrc2")


def test_cli_fidelity_on_graphics_reports_the_guard_and_stays_near_bicubic(
    model_env: dict[str, str], pattern_clip: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.mkv"
    args = [
        "upscale",
        str(pattern_clip),
        "-o",
        str(out),
        "--no-progress",
        "--preset",
        "fidelity",
        "--scale",
        "2",
    ]
    proc = run_cli([*args, "--crf", "0", "--pix-fmt", "yuv444p"], model_env)
    assert proc.returncode == 0, proc.stderr
    assert "guard : 3 frames checked, 3 tripped (frames 0, 1, 2;" in proc.stdout
    assert f"3 redone with {FALLBACK}" in proc.stdout
    _, lr, _ = decode_rgb(pattern_clip)
    _, hr, _ = decode_rgb(out)
    assert len(hr) == 3
    assert _bicubic_psnr(np.stack(lr), np.stack(hr)) >= NEAR_BICUBIC_DB - 1.0  # x264 4:4:4 lossless: ~exact


def test_cli_on_artifact_fail_names_the_frames_and_writes_nothing(
    model_env: dict[str, str], pattern_clip: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.mp4"
    args = ["upscale", str(pattern_clip), "-o", str(out), "--no-progress", "--model", SPAN]
    proc = run_cli([*args, "--on-artifact", "fail"], model_env)
    assert proc.returncode == 1, proc.stdout
    assert "model output blew up on 3 of 3 frames (frames 0, 1, 2; output range" in proc.stderr
    assert "--on-artifact fallback" in proc.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_chunked_job_equals_upscale_and_records_the_guard(model_env: dict[str, str], tmp_path: Path) -> None:
    # 50 frames: two chunks of the planner's minimum 25; 32x24 keeps it quick (SPAN still blows up).
    src = make_video(tmp_path / "ts.mkv", size=(32, 24), frames=50, pix_fmt="gbrp", codec="ffv1")
    single, chunked = tmp_path / "single.mkv", tmp_path / "chunked.mkv"
    common = ["--preset", "fidelity", "--scale", "2", "--crf", "0", "--pix-fmt", "yuv444p"]
    proc = run_cli(["upscale", str(src), "-o", str(single), "--no-progress", *common], model_env)
    assert proc.returncode == 0, proc.stderr
    (guard_line,) = [line for line in proc.stdout.splitlines() if line.startswith("  guard : ")]
    assert "50 frames checked" in guard_line and f"redone with {FALLBACK}" in guard_line, guard_line
    jobs = tmp_path / "jobs"
    proc = run_cli(["submit", str(src), "-o", str(chunked), "--chunk-frames", "25", "--jobs-root", str(jobs),
                    *common], model_env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (job_dir,) = jobs.iterdir()
    status = run_cli(["status", str(job_dir)], model_env)
    assert "chunks: 2/2 done" in status.stdout, status.stdout
    # The job's guard counts (summed over its chunks) are the single run's, frame for frame.
    assert guard_line.removesuffix(" (--on-artifact fallback)") in status.stdout.splitlines(), status.stdout
    _, a, _ = decode_rgb(single)
    _, b, _ = decode_rgb(chunked)
    assert len(a) == len(b) == 50
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def _centre_mean_rgb(path: Path) -> np.ndarray:
    """Mean RGB of the centre half of the first frame, decoded with the BT.709 matrix it is tagged with."""
    import av

    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        arr = frame.to_ndarray(format="rgb24", src_colorspace="ITU709")
    h, w = arr.shape[:2]
    return arr[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4].reshape(-1, 3).astype(np.float64).mean(axis=0)


@pytest.mark.parametrize("fix", ["wavelet", "gaussian"])
def test_colour_fix_keeps_a_flat_bt709_patch_within_one_level(
    model_env: dict[str, str], tmp_path: Path, fix: str
) -> None:
    rgb = (48, 112, 176)
    src = make_video(tmp_path / "flat.mp4", size=(64, 48), frames=2, flat_rgb=rgb, colour="bt709")
    source = _centre_mean_rgb(src)
    shifts = {}
    for mode in ("off", fix):
        out = tmp_path / f"{mode}.mp4"
        proc = run_cli(["upscale", str(src), "-o", str(out), "--no-progress", "--model", FALLBACK,
                        "--colour-fix", mode], model_env)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert f"colour: colour fix {mode}" in proc.stdout
        shifts[mode] = float(np.abs(_centre_mean_rgb(out) - source).max())
    assert shifts["off"] > 1.5, shifts  # the GAN really brightens the patch
    assert shifts[fix] <= 1.0, shifts


def test_auto_preset_picks_anime_for_graphics_and_fidelity_for_footage(
    model_env: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    from vsrflow.media.content import classify

    bars = make_video(
        tmp_path / "bars.mkv", size=(128, 96), frames=3, pix_fmt="gbrp", codec="ffv1", pattern="smptebars"
    )
    out = tmp_path / "auto.mkv"
    proc = run_cli(["upscale", str(bars), "-o", str(out), "--no-progress", "--preset", "auto",
                    "--scale", "2"], model_env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert f"with {FALLBACK}" in proc.stdout and "guard : 3 frames checked, none tripped" in proc.stdout
    assert "preset auto:" in proc.stderr and "looks like cartoon" in proc.stderr
    assert classify(sample_path(settings, "bikes")).kind == "footage"
