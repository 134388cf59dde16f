"""``vsrflow submit INPUT -o OUTPUT --executor local|slurm``: create a chunked job and run it.

``--executor slurm`` submits the extract Slurm job and returns (fire-and-forget); the extract job
submits the rest of the chain with ``vsrflow job submit-rest JOB_DIR`` (see
:mod:`vsrflow.workflow.job.slurm`).

``vsrflow submit --job-id ID`` is what the S3 trigger runs on the head node (through SSM): the job
comes from ``s3://<VSRFLOW_AWS_BUCKET>/jobs/ID/request.json`` (:mod:`vsrflow.aws.headnode`), runs
with ``VSRFLOW_AWS_EXECUTOR`` (slurm by default; ``--executor`` overrides) and is delivered back to
S3 by the stage wrapper of ``vsrflow job``. Idempotent: a job already submitted is left alone; a
failed one is resumed; a finished one whose delivery failed is delivered. Any failure here is
recorded as status failed (+ SNS) before exiting.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vsrflow.cli.options import add_accept_damaged, add_encoder_preset
from vsrflow.cli.upscale_cmd import (
    add_conditioning_args,
    add_quality_arguments,
    pick_auto_preset,
    prefilter_request,
    quality_options,
)
from vsrflow.config import Settings
from vsrflow.errors import InputError, VsrError


def register(sub: Any) -> None:
    p = sub.add_parser("submit", help="create a chunked job (frame-exact chunks) and run it")
    p.add_argument("input", type=Path, nargs="?", help="source video on storage every worker sees")
    p.add_argument("-o", "--output", type=Path, help="output file (.mp4, .mkv, .mov); required with INPUT")
    p.add_argument(
        "--job-id",
        default=None,
        help="run the event-path job ID (16 hex digits) from s3://$VSRFLOW_AWS_BUCKET/jobs/ID/ "
        "instead of INPUT",
    )
    p.add_argument(
        "--executor",
        choices=["local", "slurm"],
        default=None,
        help="where the stages run: here (local, waits; default) or as a Slurm job chain (slurm, returns "
        "at once); with --job-id the default is VSRFLOW_AWS_EXECUTOR (slurm)",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--model", help="model id (see `vsrflow models list`) or a path to a .pth weight file")
    which.add_argument(
        "--preset", help="content preset: anime, live-action, fidelity or auto (see `vsrflow upscale -h`)"
    )
    p.add_argument(
        "--scale",
        type=float,
        default=None,
        help="output scale (default: the model's native scale; at most the native scale), as for upscale",
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument("--chunk-seconds", type=float, default=None, help="target chunk length (default 60 s)")
    size.add_argument("--chunk-frames", type=int, default=None, help="target chunk length in frames")
    p.add_argument(
        "--jobs-root", type=Path, default=None, help="job directories root (default <cache dir>/jobs)"
    )
    p.add_argument(
        "--array-throttle",
        type=int,
        default=None,
        help="slurm: chunks upscaled at once (K in --array=0-N%%K, default 8)",
    )
    p.add_argument("--workers", type=int, default=1, help="chunks upscaled at once (processes, default 1)")
    p.add_argument("--codec", default="libx264", help="video encoder (default libx264)")
    p.add_argument("--crf", type=int, default=18, help="encoder CRF (default 18)")
    add_encoder_preset(p, "medium", "x264/x265 speed preset, e.g. veryfast, slow (default medium)")
    p.add_argument("--pix-fmt", default=None, help="output pixel format (default: from the source)")
    add_quality_arguments(p)
    add_conditioning_args(p)
    add_accept_damaged(p)
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.job_id is not None:
        if args.input is not None or args.output is not None:
            raise InputError("--job-id takes no INPUT or -o", hint="the request in S3 names both")
        return _run_job_id(args, settings)
    if args.input is None or args.output is None:
        raise InputError("submit needs INPUT and -o OUTPUT (or --job-id ID)", hint="see `vsrflow submit -h`")
    return _run_path(args, settings)


def choose_model(model: str | None, preset: str | None, scale: float | None, settings: Settings) -> str:
    """The model a job records (:func:`vsrflow.workflow.job.submit.choose_model`)."""
    from vsrflow.workflow.job.submit import choose_model as choose

    return choose(model, preset, scale, settings)


def use_slurm_conf(settings: Settings) -> None:
    """Point this process's Slurm clients (sbatch, and so every stage job, which inherits the
    environment) at a configuration: the running local emulator's when none is set up, so
    `make slurm-up` then `vsrflow submit --executor slurm` works without an export. InputError
    naming the export when there is no configuration at all."""
    import logging
    import os

    from vsrflow.localstack.slurm import find_slurm_conf

    conf, why = find_slurm_conf(os.environ, settings.slurm.bin_dir)
    if conf is not None:
        os.environ["SLURM_CONF"] = str(conf)  # the edge: the one place the process env is changed
        logging.getLogger(__name__).info("Slurm: %s (export SLURM_CONF to use another)", why)


def _preset_fallback(preset: str, scale: float, model: str, settings: Settings) -> str | None:
    """The event path's fallback model: the preset's (``--on-artifact fallback`` is its default)."""
    from vsrflow.models.registry import get_spec, resolve_fallback
    from vsrflow.models.store import WeightStore

    found = resolve_fallback(
        preset, get_spec(model), scale=scale, available=WeightStore(settings.weights_dir).has
    )
    return None if found is None else found.id


def _run_job_id(args: argparse.Namespace, settings: Settings) -> int:
    from vsrflow.aws.clients import AwsClients
    from vsrflow.aws.headnode import S3Delivery, prepare_job, require_bucket
    from vsrflow.aws.jobrecords import check_job_id
    from vsrflow.aws.status import mark_failed

    job_id = check_job_id(args.job_id)
    bucket = require_bucket(settings)
    clients = AwsClients(settings.aws)
    executor = args.executor or settings.aws.executor
    try:
        prepared = prepare_job(
            job_id,
            settings,
            clients,
            resolve_model=lambda preset, scale: choose_model(None, preset, scale, settings),
            resolve_fallback=lambda preset, scale, model: _preset_fallback(preset, scale, model, settings),
        )
        if prepared.deliver:  # encoded before, delivery failed: upload it now
            uri = S3Delivery(prepared.job, prepared.spec, settings, clients).deliver()
            print(f"job {job_id}: finished before, " + (f"delivery resumed: {uri}" if uri else "superseded"))
            return 0
        if not prepared.fresh:
            print(f"job {job_id}: already submitted ({prepared.job.path}); nothing to do")
            return 0
        delivery = S3Delivery(prepared.job, prepared.spec, settings, clients)
        print(f"job {job_id}: {prepared.job.path}")
        # Queued before anything runs: a stage's own status must never be overwritten by this one.
        delivery.queued(executor=executor)
        if executor == "slurm":
            from vsrflow.workflow.job.slurm import submit_slurm

            use_slurm_conf(settings)
            ids = submit_slurm(prepared.job, settings)
            print(f"job {job_id}: submitted to Slurm (extract job {ids.extract})")
            return 0
    except Exception as exc:
        mark_failed(clients, settings.aws, bucket, job_id, f"submit: {exc}")
        raise
    from vsrflow.cli.job_cmd import chunk_runner
    from vsrflow.workflow.job.local import JobProgress, run_local

    # The same executor as a path job, with the delivery as its stage hooks (status per stage,
    # the upload once done) inside the progress display.
    hooks = JobProgress(
        prepared.job, interval=settings.progress_interval, enabled=not settings.quiet, inner=delivery
    )
    status = run_local(prepared.job, settings, hooks=hooks, runner=chunk_runner(settings))
    print(f"job {job_id}: {status}")
    return 0


def _run_path(args: argparse.Namespace, settings: Settings) -> int:
    from vsrflow.workflow.job.local import JobProgress, run_local
    from vsrflow.workflow.job.spec import EncoderSpec
    from vsrflow.workflow.job.submit import PathJobRequest, create_path_job

    if (args.executor or "local") == "slurm":
        use_slurm_conf(settings)  # before the job dir exists: a missing Slurm leaves nothing behind
    from vsrflow.models.registry import get_spec

    if args.input.is_file():  # else create_path_job names the missing input
        pick_auto_preset(args)  # the job records the model auto chose, never "auto"
    model = choose_model(args.model, args.preset, args.scale, settings)
    if args.scale is None:  # the model's native scale, as `vsrflow upscale` does
        args.scale = float(get_spec(model).scale)
    quality = quality_options(args, get_spec(model), settings)
    request = PathJobRequest(
        source=args.input,
        output=args.output,
        model=model,
        on_artifact=quality.on_artifact,
        fallback_model=quality.fallback,
        colour_fix=quality.colour_fix,
        scale=args.scale,
        encoder=EncoderSpec(codec=args.codec, crf=args.crf, preset=args.encoder_preset, pix_fmt=args.pix_fmt),
        chunk_seconds=args.chunk_seconds,
        chunk_frames=args.chunk_frames,
        array_throttle=args.array_throttle,
        overwrite=args.overwrite,
        deinterlace=args.deinterlace,
        scan=args.scan,
        accept_damaged=args.accept_damaged,
        video_stream=args.video_stream,
        prefilter=prefilter_request(args),
    )
    job = create_path_job(request, args.jobs_root or settings.cache_dir / "jobs", settings)
    output = Path(job.spec.destination)
    print(f"job {job.job_id}: {job.path}")
    if (args.executor or "local") == "slurm":
        from vsrflow.workflow.job.slurm import submit_slurm

        ids = submit_slurm(job, settings)
        print(
            f"job {job.job_id}: submitted to Slurm (extract job {ids.extract}); "
            f"see `vsrflow status {job.path}`"
        )
        return 0
    progress = JobProgress(job, interval=settings.progress_interval, enabled=not settings.quiet)
    status = run_local(job, settings, workers=args.workers, hooks=progress)
    if not output.is_file():
        raise VsrError(
            f"job {job.job_id} finished earlier, but {output} is gone (a done job is not re-encoded)",
            hint=f"remove {job.path} and submit again",
        )
    print(f"job {job.job_id}: {status}; wrote {output}")
    from vsrflow.media.info import Damage
    from vsrflow.media.sidecar import read_sidecar

    provenance = read_sidecar(output)
    if provenance is not None and provenance.damage:
        # The line `vsrflow upscale` prints, from what encode recorded in the sidecar.
        lost = Damage.from_json(provenance.damage).describe()
        print(f"  damage: input cut short, {lost} (--accept-damaged)")
    return 0
