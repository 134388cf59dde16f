"""``vsrflow job extract|upscale-chunk|encode|finalize|submit-rest JOB_DIR [--index I]``: one stage of a job.

``upscale-chunk`` calls the model endpoint of its GPU when ``VSRFLOW_ENDPOINT_BASE_PORT`` is set
(:mod:`vsrflow.serving.client`; in-process only as a configured fallback), else runs in-process.
``submit-rest`` is what the extract Slurm job runs last: it submits the chunk array, encode and
finalize once the chunk count is known (see :mod:`vsrflow.workflow.job.slurm`).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from vsrflow.config import Settings
from vsrflow.errors import InputError

STAGES = ("extract", "upscale-chunk", "encode", "finalize", "submit-rest")


def register(sub: Any) -> None:
    p = sub.add_parser("job", help="run one stage of a chunked job (what the cluster runs per task)")
    p.add_argument("stage", choices=STAGES, help="the stage to run")
    p.add_argument("job_dir", type=Path, help="the job directory (<jobs root>/<job id>)")
    p.add_argument(
        "--index",
        type=int,
        default=None,
        help="chunk index for upscale-chunk (default: $SLURM_ARRAY_TASK_ID)",
    )
    p.set_defaults(handler=run)


def _index(args: argparse.Namespace) -> int:
    if args.index is not None:
        index = int(args.index)
    else:
        task = os.environ.get("SLURM_ARRAY_TASK_ID")
        if task is None or not task.isdigit():
            raise InputError("upscale-chunk needs --index I (or SLURM_ARRAY_TASK_ID)")
        index = int(task)
    if index < 0:
        raise InputError(f"--index {index} must be >= 0")
    return index


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the stage. Event-path jobs (a spec with an S3 delivery target) then mirror the manifest
    to ``status.json`` and, once the job is done, upload the output and publish done + SNS
    (:class:`vsrflow.aws.headnode.S3Delivery`); a failed job publishes failed + SNS."""
    from vsrflow.workflow.job.layout import JobDir
    from vsrflow.workflow.job.local import run_stage

    job = JobDir.at(args.job_dir)
    spec = job.spec
    hooks = None
    if spec.delivery is not None:
        from vsrflow.aws.headnode import S3Delivery

        hooks = S3Delivery(job, spec, settings)
    return run_stage(args.stage, lambda: _run_stage(job, args, settings), hooks)


def chunk_runner(settings: Settings) -> Any:
    """The endpoint client of this task's GPU when endpoints are configured, else None (in-process)."""
    if not settings.endpoint.enabled:
        return None
    from vsrflow.serving.client import endpoint_runner

    return endpoint_runner(settings, os.environ)


def _run_stage(job: Any, args: argparse.Namespace, settings: Settings) -> int:
    from vsrflow.workflow.job import stages

    if args.stage == "extract":
        did = stages.extract(job)
        print(f"{job.job_id}: extract {'done' if did else 'already done'}")
    elif args.stage == "upscale-chunk":
        index = _index(args)
        did = stages.upscale_chunk(job, index, settings, runner=chunk_runner(settings))
        print(f"{job.job_id}: chunk {index} {'done' if did else 'already done'}")
    elif args.stage == "encode":
        did = stages.encode(job, settings)
        print(f"{job.job_id}: encode {'done' if did else 'already done'}")
    elif args.stage == "finalize":
        from vsrflow.workflow.job.slurm import finalize_context

        running, cause = finalize_context(job, settings)
        if running:
            # A requeued extract (node failure) is pending again: it is not dead, nothing to record.
            print(f"{job.job_id}: the Slurm chain is still running ({running}); nothing to record")
        else:
            print(f"{job.job_id}: {stages.finalize(job, cause=cause)}")
    else:
        from vsrflow.workflow.job.slurm import submit_rest

        ids = submit_rest(job, settings)
        print(
            f"{job.job_id}: Slurm array {ids.array} ({ids.array_spec}), encode {ids.encode}, "
            f"finalize {ids.finalize}"
        )
    return 0
