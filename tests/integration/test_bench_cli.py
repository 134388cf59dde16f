"""`vsrflow bench` through the real CLI: fresh child processes, real ffmpeg, real converted weights.

A tiny case (32x24, 3 frames looped) keeps it to seconds; results go to a temporary --out, never
into bench/results.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from vsrflow.bench.speed import check_result

MODEL = "realesr-animevideov3"


@pytest.fixture(scope="module")
def env(model_env: dict[str, str]) -> dict[str, str]:
    return model_env


@pytest.mark.slow
def test_bench_tiny_run_writes_the_result_schema(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", "--model", MODEL, "--size", "32x24", "--frames", "3", "--loops", "2", "--repeat", "1"]
    args += ["--out", str(out)]
    proc = run_cli(args, dict(env, VSRFLOW_PROGRESS_INTERVAL="0.001"), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}" in proc.stdout
    # Output to a pipe: a progress line per measurement (fresh child process), 3 for --repeat 1.
    progress = [ln for ln in proc.stderr.splitlines() if " bench: " in ln and " measurements (" in ln]
    assert len(progress) >= 2 and "bench: 3/3 measurements (100%)" in progress[-1], proc.stderr
    assert all("ETA" in ln for ln in progress)
    doc = json.loads(out.read_text())
    check_result(doc)
    assert doc["benchmark"] == "upscale-speed" and doc["device_kind"] == "cpu"
    assert doc["torch"] and doc["git_commit"] and "cores" in doc["device"]
    (run,) = doc["runs"]
    assert run["model"] == MODEL and run["size"] == "32x24" and run["precision"] == "float32"
    assert run["frames"] == {"short": 3, "long": 6}
    assert len(run["all_seconds"]["model_only"]) == 1 == len(run["all_seconds"]["end_to_end"])
    assert run["model_only"]["fps"] == pytest.approx(6 / run["model_only"]["seconds"])
    assert run["end_to_end"]["fps"] > 0 and run["e2e_over_model"] > 0
    memory = run["peak_memory"]
    assert 50 < memory["rss_mb_short"] < 4096 and memory["cuda_max_allocated_mb"] is None
    assert memory["rss_ratio"] == pytest.approx(memory["rss_mb_long"] / memory["rss_mb_short"])
    assert run["mflop_per_px"] == pytest.approx(1.24)
    assert run["achieved_tflops"] > 0 and run["ceiling"] is None  # no ceiling on a CPU


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "no-such-model"], "no-such-model"),
        (["--model", MODEL, "--size", "31x24"], "even"),
        (["--model", MODEL, "--frames", "0"], "--frames"),
    ],
)
def test_bench_bad_input_exits_2(env: dict[str, str], tmp_path: Path, args: list[str], message: str) -> None:
    proc = run_cli(["bench", *args, "--out", str(tmp_path / "x.json")], env, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert not (tmp_path / "x.json").exists()
