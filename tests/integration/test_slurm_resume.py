"""The Slurm executor on the local emulator: a killed array task, resume, and two jobs at once.

* A chunk task is SIGKILLed while its chunk is ``running``: the array task fails, encode is
  cancelled, finalize marks the job failed naming that chunk, nothing stays PENDING. Resubmitting
  the same source and output resumes the job: only the killed chunk runs again (the finished
  chunks' records are untouched and their tasks skip them after verifying the checksum), and the
  output equals the single-pass ``vsrflow upscale`` frame for frame.
* Two jobs submitted back to back both finish, with distinct job dirs and Slurm job names.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.test_slurm_chain import (  # noqa: F401  (fixtures used by name)
    _queue_of,
    _submit,
    _wait_chain,
    env,
    slurm,
)
from tests.integration.test_slurm_emulator import Slurm
from tests.mediagen import decode_rgb, make_video
from vsrflow.workflow.job.layout import JobDir
from vsrflow.workflow.job.manifest import ChunkState, JobState, ManifestStore

# Slow (real Slurm daemons, whole jobs): `make test-fast` leaves these out.
pytestmark = pytest.mark.slow

MODEL = "realesr-animevideov3"
CHUNK = 25  # the chain helpers submit with --chunk-frames 25


def _start_single_pass(env: dict[str, str], src: Path, out: Path) -> subprocess.Popen[str]:  # noqa: F811
    """Start the single-pass reference in the background (it overlaps Slurm's scheduling gaps)."""
    args = ["upscale", str(src), "-o", str(out), "--model", MODEL, "--codec", "ffv1", "--no-progress"]
    return subprocess.Popen(
        [sys.executable, "-m", "vsrflow", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish_single_pass(proc: subprocess.Popen[str], timeout: float = 600) -> None:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"single-pass vsrflow upscale not done after {timeout}s") from None
    assert proc.returncode == 0, err


def _assert_same_video(single: Path, out: Path, frames: int) -> None:
    import numpy as np

    pts_a, img_a, _ = decode_rgb(single)
    pts_b, img_b, _ = decode_rgb(out)
    assert len(pts_b) == frames and pts_b == pts_a, (len(pts_b), frames)
    assert all(np.array_equal(a, b) for a, b in zip(img_a, img_b, strict=True)), "decoded frames differ"


def _chunk_processes(job: Path) -> dict[int, int]:
    """{array task index: pid} of the running ``vsrflow job upscale-chunk <job>`` processes (/proc scan)."""
    found: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if b"upscale-chunk" not in argv or str(job).encode() not in argv:
                continue
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for var in environ:
            if var.startswith(b"SLURM_ARRAY_TASK_ID="):
                found[int(var.split(b"=", 1)[1])] = int(entry.name)
    return found


def _wait_running_chunk(job: Path, timeout: float = 60) -> tuple[int, int]:
    """Wait until a chunk is ``running`` in the manifest and its task process is found: (index, pid)."""
    deadline = time.monotonic() + timeout
    chunks = job / "chunks"
    while time.monotonic() < deadline:
        for path in sorted(chunks.glob("*.json")):
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # being replaced
            if record.get("state") == "running":
                pid = _chunk_processes(job).get(int(record["index"]))
                if pid is not None:
                    return int(record["index"]), pid
        time.sleep(0.05)
    states = {p.name: p.read_text() for p in chunks.glob("*.json")} if chunks.is_dir() else {}
    raise AssertionError(f"no chunk seen running with its process after {timeout}s: {states}")


# Whole chains on a loaded 2-core machine: a hang guard, not a speed check.
@pytest.mark.timeout(900)
def test_killed_chunk_task_then_resume_reruns_only_that_chunk(
    slurm: Slurm,  # noqa: F811
    env: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    frames = 75  # 3 chunks; 96x72 so a chunk takes long enough on CPU to be caught running
    clip = make_video(tmp_path / "clip.mp4", size=(96, 72), frames=frames, audio_tracks=1)
    root = tmp_path / "jobs"
    root.mkdir()
    out = tmp_path / "out.mkv"
    t0 = time.monotonic()
    proc = _submit(env, clip, out, root)
    assert proc.returncode == 0, proc.stderr
    (job,) = [p for p in root.iterdir() if p.is_dir()]

    index, pid = _wait_running_chunk(job)
    os.kill(pid, signal.SIGKILL)
    t_kill = time.monotonic() - t0
    ids = _wait_chain(slurm, job)

    states = {int(t["ArrayTaskId"]): t["JobState"] for t in slurm.jobs(ids["array"])}
    assert states[index] == "FAILED", states
    assert all(s == "COMPLETED" for i, s in states.items() if i != index), states
    (encode,) = slurm.jobs(ids["encode"])
    assert encode["JobState"] == "CANCELLED" and encode["Reason"] == "DependencyNeverSatisfied", encode
    (finalize,) = slurm.jobs(ids["finalize"])
    assert finalize["JobState"] == "COMPLETED", finalize
    assert _queue_of(slurm, ids) == "", "nothing may stay PENDING"

    jobdir = JobDir.open(root, job.name)
    store = ManifestStore(jobdir)
    manifest = store.load()
    assert manifest.state is JobState.FAILED, manifest.status_text
    assert manifest.reason is not None and str(index) in manifest.reason, manifest.reason
    assert manifest.records[index].state is not ChunkState.DONE, manifest.records[index]
    assert not out.exists()
    done = [r.index for r in manifest.records if r.state is ChunkState.DONE]
    assert sorted([*done, index]) == [0, 1, 2], manifest.records
    outputs = {i: job / "chunks" / f"{i:05d}.nut" for i in done}
    mtimes = {i: p.stat().st_mtime_ns for i, p in outputs.items()}
    records_before = {i: (job / "chunks" / f"{i:05d}.json").read_text() for i in done}
    killed_attempts = manifest.records[index].attempts

    single = tmp_path / "single.mkv"
    reference = _start_single_pass(env, clip, single)
    # Resubmit the same source and output: the failed job is resumed, not recreated.
    proc = _submit(env, clip, out, root)
    assert proc.returncode == 0, proc.stderr
    assert [p for p in root.iterdir() if p.is_dir()] == [job]
    ids2 = _wait_chain(slurm, job)
    assert ids2["extract"] != ids["extract"]
    for key in ("extract", "array", "encode", "finalize"):
        assert {t["JobState"] for t in slurm.jobs(ids2[key])} == {"COMPLETED"}, (key, slurm.jobs(ids2[key]))
    assert _queue_of(slurm, ids2) == ""
    t_total = time.monotonic() - t0

    manifest = store.load()
    assert manifest.state is JobState.DONE, manifest.status_text
    for i in done:  # finished chunks were not rerun: records byte-identical, one attempt
        assert (job / "chunks" / f"{i:05d}.json").read_text() == records_before[i], i
        assert manifest.records[i].attempts == 1, manifest.records[i]
    assert manifest.records[index].attempts == killed_attempts + 1, manifest.records[index]
    # Their tasks in the resumed array logged the skip (outputs are gone now: finalize cleaned them).
    pattern = f"upscale-chunk-{ids2['array']}_*.log"
    logs2 = {int(p.stem.rsplit("_", 1)[1]): p.read_text() for p in (job / "logs").glob(pattern)}
    assert sorted(logs2) == [0, 1, 2], sorted(logs2)
    for i in done:
        assert "already done" in logs2[i], logs2[i]
    assert "already done" not in logs2[index], logs2[index]
    assert not any(p.exists() for p in outputs.values())

    _finish_single_pass(reference)
    _assert_same_video(single, out, frames)
    print(f"\nkilled chunk {index} at {t_kill:.1f}s; resumed and done at {t_total:.1f}s; mtimes {mtimes}")


# Whole chains on a loaded 2-core machine: a hang guard, not a speed check.
@pytest.mark.timeout(900)
def test_two_jobs_at_once(
    slurm: Slurm,  # noqa: F811
    env: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    frames = 50  # 2 chunks each
    clips = [
        make_video(tmp_path / "a.mp4", size=(64, 48), frames=frames, audio_tracks=1),
        make_video(tmp_path / "b.mp4", size=(48, 64), frames=frames, pattern="smptebars"),
    ]
    root = tmp_path / "jobs"
    root.mkdir()
    outs = [tmp_path / "a.mkv", tmp_path / "b.mkv"]
    for clip, out in zip(clips, outs, strict=True):
        proc = _submit(env, clip, out, root)
        assert proc.returncode == 0, proc.stderr
    jobs = sorted(p for p in root.iterdir() if p.is_dir())
    assert len(jobs) == 2, jobs
    singles = [out.with_suffix(".single.mkv") for out in outs]
    references = [_start_single_pass(env, c, s) for c, s in zip(clips, singles, strict=True)]
    ids = [_wait_chain(slurm, job) for job in jobs]

    names: set[str] = set()
    for job, job_ids in zip(jobs, ids, strict=True):
        manifest = ManifestStore(JobDir.open(root, job.name)).load()
        assert manifest.state is JobState.DONE, manifest.status_text
        assert manifest.chunk_count == 2
        for key in ("extract", "array", "encode", "finalize"):
            tasks = slurm.jobs(job_ids[key])
            assert {t["JobState"] for t in tasks} == {"COMPLETED"}, (key, tasks)
            (name,) = {t["JobName"] for t in tasks}
            assert job.name in name, (name, job.name)
            names.add(name)
        assert _queue_of(slurm, job_ids) == ""
    assert len(names) == 8, names  # 4 stages x 2 jobs, none shared
    assert not set(ids[0].values()) & set(ids[1].values()) - {None, "0-1%2"}

    by_source = {json.loads((job / "spec.json").read_text())["source"]: job for job in jobs}
    assert set(by_source) == {str(c.resolve()) for c in clips}, by_source
    for reference, single, out in zip(references, singles, outs, strict=True):
        _finish_single_pass(reference)
        _assert_same_video(single, out, frames)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(pytest.main([__file__, "-q"]))
