"""``vsrflow status JOB_DIR``: the state of a chunked job, chunk progress and failure reasons."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vsrflow.config import Settings


def register(sub: Any) -> None:
    p = sub.add_parser("status", help="show the state of a chunked job")
    p.add_argument("job_dir", type=Path, help="the job directory (<jobs root>/<job id>)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from vsrflow.workflow.jobmanifest import ChunkState, ManifestStore
    from vsrflow.workflow.slurm import read_job_ids
    from vsrflow.workflow.stages import job_from_path

    job = job_from_path(args.job_dir)
    store = ManifestStore(job)
    ids = read_job_ids(job)
    slurm_line = None
    if ids is not None:
        parts = [f"extract {ids.extract}"]
        if ids.array is not None:
            parts.append(f"array {ids.array} ({ids.array_spec})")
        parts += [
            f"{name} {value}" for name, value in (("encode", ids.encode), ("finalize", ids.finalize)) if value
        ]
        slurm_line = "  slurm jobs: " + ", ".join(parts)
    if not store.exists():
        print(f"{job.job_id}: queued (no manifest yet)")
        if slurm_line:
            print(slurm_line)
        return 0
    manifest = store.load()
    print(f"{job.job_id}: {manifest.status_text}")
    if manifest.plan is not None:
        print(f"  chunks: {manifest.done_count}/{manifest.chunk_count} done")
        for record in manifest.records:
            if record.state is ChunkState.FAILED:
                print(f"  chunk {record.index} failed (attempt {record.attempts}): {record.error}")
            elif record.state is ChunkState.RUNNING:
                print(f"  chunk {record.index} running (attempt {record.attempts})")
    if slurm_line:
        print(slurm_line)
    return 0
