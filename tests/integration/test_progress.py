"""Progress where a user looks for it: output to a pipe (CI, nohup, `| tee`, a Slurm log) gets
plain lines with done/total, rate and ETA every VSRFLOW_PROGRESS_INTERVAL seconds, and a last one
with the totals; ``--quiet`` shows none. The interval is tiny here so the test needs no long clip:
one inference batch always takes longer than a millisecond."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.mediagen import make_video

FAST = "realesr-animevideov3"
#: ``upscale in.mp4: 12/40 frames (30%), 3.10 fps, ETA 9 s``
LINE = re.compile(
    r"^\S+ (?P<desc>.+): (?P<done>\d+)/(?P<total>\d+) (?P<unit>\w+) \(\d+%\), [\d.]+ \S+, ETA \S+"
)


def _lines(stderr: str, unit: str) -> list[tuple[int, int]]:
    found = [LINE.match(line) for line in stderr.splitlines()]
    return [(int(m["done"]), int(m["total"])) for m in found if m and m["unit"] == unit]


@pytest.fixture(scope="module")
def env(model_env: dict[str, str]) -> dict[str, str]:
    return dict(model_env, VSRFLOW_PROGRESS_INTERVAL="0.001")


def test_upscale_to_a_pipe_prints_progress_lines(env: dict[str, str], tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", size=(48, 32), frames=12)
    proc = run_cli(["upscale", str(src), "-o", str(tmp_path / "out.mp4"), "--model", FAST], env)
    assert proc.returncode == 0, proc.stderr
    lines = _lines(proc.stderr, "frames")
    assert len(lines) >= 2, proc.stderr
    assert all(total == 12 for _, total in lines)
    assert [done for done, _ in lines] == sorted(done for done, _ in lines)
    assert lines[-1] == (12, 12)
    assert "ETA" in proc.stderr and "fps" in proc.stderr
    assert not any(line.lstrip().startswith("{") for line in proc.stderr.splitlines()), "text logs, not JSON"


def test_quiet_and_no_progress_show_none(env: dict[str, str], tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", size=(48, 32), frames=4)
    for flag in ("--quiet", "--no-progress"):
        proc = run_cli(
            ["upscale", str(src), "-o", str(tmp_path / "out.mp4"), "--overwrite", "--model", FAST, flag], env
        )
        assert proc.returncode == 0, proc.stderr
        assert _lines(proc.stderr, "frames") == [], proc.stderr
    assert proc.stdout.startswith("wrote ")


def test_json_logs_when_asked(env: dict[str, str], tmp_path: Path) -> None:
    import json

    src = make_video(tmp_path / "in.mp4", size=(48, 32), frames=4)
    proc = run_cli(
        ["--log-format", "json", "upscale", str(src), "-o", str(tmp_path / "out.mp4"), "--model", FAST], env
    )
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stderr.splitlines() if line.strip()]
    assert any(r["message"].startswith("upscale in.mp4: 4/4 frames") for r in records)


@pytest.mark.slow
def test_submit_local_prints_stage_changes_and_frame_progress(env: dict[str, str], tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", size=(32, 24), frames=48, fps="24")
    out = tmp_path / "out.mp4"
    argv = ["submit", str(src), "-o", str(out), "--model", FAST, "--chunk-frames", "24"]
    proc = run_cli([*argv, "--jobs-root", str(tmp_path / "jobs")], env)
    assert proc.returncode == 0, proc.stderr
    assert out.is_file()
    assert "extract started" in proc.stderr and "extract done: 48 frames in 2 chunks" in proc.stderr
    assert "encode started" in proc.stderr and "encode done" in proc.stderr
    lines = _lines(proc.stderr, "frames")
    assert len(lines) >= 2, proc.stderr
    assert lines[0] == (24, 48) and lines[-1] == (48, 48)
