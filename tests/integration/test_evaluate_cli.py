"""``vsrflow evaluate`` end to end: real clips made by the ffmpeg CLI, the real CLI in a child process.

Clips are lossless FFV1 in planar RGB, so ffmpeg's own ``rawvideo rgb24`` decode is an independent
source of the exact frames, and scikit-image (with the SR-literature parameters) an independent
implementation of PSNR/SSIM to check the JSON summary against.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from tests.conftest import run_cli

FFMPEG = shutil.which("ffmpeg")
W, H, N, SCALE = 128, 96, 8, 4


def _ffmpeg(*args: str) -> bytes:
    assert FFMPEG is not None, "ffmpeg CLI missing: run `make install`"
    argv = [FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
    proc = subprocess.run(argv, capture_output=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout


def _clip(path: Path, *, frames: int = N, vf: str | None = None, size: tuple[int, int] = (W, H)) -> Path:
    src = f"testsrc2=size={size[0]}x{size[1]}:rate=10"
    args = ["-f", "lavfi", "-i", src, "-frames:v", str(frames), *(["-vf", vf] if vf else [])]
    _ffmpeg(*args, "-c:v", "ffv1", "-pix_fmt", "gbrp", str(path))
    return path


def _rgb24(path: Path, size: tuple[int, int] = (W, H)) -> np.ndarray:
    raw = _ffmpeg("-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-")
    return np.frombuffer(raw, np.uint8).reshape(-1, size[1], size[0], 3)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("evaluate_cli")
    lr_vf = f"scale={W // SCALE}:{H // SCALE}:flags=area"
    return {
        "ref": _clip(d / "ref.mkv"),
        "lr": _clip(d / "lr.mkv", vf=lr_vf),
        # The "model": bicubic x4 of the LR, plus a frame-varying noise so frames score differently.
        "out": _clip(d / "out.mkv", vf=f"{lr_vf},scale={W}:{H}:flags=bicubic,noise=alls=6:allf=t"),
        "short": _clip(d / "short.mkv", frames=N - 2, vf=f"{lr_vf},scale={W}:{H}:flags=bicubic"),
        "slight": _clip(d / "slight.mkv", vf=f"scale={W + 2}:{H + 2}:flags=bicubic"),
        "half": _clip(d / "half.mkv", vf=f"scale={W // 2}:{H // 2}"),
        "wide": _clip(d / "wide.mkv", vf=f"scale={W}:{H // 2}"),
        "dir": d,
    }


def _y(rgb: np.ndarray) -> np.ndarray:
    x = rgb.astype(np.float64) / 255.0
    return 16.0 + 65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]


def _independent(out: np.ndarray, ref: np.ndarray, crop: int) -> dict[str, float]:
    """Mean PSNR/SSIM (Y and RGB) over frames with scikit-image, SR-literature parameters."""
    c = (slice(crop, -crop), slice(crop, -crop)) if crop else (slice(None), slice(None))
    ssim_kw = {"data_range": 255, "gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
    scores: dict[str, list[float]] = {"psnr_y": [], "psnr_rgb": [], "ssim_y": [], "ssim_rgb": []}
    for o, r in zip(out, ref, strict=True):
        o, r = o[c], r[c]
        oy, ry = _y(o), _y(r)
        scores["psnr_y"].append(peak_signal_noise_ratio(ry, oy, data_range=255))
        scores["psnr_rgb"].append(peak_signal_noise_ratio(r, o, data_range=255))
        scores["ssim_y"].append(structural_similarity(ry, oy, **ssim_kw))
        ch = [
            structural_similarity(r[..., k].astype(float), o[..., k].astype(float), **ssim_kw)
            for k in range(3)
        ]
        scores["ssim_rgb"].append(float(np.mean(ch)))
    return {k: float(np.mean(v)) for k, v in scores.items()}


@pytest.fixture(scope="module")
def full_run(
    clips: dict[str, Path], cli_env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], Path]:
    work = clips["dir"] / "full"
    work.mkdir()
    proc = run_cli(
        [
            "evaluate", str(clips["out"]), "--reference", str(clips["ref"]), "--input", str(clips["lr"]),
            "--csv", str(work / "frames.csv"), "--json", str(work / "summary.json"),
            "--report", str(work / "report"),
        ],
        cli_env,
    )  # fmt: skip
    return proc, work


def test_full_run_writes_csv_json_and_terminal_table(
    full_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    proc, work = full_run
    assert proc.returncode == 0, proc.stderr
    for label in ("PSNR Y", "PSNR RGB", "SSIM Y", "SSIM RGB", "tOF", "worst frame"):
        assert label in proc.stdout
    assert "scale inferred from --input" in proc.stdout
    with (work / "frames.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["index"]) for r in rows] == list(range(N))
    assert rows[0]["tof"] == "" and all(float(r["tof"]) >= 0 for r in rows[1:])
    summary = json.loads((work / "summary.json").read_text())
    assert summary["frames"] == summary["output_frames"] == summary["reference_frames"] == N
    assert summary["scale_crop"] == SCALE
    assert set(summary["metrics"]) == {"psnr_rgb", "psnr_y", "ssim_rgb", "ssim_y", "tof"}
    assert summary["metrics"]["tof"]["count"] == N - 1
    psnr_by_frame = {int(r["index"]): float(r["psnr_y"]) for r in rows}
    assert summary["worst_frame"]["index"] == min(psnr_by_frame, key=psnr_by_frame.__getitem__)
    assert summary["inputs"]["output"].endswith("out.mkv") and summary["inputs"]["input"].endswith("lr.mkv")


def test_summary_matches_scikit_image_on_the_decoded_frames(
    full_run: tuple[subprocess.CompletedProcess[str], Path], clips: dict[str, Path]
) -> None:
    _, work = full_run
    summary = json.loads((work / "summary.json").read_text())
    expected = _independent(_rgb24(clips["out"]), _rgb24(clips["ref"]), SCALE)
    for name, value in expected.items():
        tolerance = 0.01 if name.startswith("psnr") else 0.0005
        assert summary["metrics"][name]["mean"] == pytest.approx(value, abs=tolerance), name


def test_report_folder_is_complete_and_html_references_existing_images(
    full_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, work = full_run
    report = work / "report"
    page = (report / "index.html").read_text()
    images = re.findall(r"<img src='([^']+)'|<img src=\"([^\"]+)\"", page)
    names = {a or b for a, b in images}
    assert {"worst_frame.png", "contact_sheet.png"} <= names
    for name in names:
        img = cv2.imread(str(report / name))
        assert img is not None and img.shape[0] > 50 and img.shape[1] > 200, name
    assert page.count("<svg") == 3
    with (report / "frames.csv").open() as fh:
        assert sum(1 for _ in fh) == N + 1


def test_image_folders_give_the_same_numbers_as_videos(
    full_run: tuple[subprocess.CompletedProcess[str], Path], clips: dict[str, Path], cli_env: dict[str, str]
) -> None:
    _, work = full_run
    folders = {}
    for key in ("out", "ref"):
        folder = clips["dir"] / f"{key}_frames"
        folder.mkdir()
        for i, frame in enumerate(_rgb24(clips[key])):
            cv2.imwrite(str(folder / f"f{i}.png"), frame[..., ::-1])  # unpadded names: natural order
        folders[key] = folder
    json_path = clips["dir"] / "folders.json"
    proc = run_cli(
        [
            "evaluate",
            str(folders["out"]),
            "-r",
            str(folders["ref"]),
            "--scale",
            str(SCALE),
            "--json",
            str(json_path),
        ],
        cli_env,
    )
    assert proc.returncode == 0, proc.stderr
    videos = json.loads((work / "summary.json").read_text())
    assert json.loads(json_path.read_text())["metrics"] == videos["metrics"]


def test_slight_size_difference_is_resized_and_said(clips: dict[str, Path], cli_env: dict[str, str]) -> None:
    json_path = clips["dir"] / "slight.json"
    proc = run_cli(
        ["evaluate", str(clips["slight"]), "-r", str(clips["ref"]), "--json", str(json_path)], cli_env
    )
    assert proc.returncode == 0, proc.stderr
    assert f"{W + 2}x{H + 2} resized to the reference size {W}x{H} (bicubic)" in proc.stdout
    notes = json.loads(json_path.read_text())["notes"]
    assert any("resized" in n for n in notes) and any("no border crop" in n for n in notes)


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("half", [f"{W // 2}x{H // 2}", f"{W}x{H}", "scale factor"]),
        ("wide", [f"{W}x{H // 2}", f"{W}x{H}", "aspect ratios differ"]),
    ],
)
def test_large_size_difference_is_refused(
    clips: dict[str, Path], cli_env: dict[str, str], key: str, words: list[str]
) -> None:
    proc = run_cli(["evaluate", str(clips[key]), "-r", str(clips["ref"])], cli_env)
    assert proc.returncode == 2
    assert str(clips[key]) in proc.stderr
    for word in words:
        assert word in proc.stderr


def test_frame_count_mismatch_names_both_counts_and_the_fix(
    clips: dict[str, Path], cli_env: dict[str, str]
) -> None:
    proc = run_cli(["evaluate", str(clips["short"]), "-r", str(clips["ref"])], cli_env)
    assert proc.returncode == 2
    assert f"has {N - 2} frames" in proc.stderr and f"has {N}" in proc.stderr
    assert "--align truncate" in proc.stderr


def test_align_truncate_compares_the_common_prefix(clips: dict[str, Path], cli_env: dict[str, str]) -> None:
    json_path = clips["dir"] / "trunc.json"
    args = [
        "evaluate",
        str(clips["short"]),
        "-r",
        str(clips["ref"]),
        "--align",
        "truncate",
        "--json",
        str(json_path),
    ]
    proc = run_cli(args, cli_env)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(json_path.read_text())
    assert (summary["frames"], summary["output_frames"], summary["reference_frames"]) == (N - 2, N - 2, N)
    assert any("frame counts differ" in n for n in summary["notes"])


def test_bad_inputs_exit_2_with_the_path_and_a_fix(clips: dict[str, Path], cli_env: dict[str, str]) -> None:
    d = clips["dir"]
    text = d / "notes.mp4"
    text.write_text("not a video\n")
    empty = d / "empty_folder"
    empty.mkdir()
    cases = [
        (["-r", str(text)], str(text), "--reference"),
        (["-r", str(d / "missing.mkv")], "missing.mkv", "no such video file"),
        (
            ["-r", str(clips["ref"]), "--input", str(clips["wide"])],
            str(clips["wide"]),
            "not an integer downscale",
        ),
    ]
    for extra, name, words in cases:
        proc = run_cli(["evaluate", str(clips["out"]), *extra], cli_env)
        assert proc.returncode == 2, (extra, proc.stderr)
        assert name in proc.stderr and words in proc.stderr, proc.stderr
    proc = run_cli(["evaluate", str(empty), "-r", str(clips["ref"])], cli_env)
    assert proc.returncode == 2 and str(empty) in proc.stderr and "no PNG/JPG images" in proc.stderr
