"""The Slurm executor end to end on the local emulator: real sbatch chain, real model, tiny clips.

``vsrflow submit --executor slurm`` submits extract; the extract job submits the upscale array,
encode and finalize (``vsrflow job submit-rest``). The chained output must equal the single-pass
``vsrflow upscale`` (ffv1: decoded pixels too). A real chunk failure (its output path is taken by
a directory, so the task cannot write it) must end in ``failed`` with the chunk and the reason,
encode cancelled, finalize run, and nothing left in the queue.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli
from tests.integration.test_slurm_emulator import N_NODES, Slurm, running_emulator
from tests.mediagen import decode_rgb, make_video
from vsrflow.localstack.slurm import free_port_block
from vsrflow.workflow.job.layout import JobDir
from vsrflow.workflow.job.manifest import ChunkState, JobState, ManifestStore
from vsrflow.workflow.job.spec import EncoderSpec, JobSpec, file_identity

# Slow (real Slurm daemons, whole jobs): `make test-fast` leaves these out.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

MODEL = "realesr-animevideov3"
FRAMES = 75
CHUNK = 25  # 3 chunks (25 is the minimum chunk length)
THROTTLE = 2


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slurm]:
    with running_emulator(tmp_path_factory.mktemp("slurmchain"), free_port_block(1 + N_NODES)) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def env(slurm: Slurm, model_env: dict[str, str]) -> dict[str, str]:
    """What the CLI and every Slurm job see: the emulator and the test weights.

    The venv is *not* on PATH (nor activated), as for `.venv/bin/vsrflow submit` typed by a
    user: the stages must run the installation that submitted them, not look for `vsrflow`.
    """
    out = dict(slurm.env)
    venv_bin = str(Path(sys.executable).parent)
    out["PATH"] = os.pathsep.join(p for p in out["PATH"].split(os.pathsep) if p != venv_bin)
    assert shutil.which("vsrflow", path=out["PATH"]) is None, "a vsrflow on PATH would hide the defect"
    out["VSRFLOW_CACHE_DIR"] = model_env["VSRFLOW_CACHE_DIR"]
    out["PYTHONPATH"] = model_env.get("PYTHONPATH", "")
    out.pop("VSRFLOW_DEVICE", None)
    return out


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("src") / "clip.mp4", frames=FRAMES, audio_tracks=1)


def _submit(env: dict[str, str], src: Path, out: Path, root: Path) -> subprocess.CompletedProcess[str]:
    args = [
        "submit", str(src), "-o", str(out), "--model", MODEL, "--jobs-root", str(root),
        "--executor", "slurm", "--chunk-frames", str(CHUNK), "--codec", "ffv1",
        "--array-throttle", str(THROTTLE),
    ]  # fmt: skip
    return run_cli(args, env, timeout=60)


def _wait_chain(slurm: Slurm, job: Path, timeout: float = 240) -> dict[str, str]:
    """Wait until the extract job recorded the whole chain, then until every job of it ended."""
    record = job / "logs" / "slurm.json"
    deadline = time.monotonic() + timeout
    while True:
        ids = json.loads(record.read_text()) if record.is_file() else {}
        if ids.get("finalize"):
            break
        extract = ids.get("extract")
        if extract and all(t["JobState"] in {"FAILED", "CANCELLED"} for t in slurm.jobs(extract)):
            logs = "\n".join(p.read_text() for p in (job / "logs").glob("*.log"))
            raise AssertionError(f"extract job failed:\n{logs}")
        if time.monotonic() > deadline:
            queue = slurm.run("squeue", "-o", "%i %T %r %E", check=False).stdout
            raise AssertionError(f"chain not submitted after {timeout}s: {ids}\n{queue}")
        time.sleep(0.3)
    left = max(10.0, deadline - time.monotonic())
    slurm.wait_done(ids["extract"], ids["array"], ids["encode"], ids["finalize"], timeout=left)
    return ids


def _queue_of(slurm: Slurm, ids: dict[str, str]) -> str:
    jobs = ",".join(ids[k] for k in ("extract", "array", "encode", "finalize"))
    return slurm.run("squeue", "-h", "-o", "%i %T %r", "-j", jobs, check=False).stdout.strip()


# Whole chains on a loaded 2-core machine: a hang guard, not a speed check.
@pytest.mark.timeout(900)
def test_chain_on_slurm_equals_single_pass(
    slurm: Slurm, env: dict[str, str], clip: Path, tmp_path: Path
) -> None:
    single = tmp_path / "single.mkv"
    proc = run_cli(
        ["upscale", str(clip), "-o", str(single), "--model", MODEL, "--codec", "ffv1", "--no-progress"], env
    )
    assert proc.returncode == 0, proc.stderr

    root = tmp_path / "jobs"
    root.mkdir()
    out = tmp_path / "chained.mkv"
    t0 = time.monotonic()
    # As after `make slurm-up` without the export: submit finds the running emulator's config
    # itself, and every job of the chain inherits it.
    unexported = {k: v for k, v in env.items() if k != "SLURM_CONF"}
    proc = _submit({**unexported, "SLURM_EMU_STATE_DIR": str(slurm.state)}, clip, out, root)
    assert proc.returncode == 0, proc.stderr
    assert "submitted to Slurm" in proc.stdout
    assert f"the local Slurm emulator is running with {slurm.state / 'etc' / 'slurm.conf'}" in proc.stderr
    (job,) = [p for p in root.iterdir() if p.is_dir()]
    ids = _wait_chain(slurm, job)
    print(f"\nslurm chain: submit to finalize {time.monotonic() - t0:.1f}s")

    for key in ("extract", "array", "encode", "finalize"):
        states = {t["JobState"] for t in slurm.jobs(ids[key])}
        assert states == {"COMPLETED"}, (key, slurm.jobs(ids[key]))
    # The throttle is in the submitted array spec.
    assert ids["array_spec"] == f"0-2%{THROTTLE}"
    array = slurm.jobs(ids["array"])
    assert len(array) == 3 and {t["ArrayTaskThrottle"] for t in array} == {str(THROTTLE)}, array
    assert {t["Partition"] for t in array} == {"gpu"}
    assert {t["Partition"] for k in ("extract", "encode", "finalize") for t in slurm.jobs(ids[k])} == {"cpu"}
    assert all(t["Dependency"] == "(null)" for t in array)  # satisfied and cleared
    assert _queue_of(slurm, ids) == ""
    # The failure guard (finalize afternotok:extract) was cancelled when extract succeeded.
    (guard,) = slurm.jobs(ids["guard"])
    assert guard["JobState"] == "CANCELLED" and guard["Reason"] == "DependencyNeverSatisfied", guard
    # Time limits sized from the work: 25-frame chunks at 2 s/frame -> 10 + 1 min; the array's
    # deadline leaves the default 2 h of waiting for GPU nodes.
    assert {t["TimeLimit"] for t in array} == {"00:11:00"}, array
    assert {t["TimeLimit"] for t in slurm.jobs(ids["extract"])} == {"00:17:00"}  # 15 + 2 per started GiB
    assert all(t["Deadline"] not in ("", "N/A", "Unknown") for t in array), array

    manifest = ManifestStore(JobDir.open(root, job.name)).load()
    assert manifest.state is JobState.DONE and manifest.chunk_count == 3
    assert not list((job / "chunks").glob("*.nut")), "finalize cleaned the scratch"
    assert sorted(p.name.split("-")[0] for p in (job / "logs").glob("*.log")).count("upscale") == 3
    # Each array task's log shows its progress (JSON lines inside Slurm), ending with its totals.
    task_logs = "\n".join(p.read_text() for p in (job / "logs").glob("upscale*.log"))
    for index in range(3):
        assert f'"message": "job {job.name} chunk {index}: {CHUNK}/{CHUNK} frames (100%)' in task_logs

    pts_a, img_a, kinds_a = decode_rgb(single)
    pts_b, img_b, kinds_b = decode_rgb(out)
    assert len(pts_b) == FRAMES and pts_b == pts_a
    assert kinds_b == kinds_a == ["video", "audio"]
    assert all(np.array_equal(a, b) for a, b in zip(img_a, img_b, strict=True))

    status = run_cli(["status", str(job)], env)
    assert status.returncode == 0 and "done" in status.stdout and "3/3" in status.stdout
    assert f"array {ids['array']} (0-2%{THROTTLE})" in status.stdout
    assert f"finalize {ids['finalize']}" in status.stdout


# Whole chains on a loaded 2-core machine: a hang guard, not a speed check.
@pytest.mark.timeout(900)
def test_failed_chunk_fails_job_and_leaves_nothing_pending(
    slurm: Slurm, env: dict[str, str], clip: Path, tmp_path: Path
) -> None:
    root = tmp_path / "jobs"
    root.mkdir()
    out = tmp_path / "out.mkv"
    # The same spec `vsrflow submit` builds, so the job dir can be prepared before submission.
    spec = JobSpec(
        source=str(clip.resolve()),
        destination=str(out.resolve()),
        model=MODEL,
        scale=4.0,
        encoder=EncoderSpec(codec="ffv1", crf=18, preset="medium", pix_fmt=None),
        chunk_frames=CHUNK,
        chunk_seconds=None,
        array_throttle=THROTTLE,
    )
    job = JobDir.create(root, spec, spec.job_id(file_identity(clip.resolve())))
    # A real failure: chunk 1's output path is a (non-empty) directory, so its task cannot write it.
    blocker = job.chunks_dir / "00001.nut"
    blocker.mkdir()
    (blocker / "keep").write_text("x")

    proc = _submit(env, clip, out, root)
    assert proc.returncode == 0, proc.stderr
    assert f"job {job.job_id}:" in proc.stdout  # the prepared job was reused
    ids = _wait_chain(slurm, job.path)

    states = {t["ArrayTaskId"]: t["JobState"] for t in slurm.jobs(ids["array"])}
    assert states == {"0": "COMPLETED", "1": "FAILED", "2": "COMPLETED"}, states
    (encode,) = slurm.jobs(ids["encode"])
    assert encode["JobState"] == "CANCELLED" and encode["Reason"] == "DependencyNeverSatisfied", encode
    (finalize,) = slurm.jobs(ids["finalize"])
    assert finalize["JobState"] == "COMPLETED", finalize
    assert _queue_of(slurm, ids) == "", "nothing may stay PENDING"

    manifest = ManifestStore(job).load()
    assert manifest.state is JobState.FAILED
    assert manifest.reason is not None and manifest.reason.startswith("chunk 1:"), manifest.reason
    assert manifest.records[1].state is ChunkState.FAILED
    assert not out.exists()
    status = run_cli(["status", str(job.path)], env)
    assert status.returncode == 0
    assert "failed: chunk 1" in status.stdout and "chunk 1 failed" in status.stdout, status.stdout
    print(f"\nslurm chain failure: {manifest.reason}")


def test_submit_errors(slurm: Slurm, env: dict[str, str], clip: Path, tmp_path: Path) -> None:
    root = tmp_path / "jobs"
    root.mkdir()
    # sbatch missing: InputError (exit 2) naming the setting.
    empty = tmp_path / "no-slurm"
    empty.mkdir()
    proc = _submit({**env, "VSRFLOW_SLURM_BIN_DIR": str(empty)}, clip, tmp_path / "a.mkv", root)
    assert proc.returncode == 2 and "VSRFLOW_SLURM_BIN_DIR" in proc.stderr, proc.stderr
    # sbatch failing: ExternalToolError (exit 1) with the argv and sbatch's stderr; nothing queued.
    root2 = tmp_path / "jobs2"
    root2.mkdir()
    proc = _submit({**env, "VSRFLOW_SLURM_CPU_PARTITION": "nosuch"}, clip, tmp_path / "b.mkv", root2)
    assert proc.returncode == 1, proc.stderr
    assert "sbatch exited with code" in proc.stderr, proc.stderr
    assert "invalid partition" in proc.stderr.lower(), proc.stderr
    queue = slurm.run("squeue", "-h", "-o", "%i %j").stdout
    assert "vsrflow-extract" not in queue, queue


def test_slurm_settings_from_env(tmp_path: Path) -> None:
    from vsrflow.config import DEFAULT_SLURM_BIN_DIR, Settings
    from vsrflow.errors import InputError

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "sbatch").write_text("#!/bin/sh\n")
    (fake / "sbatch").chmod(0o755)
    s = Settings.from_env({"PATH": str(fake)}).slurm
    assert (s.bin_dir, s.cpu_partition, s.gpu_partition, s.gpus_per_task) == (fake, "cpu", "gpu", 1)
    assert (s.cpus_per_task, s.mem, s.time) == (None, None, None)
    assert Settings.from_env({"PATH": str(tmp_path)}).slurm.bin_dir == DEFAULT_SLURM_BIN_DIR
    s = Settings.from_env(
        {
            "PATH": "",
            "VSRFLOW_SLURM_BIN_DIR": "/x/bin",
            "VSRFLOW_SLURM_CPU_PARTITION": "c5",
            "VSRFLOW_SLURM_GPU_PARTITION": "g5",
            "VSRFLOW_SLURM_GPUS_PER_TASK": "2",
            "VSRFLOW_SLURM_CPUS_PER_TASK": "8",
            "VSRFLOW_SLURM_MEM": "16G",
            "VSRFLOW_SLURM_TIME": "01:00:00",
        }
    ).slurm
    assert (s.bin_dir, s.cpu_partition, s.gpu_partition, s.gpus_per_task) == (Path("/x/bin"), "c5", "g5", 2)
    assert (s.cpus_per_task, s.mem, s.time) == (8, "16G", "01:00:00")
    with pytest.raises(InputError, match="VSRFLOW_SLURM_GPUS_PER_TASK"):
        Settings.from_env({"VSRFLOW_SLURM_GPUS_PER_TASK": "0"})
