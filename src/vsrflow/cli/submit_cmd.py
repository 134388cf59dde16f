"""``vsrflow submit INPUT -o OUTPUT --executor local|slurm``: create a chunked job and run it.

``--executor slurm`` submits the extract Slurm job and returns (fire-and-forget); the extract job
submits the rest of the chain with ``vsrflow job submit-rest JOB_DIR`` (see
:mod:`vsrflow.workflow.slurm`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vsrflow.config import Settings
from vsrflow.errors import InputError, VsrError


def register(sub: Any) -> None:
    p = sub.add_parser("submit", help="create a chunked job (frame-exact chunks) and run it")
    p.add_argument("input", type=Path, help="source video on storage every worker sees")
    p.add_argument("-o", "--output", type=Path, required=True, help="output file (.mp4, .mkv, .mov)")
    p.add_argument(
        "--executor",
        choices=["local", "slurm"],
        default="local",
        help="where the stages run: here (local, waits) or as a Slurm job chain (slurm, returns at once)",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--model", help="model id (see `vsrflow models list`)")
    which.add_argument("--preset", help="content preset: anime, live-action or fidelity (default: fidelity)")
    p.add_argument("--scale", type=float, default=4.0, help="output scale (default 4)")
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
    p.add_argument("--preset-x264", default="medium", help="x264/x265 speed preset (default medium)")
    p.add_argument("--pix-fmt", default=None, help="output pixel format (default: from the source)")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from vsrflow.media.assemble import check_video_codec
    from vsrflow.media.writer import check_encoder
    from vsrflow.workflow.executors import run_local
    from vsrflow.workflow.jobdir import JobDir
    from vsrflow.workflow.jobspec import EncoderSpec, JobSpec, file_identity

    source = args.input.expanduser().resolve()
    output = args.output.expanduser().resolve()
    if not source.is_file():
        raise InputError(f"{args.input}: file not found", hint="check the path")
    if output.exists() and not args.overwrite:
        raise InputError(f"output {args.output} already exists", hint="pass --overwrite or choose another -o")
    if not output.parent.is_dir():
        raise InputError(f"output directory {output.parent} does not exist", hint="create it first")
    if output.suffix.lower() not in {".mp4", ".mkv", ".mov", ".m4v"}:
        raise InputError(f"output {args.output} has an unsupported extension", hint="use .mp4, .mkv, .mov")
    check_video_codec(output, check_encoder(args.codec))
    chunk_seconds = args.chunk_seconds
    if args.chunk_frames is None and chunk_seconds is None:
        chunk_seconds = 60.0
    spec = JobSpec(
        source=str(source),
        destination=str(output),
        model=args.model,
        preset=(args.preset or "fidelity") if args.model is None else None,
        scale=args.scale,
        encoder=EncoderSpec(codec=args.codec, crf=args.crf, preset=args.preset_x264, pix_fmt=args.pix_fmt),
        chunk_frames=args.chunk_frames,
        chunk_seconds=chunk_seconds,
        **({} if args.array_throttle is None else {"array_throttle": args.array_throttle}),
    )
    root = (args.jobs_root or settings.cache_dir / "jobs").expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    job = JobDir.create(root, spec, spec.job_id(file_identity(source)))
    print(f"job {job.job_id}: {job.path}")
    if args.executor == "slurm":
        from vsrflow.workflow.slurm import submit_slurm

        ids = submit_slurm(job, settings)
        print(
            f"job {job.job_id}: submitted to Slurm (extract job {ids.extract}); "
            f"see `vsrflow status {job.path}`"
        )
        return 0
    status = run_local(job, settings, workers=args.workers)
    if not output.is_file():
        raise VsrError(
            f"job {job.job_id} finished earlier, but {output} is gone (a done job is not re-encoded)",
            hint=f"remove {job.path} and submit again",
        )
    print(f"job {job.job_id}: {status}; wrote {output}")
    return 0
