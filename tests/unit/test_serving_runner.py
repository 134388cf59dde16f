"""``stages.upscale_chunk`` with a runner: the manifest, checksum and failure records stay in stages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.mediagen import make_video
from tests.servinglib import prepare_job
from vsrflow.config import Settings
from vsrflow.errors import VsrError
from vsrflow.files import sha256_file
from vsrflow.workflow.job import stages
from vsrflow.workflow.job.manifest import ChunkState, ManifestStore


def test_runner_output_is_recorded_and_failures_fail_the_chunk(tmp_path: Path) -> None:
    clip = make_video(tmp_path / "c.mp4", frames=50)
    job = prepare_job(tmp_path / "jobs", clip)
    settings = Settings(cache_dir=tmp_path / "no-weights")  # a runner needs none here
    calls: list[tuple[int, Path]] = []

    def writes(job_: Any, chunk: Any, output: Path) -> dict[str, Any]:
        calls.append((chunk.index, output))
        output.write_bytes(b"chunk %d" % chunk.index)
        return {"frames": chunk.frames}

    assert stages.upscale_chunk(job, 0, settings, runner=writes)
    store = ManifestStore(job)
    out0 = job.chunk_output_path(0)
    assert calls == [(0, out0)]
    assert store.record(0).state is ChunkState.DONE and store.record(0).checksum == sha256_file(out0)
    assert not stages.upscale_chunk(job, 0, settings, runner=writes), "a verified chunk is skipped"
    assert len(calls) == 1

    def fails(job_: Any, chunk: Any, output: Path) -> dict[str, Any]:
        output.write_bytes(b"half")
        raise VsrError("endpoint http://127.0.0.1:1 failed (500): boom")

    with pytest.raises(VsrError, match="boom"):
        stages.upscale_chunk(job, 1, settings, runner=fails)
    record = store.record(1)
    assert record.state is ChunkState.FAILED and "boom" in (record.error or "")
    assert not job.chunk_output_path(1).exists(), "a failed chunk leaves no output"
