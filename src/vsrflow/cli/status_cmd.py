"""``vsrflow status JOB``: the state of a chunked job, chunk progress and failure reasons.

JOB is a job directory, or the 16-hex id of an event-path job: that is read from
``s3://$VSRFLOW_AWS_BUCKET/jobs/<id>/status.json`` when a bucket is configured and no directory of
that name exists here.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from vsrflow.config import Settings
from vsrflow.errors import InputError

_HEX_ID = re.compile(r"^[0-9a-f]{16}$")


def register(sub: Any) -> None:
    p = sub.add_parser("status", help="show the state of a chunked job")
    p.add_argument(
        "job_dir",
        type=Path,
        metavar="JOB",
        help="job directory, or an event-path job id (reads S3 status.json)",
    )
    p.set_defaults(handler=run)


def _remote(job_id: str, settings: Settings) -> int:
    from vsrflow.aws.headnode import remote_status

    status = remote_status(settings, job_id)
    if status is None:
        raise InputError(
            f"job {job_id}: no status in s3://{settings.aws.bucket}/jobs/{job_id}/",
            hint="check the job id (the trigger's log names it) and VSRFLOW_AWS_BUCKET",
        )
    print(f"{job_id}: {status.text}")
    print(f"  updated: {status.updated}")
    if status.source:
        print(f"  source: {status.source}")
    if status.output:
        print(f"  output: {status.output}")
    for name, value in sorted(status.detail.items()):
        print(f"  {name}: {value}")
    return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    text = str(args.job_dir)
    if settings.aws.bucket and _HEX_ID.match(text) and not args.job_dir.is_dir():
        return _remote(text, settings)
    from vsrflow.workflow.job.layout import JobDir
    from vsrflow.workflow.job.manifest import ChunkState, ManifestStore
    from vsrflow.workflow.job.slurm import read_job_ids

    job = JobDir.at(args.job_dir)
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
        guard = manifest.guard
        if guard is not None:
            print(f"  guard : {guard.summary()}")
    if slurm_line:
        print(slurm_line)
    return 0
