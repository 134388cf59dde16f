"""``vsrflow upscale`` writes a provenance sidecar; ``vsrflow evaluate`` names what it says.

A real upscale (the real CLI, a real model) of a tiny lossless ``testsrc2`` clip, then a real
evaluation of the result against the clip it was downscaled from: the JSON summary, the terminal
summary and the HTML report must all name the model, the preset, the scale and the guard's counts,
and an output without a sidecar must say so instead of guessing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.mediagen import run
from vsrflow.media.sidecar import sidecar_path

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"
MODEL = "realesr-animevideov3"
W, H, N = 64, 48, 6


def _clip(path: Path, vf: str | None = None) -> Path:
    args = ["-f", "lavfi", "-i", f"testsrc2=size={W}x{H}:rate=10", "-frames:v", str(N)]
    run([FFMPEG, "-nostdin", "-loglevel", "error", "-y", *args, *(["-vf", vf] if vf else []),
         "-c:v", "ffv1", "-pix_fmt", "gbrp", str(path)])  # fmt: skip
    return path


@pytest.mark.slow
def test_evaluate_names_model_scale_and_guard(model_env: dict[str, str], tmp_path: Path) -> None:
    ref = _clip(tmp_path / "ref.mkv")
    low = _clip(tmp_path / "low.mkv", vf=f"scale={W // 2}:{H // 2}:flags=area")
    out = tmp_path / "out.mkv"
    proc = run_cli(
        ["upscale", str(low), "-o", str(out), "--model", MODEL, "--scale", "2", "--codec", "ffv1",
         "--no-progress"],
        model_env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    side = json.loads(sidecar_path(out).read_text(encoding="utf-8"))
    assert side["model_id"] == MODEL and side["scale"] == 2.0 and side["preset"] is None
    assert side["guard"]["checked"] == N

    summary, report = tmp_path / "summary.json", tmp_path / "report"
    argv = ["evaluate", str(out), "--reference", str(ref), "--input", str(low)]
    proc = run_cli([*argv, "--json", str(summary), "--report", str(report)], model_env)
    assert proc.returncode == 0, proc.stderr
    made = json.loads(summary.read_text(encoding="utf-8"))["provenance"]
    assert made["known"] is True and made["model_id"] == MODEL and made["scale"] == 2.0
    assert made["guard"]["checked"] == N and made["guard"]["tripped"] == side["guard"]["tripped"]
    assert MODEL in made["model"]
    guard_text = f"{N} frames checked, {side['guard']['tripped']} tripped"
    assert guard_text in proc.stdout and MODEL in proc.stdout
    page = (report / "index.html").read_text(encoding="utf-8")
    assert MODEL in page and "x2" in page and guard_text in page
    assert "none (the model was chosen directly)" in page and side["colour_fix"] in page

    # The reference has no sidecar: the summary says the model is unknown rather than guessing.
    bare = tmp_path / "bare.json"
    proc = run_cli(["evaluate", str(ref), "--reference", str(ref), "--json", str(bare)], model_env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(bare.read_text(encoding="utf-8"))["provenance"]["known"] is False
    assert "unknown (no vsrflow sidecar" in proc.stdout
