"""`vsrflow run` end to end: real child processes, real model (realesr-animevideov3), tiny clips."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.mediagen import make_truncated_mp4, make_video
from vsrflow.media.degrade import degrade_video

MODEL = "realesr-animevideov3"


@pytest.fixture(scope="module")
def env(model_env: dict[str, str]) -> dict[str, str]:
    return model_env


@pytest.fixture()
def dirs(tmp_path: Path) -> tuple[Path, Path, Path]:
    """IN with two good LR clips (made by degrade from REF) and one corrupt file; REF; OUT."""
    inp, ref, out = tmp_path / "in", tmp_path / "ref", tmp_path / "out"
    inp.mkdir()
    ref.mkdir()
    for i, name in enumerate(("a", "c")):
        make_video(ref / f"{name}.mkv", size=(64, 48), frames=3, pattern=("testsrc2", "smptebars")[i])
        degrade_video(ref / f"{name}.mkv", inp / f"{name}.mkv", scale=4)
    make_truncated_mp4(inp / "b.mp4")
    return inp, ref, out


def _run(env: dict[str, str], inp: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    proc = run_cli(["run", "--input-dir", str(inp), "--output-dir", str(out), "--model", MODEL, *extra], env)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.slow
def test_failure_isolated_then_resume_then_force(env: dict[str, str], dirs: tuple[Path, Path, Path]) -> None:
    inp, ref, out = dirs
    code, stdout, stderr = _run(env, inp, out, "--reference-dir", str(ref))
    assert code == 1, stderr
    summary = json.loads((out / "run-summary.json").read_text())
    by_name = {Path(v["input"]).name: v for v in summary["videos"]}
    assert [by_name[n]["status"] for n in ("a.mkv", "b.mp4", "c.mkv")] == ["ok", "failed", "ok"]
    assert by_name["b.mp4"]["error"].startswith("upscale: ") and "b.mp4" in by_name["b.mp4"]["error"]
    assert (out / "a_x4.mkv").is_file() and (out / "c_x4.mkv").is_file() and not list(out.glob("b_x4*"))
    for name in ("a.mkv", "c.mkv"):
        assert by_name[name]["evaluate"] == "evaluated" and by_name[name]["metrics"]["psnr_y"] > 0
    assert {summary["best"]["input"], summary["worst"]["input"]} == {"a.mkv", "c.mkv"}
    assert "b.mp4" in stdout and "FAILED" in stdout and "best: " in stdout and "worst: " in stdout

    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("*_x4.mkv")}
    code, stdout, _ = _run(env, inp, out, "--reference-dir", str(ref))
    assert code == 1
    again = {Path(v["input"]).name: v for v in json.loads((out / "run-summary.json").read_text())["videos"]}
    assert again["a.mkv"]["upscale"] == again["c.mkv"]["upscale"] == "skipped"
    assert again["a.mkv"]["evaluate"] == "reused"
    assert again["a.mkv"]["metrics"] == by_name["a.mkv"]["metrics"]
    assert "2 already done" in stdout
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*_x4.mkv")} == mtimes

    (inp / "b.mp4").unlink()  # the corrupt one is gone: everything succeeds now
    code, stdout, stderr = _run(env, inp, out, "--force", "--skip-evaluate")
    assert code == 0, stderr
    forced = json.loads((out / "run-summary.json").read_text())
    assert [v["upscale"] for v in forced["videos"]] == ["upscaled", "upscaled"]
    assert all(p.stat().st_mtime_ns != mtimes[p.name] for p in out.glob("*_x4.mkv"))


def test_empty_and_missing_input_dirs_exit_2(env: dict[str, str], tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, stderr = _run(env, empty, tmp_path / "out")
    assert code == 2 and str(empty) in stderr and "no videos" in stderr
    code, _, stderr = _run(env, tmp_path / "missing", tmp_path / "out")
    assert code == 2 and "missing" in stderr


def test_skip_download_needs_weights(cli_env: dict[str, str], tmp_path: Path) -> None:
    inp = tmp_path / "in"
    inp.mkdir()
    make_video(inp / "a.mkv", size=(32, 24), frames=2)
    bare = {**cli_env, "VSRFLOW_CACHE_DIR": str(tmp_path / "empty-cache")}
    code, _, stderr = _run(bare, inp, tmp_path / "out", "--no-download")
    assert code == 2 and "downloads are off (--no-download)" in stderr and MODEL in stderr
    # The old spelling still works, with a warning.
    code, _, stderr = _run(bare, inp, tmp_path / "out", "--skip-download")
    assert code == 2 and "--skip-download is deprecated; use --no-download" in stderr
    assert "downloads are off (--no-download)" in stderr


def test_ctrl_c_stops_the_child_and_writes_a_partial_summary(env: dict[str, str], tmp_path: Path) -> None:
    # One clip long enough (~10 s of CPU inference) that SIGINT surely lands mid-upscale: the
    # 3-frame clips of `dirs` can finish the whole run before the signal arrives on a fast machine.
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    make_video(inp / "a.mkv", size=(160, 120), frames=120)
    proc = subprocess.Popen(
        [sys.executable, "-m", "vsrflow", "run", "--input-dir", str(inp), "--output-dir", str(out),
         "--model", MODEL],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
        # A runner started in the background (nohup, `cmd &`) passes SIGINT down as ignored, and
        # Python then never raises KeyboardInterrupt: give the child the default disposition.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    log = out / ".vsrflow-run" / "logs" / "a.mkv.upscale.log"
    deadline = time.monotonic() + 60
    while not log.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # the child is importing/upscaling now
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    assert json.loads((out / "run-summary.json").read_text())["interrupted"] is True
    assert not [p.name for p in out.iterdir() if p.name.startswith(".") and p.is_file()]  # no partials
