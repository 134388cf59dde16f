"""``vsrflow run --input-dir IN --output-dir OUT``: the whole batch workflow in one command.

Weights, then every video of IN upscaled (and evaluated against ``--reference-dir``), each stage in
its own process; see :mod:`vsrflow.batch.runner` for the contract. Exit status: 0 all videos
succeeded, 1 one or more failed (the summary is still printed), 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from vsrflow.cli.options import DeprecatedAlias
from vsrflow.config import Settings


def register(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="upscale (and evaluate) every video of a directory; resumable, one process per stage",
    )
    p.add_argument("--input-dir", type=Path, required=True, help="directory of source videos")
    p.add_argument("--output-dir", type=Path, required=True, help="where <stem>_x<scale>.<ext> go (created)")
    p.add_argument(
        "--reference-dir", type=Path, default=None, help="HR references named <stem>.*: evaluate each output"
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--model", help="model id (see `vsrflow models list`)")
    which.add_argument("--preset", help="content preset: anime, live-action or fidelity (default: fidelity)")
    p.add_argument(
        "--scale", type=float, default=None, help="output scale (default: the model's native scale)"
    )
    # Weights: obtained on first use unless --no-download (a global option); the old spelling stays.
    p.add_argument(
        "--skip-download", dest="no_download", action=DeprecatedAlias, new="--no-download", nargs=0,
        default=argparse.SUPPRESS, help=argparse.SUPPRESS,
    )  # fmt: skip
    p.add_argument("--skip-upscale", action="store_true", help="evaluate the outputs already in --output-dir")
    p.add_argument("--skip-evaluate", action="store_true", help="do not evaluate, even with --reference-dir")
    p.add_argument("--force", action="store_true", help="redo videos that are already done")
    p.add_argument("--jobs", type=int, default=1, help="videos processed at once (default 1)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from vsrflow.batch.runner import BatchOptions, BatchRunner, discover_inputs
    from vsrflow.batch.summary import VideoResult, format_table
    from vsrflow.engine.progress import ProgressDisplay

    options = BatchOptions(
        input_dir=args.input_dir,
        output_dir=args.output_dir,
        reference_dir=args.reference_dir,
        model=args.model,
        preset=args.preset,
        scale=args.scale,
        skip_download=settings.no_download,
        skip_upscale=args.skip_upscale,
        skip_evaluate=args.skip_evaluate,
        force=args.force,
        jobs=args.jobs,
    )

    total = len(discover_inputs(args.input_dir))
    display = ProgressDisplay(
        "run", interval=settings.progress_interval, unit="videos", enabled=not settings.quiet
    )
    finished = [0]

    def progress(result: VideoResult) -> None:
        finished[0] += 1
        display(finished[0], total)
        if result.ok:
            state = {"skipped": "skipped (already done)"}.get(result.upscale, result.upscale)
            evaluated = f", {result.evaluate}" if result.evaluate else ""
            print(f"{result.input.name}: {state}{evaluated} ({result.seconds:.1f} s)", file=sys.stderr)
        else:
            print(f"{result.input.name}: FAILED: {result.error}", file=sys.stderr)

    try:
        report = BatchRunner(options, settings, on_result=progress).run()
    finally:
        display.close()
    print(f"model {report.model}, x{report.scale:g}; summary: {report.summary_path}")
    print(format_table(report.results))
    return 1 if report.failed else 0
