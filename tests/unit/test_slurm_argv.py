"""sbatch argument lists of the chain's stages: partitions, GRES and limits from settings; scripts dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from vsrflow.config import Settings
from vsrflow.errors import InputError
from vsrflow.workflow.job.layout import JobDir
from vsrflow.workflow.job.slurm import SCRIPTS_DIR, stage_argv
from vsrflow.workflow.job.spec import EncoderSpec, JobSpec


def _job(tmp_path: Path) -> JobDir:
    spec = JobSpec(
        source=str(tmp_path / "in.mp4"),
        destination=str(tmp_path / "out.mp4"),
        model="realesr-animevideov3",
        scale=2,
        encoder=EncoderSpec(codec="libx264", crf=18, preset="medium"),
        chunk_frames=25,
        chunk_seconds=None,
    )
    return JobDir.create(tmp_path, spec, "ab" * 8)


def _settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"VSRFLOW_CACHE_DIR": str(tmp_path / "cache"), "PATH": "", **env})


def test_gpu_stage_from_settings(tmp_path: Path) -> None:
    job = _job(tmp_path)
    settings = _settings(
        tmp_path,
        VSRFLOW_SLURM_GPU_PARTITION="g5",
        VSRFLOW_SLURM_GPUS_PER_TASK="2",
        VSRFLOW_SLURM_CPUS_PER_TASK="8",
        VSRFLOW_SLURM_MEM="16G",
        VSRFLOW_SLURM_TIME="01:00:00",
    )
    argv = stage_argv(job, settings, "upscale-chunk", gpu=True, extra=["--array=0-9%4"])
    # What sbatch receives, not the order we wrote it in: options anywhere before the script.
    assert {"--parsable", "--kill-on-invalid-dep=yes", "--requeue"} <= set(argv[:-2])
    assert argv[argv.index("-J") + 1] == f"vsrflow-upscale-chunk-{job.job_id}"
    assert argv[argv.index("-p") + 1] == "g5"
    assert {"--gres=gpu:2", "--cpus-per-task=8", "--mem=16G", "--time=01:00:00", "--array=0-9%4"} <= set(argv)
    assert argv[argv.index("-o") + 1].endswith("upscale-chunk-%A_%a.log")
    assert argv[-2:] == [str(SCRIPTS_DIR / "upscale-chunk.sbatch"), str(job.path)]


def test_cpu_stage_has_no_gres(tmp_path: Path) -> None:
    argv = stage_argv(_job(tmp_path), _settings(tmp_path, VSRFLOW_SLURM_CPU_PARTITION="c6i"), "encode")
    assert argv[argv.index("-p") + 1] == "c6i"
    assert not [a for a in argv if a.startswith("--gres")]
    assert argv[argv.index("-o") + 1].endswith("encode-%j.log")


def test_scripts_dir_setting(tmp_path: Path) -> None:
    scripts = tmp_path / "opt" / "slurm"
    scripts.mkdir(parents=True)
    (scripts / "extract.sbatch").write_text("#!/bin/bash\n")
    settings = _settings(tmp_path, VSRFLOW_SLURM_SCRIPTS_DIR=str(scripts))
    job = _job(tmp_path)
    assert stage_argv(job, settings, "extract")[-2] == str(scripts / "extract.sbatch")
    with pytest.raises(InputError, match=r"encode\.sbatch: sbatch script missing") as info:
        stage_argv(job, settings, "encode")
    assert "VSRFLOW_SLURM_SCRIPTS_DIR" in str(info.value.hint)


def test_installed_scripts_are_found_without_a_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wheel install has no <repo>/slurm: the scripts come from <prefix>/share/vsrflow/slurm."""
    from vsrflow.workflow.job import slurm

    installed = tmp_path / "share" / "vsrflow" / "slurm"
    installed.mkdir(parents=True)
    (installed / "encode.sbatch").write_text("#!/bin/bash\n")
    monkeypatch.setattr(slurm, "SCRIPTS_DIR", tmp_path / "no-checkout")
    monkeypatch.setattr(slurm, "INSTALLED_SCRIPTS_DIR", installed)
    argv = stage_argv(_job(tmp_path), _settings(tmp_path), "encode")
    assert argv[-2] == str(installed / "encode.sbatch")


def test_wheel_ships_every_sbatch_script() -> None:
    """pyproject's data-files list names every stage script in slurm/ (nothing forgotten)."""
    import tomllib

    root = Path(__file__).resolve().parents[2]
    data = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    shipped = sorted(data["share/vsrflow/slurm"])
    assert shipped == sorted(f"slurm/{p.name}" for p in (root / "slurm").glob("*.sbatch"))


@pytest.mark.parametrize(
    ("env", "threads"),
    [
        ({"SLURM_CPUS_PER_TASK": "4"}, "4"),
        ({"SLURM_CPUS_PER_TASK": "4", "OMP_NUM_THREADS": "2"}, "2"),
        ({}, ""),
    ],
)
def test_array_task_threads_follow_cpus_per_task(tmp_path: Path, env: dict[str, str], threads: str) -> None:
    """upscale-chunk.sbatch gives torch the task's --cpus-per-task (tasks sharing a node's CPUs)."""
    import os
    import subprocess

    fake = tmp_path / "bin" / "vsrflow"
    fake.parent.mkdir()
    fake.write_text('#!/bin/bash\necho "threads=${OMP_NUM_THREADS:-} args=$*"\n')
    fake.chmod(0o755)
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "SLURM_CPUS_PER_TASK")}
    proc = subprocess.run(
        ["bash", str(SCRIPTS_DIR / "upscale-chunk.sbatch"), "/jobs/abc"],
        env={**clean, **env, "PATH": f"{fake.parent}:{clean.get('PATH', '')}"},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert proc.stdout.strip() == f"threads={threads} args=job upscale-chunk /jobs/abc"


def test_every_stage_gets_a_time_limit_sized_from_its_work(tmp_path: Path) -> None:
    """No VSRFLOW_SLURM_TIME: each stage's --time comes from its own work (whole minutes)."""
    from vsrflow.workflow.job import slurm

    gib = 1024**3
    assert slurm.extract_minutes(0) == 15
    assert slurm.extract_minutes(3 * gib + 1) == 15 + 2 * 4  # rounded up to whole GiB
    assert slurm.extract_minutes(None) == 15 + 2 * slurm.UNKNOWN_SOURCE_GIB  # an S3 source
    # 1440 frames at 2 s each = 48 min of compute, plus the floor.
    assert slurm.chunk_minutes(1440, 2.0) == 10 + 48
    assert slurm.chunk_minutes(25, 0.1) == 11
    assert slurm.encode_minutes(86_400) == 15 + 720
    argv = stage_argv(_job(tmp_path), _settings(tmp_path), "encode", minutes=42)
    assert [a for a in argv if a.startswith("--time")] == ["--time=42"]


def test_time_setting_overrides_every_stage_limit(tmp_path: Path) -> None:
    settings = _settings(tmp_path, VSRFLOW_SLURM_TIME="02:00:00")
    argv = stage_argv(_job(tmp_path), settings, "encode", minutes=42)
    assert [a for a in argv if a.startswith("--time")] == ["--time=02:00:00"]


@pytest.mark.parametrize(
    ("chunks", "throttle", "task", "wait", "expected"),
    [
        (10, 4, 30, 120, (120 + 3 * 30) * 60),  # 3 waves of 30-minute tasks, then 2 h of waiting
        (2, 8, 11, 5, (5 + 11) * 60),  # throttle above the chunk count: one wave
        (3, 1, 20, 0, None),  # 0: wait forever, no --deadline
    ],
)
def test_array_deadline_covers_every_wave_plus_the_wait(
    chunks: int, throttle: int, task: int, wait: int, expected: int | None
) -> None:
    from vsrflow.workflow.job.slurm import array_deadline_seconds

    assert array_deadline_seconds(chunks, throttle, task, wait) == expected


def test_slurm_wait_and_frame_budget_settings(tmp_path: Path) -> None:
    settings = _settings(tmp_path, VSRFLOW_SLURM_MAX_WAIT_MINUTES="0", VSRFLOW_SLURM_FRAME_SECONDS="0.25")
    assert settings.slurm.max_wait_minutes == 0 and settings.slurm.frame_seconds == 0.25
    assert _settings(tmp_path).slurm.max_wait_minutes == 120
    for name, bad in (("VSRFLOW_SLURM_MAX_WAIT_MINUTES", "-5"), ("VSRFLOW_SLURM_FRAME_SECONDS", "0")):
        with pytest.raises(InputError, match=name):
            _settings(tmp_path, **{name: bad})


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("90", 90), ("1:30", 2), ("01:30:00", 90), ("2-12", 3600), ("1-00:01", 1441), ("0-0:0:59", 1)],
)
def test_time_setting_in_minutes(text: str, minutes: int) -> None:
    """VSRFLOW_SLURM_TIME in Slurm's forms, as the array deadline counts it (rounded up)."""
    from vsrflow.workflow.job.slurm import time_setting_minutes

    assert time_setting_minutes(text) == minutes


def test_bad_time_setting_names_it() -> None:
    from vsrflow.workflow.job.slurm import time_setting_minutes

    with pytest.raises(InputError, match="VSRFLOW_SLURM_TIME='2h'"):
        time_setting_minutes("2h")
