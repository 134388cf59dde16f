"""The job manifest: atomic writes, validation on load, transitions, concurrent chunk updates."""

from __future__ import annotations

import json
import multiprocessing
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from vsrflow.errors import InputError, VsrError
from vsrflow.files import sha256_file
from vsrflow.workflow.job.layout import JobDir
from vsrflow.workflow.job.manifest import ChunkState, JobState, ManifestStore
from vsrflow.workflow.job.plan import Chunk
from vsrflow.workflow.job.spec import JobSpec

SHA = "a" * 64
TB = Fraction(1, 12800)


def chunks(n: int, size: int = 100) -> list[Chunk]:
    return [
        Chunk(i, i * size, (i + 1) * size, i * size * 512, (i + 1) * size * 512, i * size) for i in range(n)
    ]


def make_store(root: Path) -> ManifestStore:
    spec = JobSpec(source="/fsx/in.mp4", destination="/fsx/out.mp4", model="realesr-animevideov3")
    job = JobDir.create(root, spec)
    return ManifestStore(job)


def planned(root: Path, n: int = 4) -> ManifestStore:
    store = make_store(root)
    store.create()
    store.set_state(JobState.EXTRACTING)
    store.set_plan(n * 100, TB, chunks(n))
    store.set_state(JobState.UPSCALING)
    return store


# ---- happy path --------------------------------------------------------------------------------


def test_full_lifecycle_and_derived_progress(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    m = store.create()
    assert m.state is JobState.QUEUED and m.plan is None and m.status_text == "queued"
    store = planned(tmp_path, 3)
    assert store.load().status_text == "upscaling 0/3"
    store.start_chunk(0, now=100.0)
    rec = store.finish_chunk(0, checksum=SHA, now=104.0)
    assert (rec.state, rec.attempts, rec.seconds, rec.fps) == (ChunkState.DONE, 1, 4.0, 25.0)
    assert store.load().status_text == "upscaling 1/3"
    # Progress is derived from the chunk records, not stored in manifest.json.
    on_disk = json.loads(store.job.manifest_path.read_text())
    assert set(on_disk) == {"schema_version", "job_id", "state", "reason", "plan"}
    with pytest.raises(VsrError, match="only 1/3 chunks are done"):
        store.set_state(JobState.ENCODING)
    for i in (1, 2):
        store.start_chunk(i)
        store.finish_chunk(i, checksum=SHA)
    store.set_state(JobState.ENCODING)
    m = store.set_state(JobState.DONE)
    assert m.status_text == "done" and m.done_count == 3


def test_create_is_idempotent(tmp_path: Path) -> None:
    store = planned(tmp_path)
    assert store.create().state is JobState.UPSCALING


def test_failure_reason_and_resume_keeps_done_chunks(tmp_path: Path) -> None:
    store = planned(tmp_path)
    store.start_chunk(0)
    store.finish_chunk(0, checksum=SHA)
    store.start_chunk(1)
    store.fail_chunk(1, "endpoint returned 500")
    m = store.set_state(JobState.FAILED, reason="chunk 1 failed: endpoint returned 500")
    assert m.status_text == "failed: chunk 1 failed: endpoint returned 500"
    with pytest.raises(VsrError, match="from failed to extracting"):
        store.set_state(JobState.EXTRACTING)
    m = store.resume()
    assert m.state is JobState.QUEUED and m.reason is None
    store.set_state(JobState.EXTRACTING)
    store.set_plan(400, TB, chunks(4))  # identical plan: records kept
    m = store.set_state(JobState.UPSCALING)
    assert m.indices(ChunkState.DONE) == [0]
    assert m.indices(ChunkState.FAILED) == [1]
    assert store.start_chunk(1).attempts == 2  # failed -> running is a retry


def test_different_plan_needs_explicit_replace(tmp_path: Path) -> None:
    store = planned(tmp_path)
    store.start_chunk(2)
    store.finish_chunk(2, checksum=SHA)
    store.set_state(JobState.FAILED, reason="x")
    store.resume()
    store.set_state(JobState.EXTRACTING)
    with pytest.raises(VsrError, match="different chunk plan"):
        store.set_plan(400, TB, chunks(2, 200))
    m = store.set_plan(400, TB, chunks(2, 200), replace_plan=True)
    assert m.chunk_count == 2 and m.done_count == 0
    assert not store.job.chunk_state_path(2).exists()


# ---- transitions -------------------------------------------------------------------------------


def test_done_chunk_leaves_done_only_via_reset(tmp_path: Path) -> None:
    store = planned(tmp_path)
    store.start_chunk(0)
    store.finish_chunk(0, checksum=SHA)
    with pytest.raises(VsrError, match="from done to running") as info:
        store.start_chunk(0)
    assert "reset" in str(info.value)
    with pytest.raises(VsrError, match="from done to failed"):
        store.fail_chunk(0, "x")
    rec = store.reset_chunk(0)
    assert (rec.state, rec.attempts, rec.checksum) == (ChunkState.PENDING, 1, None)
    assert store.start_chunk(0).attempts == 2


def test_other_invalid_chunk_transitions(tmp_path: Path) -> None:
    store = planned(tmp_path)
    with pytest.raises(VsrError, match="from pending to done"):
        store.finish_chunk(0, checksum=SHA)
    with pytest.raises(VsrError, match="from pending to failed"):
        store.fail_chunk(0, "x")
    store.start_chunk(0)
    assert store.start_chunk(0).attempts == 2  # requeued task after a node died: a new attempt
    with pytest.raises(ValueError, match="sha256"):
        store.finish_chunk(0, checksum="not-a-hash")
    with pytest.raises(InputError, match="no chunk 9"):
        store.start_chunk(9)


def test_chunks_only_change_while_upscaling(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    store.create()
    store.set_state(JobState.EXTRACTING)
    store.set_plan(400, TB, chunks(4))
    with pytest.raises(VsrError, match="while extracting"):
        store.start_chunk(0)


def test_invalid_job_transitions(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    store.create()
    with pytest.raises(VsrError, match="from queued to encoding"):
        store.set_state(JobState.ENCODING)
    store.set_state(JobState.EXTRACTING)
    with pytest.raises(VsrError, match="without a chunk plan"):
        store.set_state(JobState.UPSCALING)
    with pytest.raises(ValueError, match="reason"):
        store.set_state(JobState.FAILED)
    with pytest.raises(VsrError, match="only a failed job"):
        store.resume()


def test_verify_chunk_checks_the_output_bytes(tmp_path: Path) -> None:
    store = planned(tmp_path)
    out = store.job.chunk_output_path(0)
    out.write_bytes(b"chunk-0 video")
    store.start_chunk(0)
    store.finish_chunk(0, checksum=sha256_file(out))
    assert store.verify_chunk(0)
    out.write_bytes(b"truncated")
    assert not store.verify_chunk(0)
    assert not store.verify_chunk(1)


# ---- hand-edited manifests are refused ---------------------------------------------------------


def edit(path: Path, change: Any) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _set(key: str, value: Any) -> Any:
    return lambda d: d.__setitem__(key, value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set("schema_version", 99), "schema_version 99"),
        (_set("state", "paused"), "unknown job state 'paused'"),
        (_set("job_id", "other"), "does not match"),
        (_set("reason", "why"), "has a failure reason"),
        (_set("extra", 1), "needs exactly the keys"),
        (lambda d: d["plan"]["chunks"][1].__setitem__("start", 90), "overlaps"),
        (lambda d: d["plan"]["chunks"][1].__setitem__("start", 110), "gap"),
        (lambda d: d["plan"].__setitem__("frame_count", 500), "cover frames 0..400, but the video has 500"),
        (lambda d: d["plan"]["chunks"].pop(), "cover frames 0..300"),
        (lambda d: d["plan"].__setitem__("time_base", "1/0"), "time_base"),
        (lambda d: d["plan"]["chunks"][0].__setitem__("start", "0"), "integers"),
    ],
)
def test_bad_manifest_is_refused(tmp_path: Path, change: Any, message: str) -> None:
    store = planned(tmp_path)
    edit(store.job.manifest_path, change)
    with pytest.raises(InputError, match=message) as info:
        store.load()
    assert "manifest.json: invalid manifest" in str(info.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_set("state", "exploded"), "unknown chunk state 'exploded'"),
        (_set("checksum", None), "done without a sha256 checksum"),
        (_set("checksum", "abc"), "done without a sha256 checksum"),
        (_set("index", 2), "records index 2"),
        (_set("attempts", -1), "attempts -1"),
        (_set("schema_version", 0), "schema_version 0"),
        (_set("seconds", "fast"), "seconds 'fast'"),
    ],
)
def test_bad_chunk_record_is_refused(tmp_path: Path, change: Any, message: str) -> None:
    store = planned(tmp_path)
    store.start_chunk(1)
    store.finish_chunk(1, checksum=SHA)
    edit(store.job.chunk_state_path(1), change)
    with pytest.raises(InputError, match=message) as info:
        store.load()
    assert "00001.json: invalid manifest" in str(info.value)


def test_record_for_a_chunk_outside_the_plan_is_refused(tmp_path: Path) -> None:
    store = planned(tmp_path)
    store.start_chunk(0)
    store.job.chunk_state_path(0).rename(store.job.chunk_state_path(7))
    with pytest.raises(InputError, match="the plan has 4 chunks"):
        store.load()


def test_done_job_with_pending_chunk_is_refused(tmp_path: Path) -> None:
    store = planned(tmp_path, 1)
    edit(store.job.manifest_path, _set("state", "done"))
    with pytest.raises(InputError, match="only 0/1 chunks are done"):
        store.load()


def test_invalid_json_is_refused(tmp_path: Path) -> None:
    store = planned(tmp_path)
    store.job.manifest_path.write_text('{"schema_version": 1,')
    with pytest.raises(InputError, match="not valid JSON"):
        store.load()


# ---- concurrency -------------------------------------------------------------------------------


def _task(root: str, job_id: str, indices: list[int], rounds: int) -> None:
    store = ManifestStore(JobDir(Path(root), job_id))
    for _ in range(rounds):
        for i in indices:
            store.start_chunk(i)
            store.fail_chunk(i, "simulated")
    for i in indices:
        store.start_chunk(i)
        store.finish_chunk(i, checksum=f"{i:064x}")


def test_concurrent_processes_never_lose_updates(tmp_path: Path) -> None:
    """Eight processes hammer their own chunks while the parent keeps loading the merged view."""
    n, procs, rounds = 32, 8, 5
    store = planned(tmp_path, n)
    ctx = multiprocessing.get_context("spawn")
    workers = [
        ctx.Process(target=_task, args=(str(tmp_path), store.job.job_id, list(range(p, n, procs)), rounds))
        for p in range(procs)
    ]
    for w in workers:
        w.start()
    seen = 0
    while any(w.is_alive() for w in workers):
        seen = max(seen, store.load().done_count)  # readers always see whole, valid records
    for w in workers:
        w.join(timeout=60)
        assert w.exitcode == 0
    m = store.load()
    assert m.done_count == n
    assert [r.attempts for r in m.records] == [rounds + 1] * n
    assert [r.checksum for r in m.records] == [f"{i:064x}" for i in range(n)]
    assert not list(store.job.chunks_dir.glob(".*.tmp"))
    assert store.set_state(JobState.ENCODING).state is JobState.ENCODING


def test_throughput_is_wall_clock_over_finished_chunks(tmp_path: Path) -> None:
    store = planned(tmp_path, 4)  # 4 chunks of 100 frames
    assert store.load().throughput() == (None, None)
    store.start_chunk(0, now=100.0)
    store.start_chunk(1, now=100.0)  # in parallel (an array)
    store.finish_chunk(0, checksum=SHA, now=110.0)
    assert store.load().throughput() == (10.0, 30.0)  # 100 frames in 10 s; 300 left
    store.finish_chunk(1, checksum=SHA, now=110.0)
    assert store.load().throughput() == (20.0, 10.0)  # two chunks in the same 10 s
