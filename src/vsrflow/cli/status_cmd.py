"""``vsrflow status JOB [--watch [S]]``: the state of a chunked job, chunk progress and failure reasons.

JOB is a job directory, or a job id (16 hex digits): looked up under the local jobs roots
(``--jobs-root``, ``<cache dir>/jobs``, ``VSRFLOW_AWS_JOBS_ROOT``), then, when a bucket is
configured, read from ``s3://$VSRFLOW_AWS_BUCKET/jobs/<id>/status.json`` (an event-path job); or
an upload's ``s3://bucket/uploads/<preset>/key``: the job the trigger gave its current version.

A job on Slurm is checked against the queue (:func:`vsrflow.workflow.job.slurm.chain_view`): a job
none of whose Slurm jobs is alive any more, but whose manifest still says it runs, is marked
failed with the reason (nothing else could record it); an array pending for want of a node says
"waiting for nodes" and for how long.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from vsrflow.config import Settings
from vsrflow.errors import InputError, VsrError
from vsrflow.workflow.job.identity import JOB_ID_RE


def register(sub: Any) -> None:
    p = sub.add_parser("status", help="show the state of a chunked job")
    p.add_argument(
        "job_text",
        metavar="JOB",
        help="job directory, job id (looked up under the jobs roots, then in S3 status.json), or the "
        "upload's s3://bucket/key (the job of its current version)",
    )
    p.add_argument(
        "--jobs-root", type=Path, default=None, help="where to look for a job id (default <cache dir>/jobs)"
    )
    p.add_argument(
        "--watch",
        nargs="?",
        type=float,
        const=5.0,
        default=None,
        metavar="S",
        help="print the status again whenever it changes (checked every S seconds, default 5) until "
        "the job ends",
    )
    p.set_defaults(handler=run)


def _roots(args: argparse.Namespace, settings: Settings) -> list[Path]:
    roots = [args.jobs_root] if args.jobs_root else []
    roots += [settings.cache_dir / "jobs"]
    if settings.aws.jobs_root:
        roots.append(settings.aws.jobs_root)
    return [r.expanduser() for r in roots]


def _delivers_to_s3(path: Path) -> bool:
    from vsrflow.workflow.job.layout import JobDir

    return JobDir.at(path).spec.delivery is not None


def _locate(args: argparse.Namespace, settings: Settings) -> Path | str:
    """The job directory of JOB, or its id when it is only known to S3."""
    args.job_dir = Path(args.job_text)
    given: Path = args.job_dir
    text = args.job_text
    if text.startswith("s3://"):  # an upload: the job its current version started
        from vsrflow.aws.clients import AwsClients
        from vsrflow.aws.trigger import current_upload_job_id

        return current_upload_job_id(settings.aws, AwsClients(settings.aws), text)
    if given.is_dir():
        return given
    if JOB_ID_RE.match(text):
        for root in _roots(args, settings):
            if (root / text / "spec.json").is_file():
                if settings.aws.bucket and _delivers_to_s3(root / text):
                    # An event-path job (the head node's copy): its user-facing status is the
                    # S3 record, which also says delivered or superseded.
                    return text
                return root / text
        if settings.aws.bucket:
            return text
        where = ", ".join(str(r) for r in _roots(args, settings))
        raise InputError(
            f"job {text}: no job directory under {where}",
            hint="pass the job directory itself, its --jobs-root, or set VSRFLOW_AWS_BUCKET for an "
            "event-path job",
        )
    raise InputError(
        f"{given}: not a job directory (nor a job id: 16 hex digits)",
        hint="pass the directory `vsrflow submit` printed, or the job id",
    )


def _remote(job_id: str, settings: Settings) -> tuple[list[str], bool]:
    from vsrflow.aws.headnode import remote_status

    status = remote_status(settings, job_id)
    if status is None:
        raise InputError(
            f"job {job_id}: no status in s3://{settings.aws.bucket}/jobs/{job_id}/",
            hint="check the job id (the trigger's log names it) and VSRFLOW_AWS_BUCKET",
        )
    lines = [f"{job_id}: {status.text}", f"  updated: {status.updated}"]
    if status.source:
        lines.append(f"  source: {status.source}")
    if status.output:
        lines.append(f"  output: {status.output}")
    lines += [f"  {name}: {value}" for name, value in sorted(status.detail.items())]
    return lines, status.terminal


def _minutes_since(slurm_time: str) -> int | None:
    try:
        return max(0, int((datetime.now() - datetime.fromisoformat(slurm_time)).total_seconds() // 60))
    except ValueError:
        return None


def _slurm_lines(job: Any, settings: Settings) -> list[str]:
    """What Slurm says of the chain; reconciles a dead chain (see the module docstring)."""
    from vsrflow.workflow.job.slurm import chain_view, reconcile

    try:
        view = chain_view(job, settings)
    except VsrError as err:
        return [f"  slurm: cannot ask Slurm about the chain: {str(err).splitlines()[0]}"]
    if view is None:
        return []
    ids = view.ids
    parts = [f"extract {ids.extract}"]
    if ids.array is not None:
        parts.append(f"array {ids.array} ({ids.array_spec})")
    later = (("encode", ids.encode), ("finalize", ids.finalize))
    parts += [f"{name} {value}" for name, value in later if value]
    lines = ["  slurm jobs: " + ", ".join(parts), "  slurm states: " + view.summary()]
    waiting = view.waiting_for_nodes()
    if waiting is not None:
        since = _minutes_since(waiting.submit_time)
        limit = settings.slurm.max_wait_minutes
        lines.append(
            f"  waiting for nodes: {waiting.reason.replace('_', ' ')}"
            + (f" for {since} min" if since is not None else "")
            + (f" (gives up after ~{limit} min: VSRFLOW_SLURM_MAX_WAIT_MINUTES)" if limit else "")
        )
    reason = reconcile(job, settings, view)
    if reason:
        lines.append(f"  marked failed now: {reason}")
    return lines


def _local(path: Path, settings: Settings) -> tuple[list[str], bool]:
    from vsrflow.workflow.job.layout import JobDir
    from vsrflow.workflow.job.manifest import ChunkState, ManifestStore
    from vsrflow.workflow.job.state import TERMINAL_JOB_STATES

    job = JobDir.at(path)
    slurm = _slurm_lines(job, settings)  # first: it may record a failure the manifest then shows
    store = ManifestStore(job)
    if not store.exists():
        return [f"{job.job_id}: queued (no manifest yet)", *slurm], False
    manifest = store.load()
    lines = [f"{job.job_id}: {manifest.status_text}"]
    if manifest.plan is not None:
        lines.append(f"  chunks: {manifest.done_count}/{manifest.chunk_count} done")
        for record in manifest.records:
            if record.state is ChunkState.FAILED:
                lines.append(f"  chunk {record.index} failed (attempt {record.attempts}): {record.error}")
            elif record.state is ChunkState.RUNNING:
                lines.append(f"  chunk {record.index} running (attempt {record.attempts})")
        guard = manifest.guard
        if guard is not None:
            lines.append(f"  guard : {guard.summary()}")  # as the upscale summary prints it
    return [*lines, *slurm], manifest.state in TERMINAL_JOB_STATES


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.job_text.startswith("s3://") and not settings.aws.bucket:
        # The upload names its bucket: its job records (jobs/<id>/status.json) live there too.
        bucket = args.job_text.removeprefix("s3://").partition("/")[0]
        settings = dataclasses.replace(settings, aws=dataclasses.replace(settings.aws, bucket=bucket))
    where = _locate(args, settings)

    def snapshot() -> tuple[list[str], bool]:
        return _remote(where, settings) if isinstance(where, str) else _local(where, settings)

    lines, terminal = snapshot()
    print("\n".join(lines), flush=True)
    if args.watch is None:
        return 0
    if not args.watch > 0:
        raise InputError(f"--watch {args.watch}: the interval must be > 0 seconds", hint="e.g. --watch 5")
    try:
        while not terminal:
            time.sleep(args.watch)
            new, terminal = snapshot()
            if new != lines:
                print(f"[{datetime.now():%H:%M:%S}]", "\n".join(new), sep="\n", flush=True)
                lines = new
    except KeyboardInterrupt:
        pass
    return 0
