"""``vsrflow degrade HR -o LR --scale S``: make LR inputs from HR clips for honest evaluation.

The kernel, noise, JPEG and size rules are documented in :mod:`vsrflow.media.degrade`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vsrflow.config import Settings
from vsrflow.errors import InputError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "degrade",
        help="make a lossless low-resolution clip from a high-resolution one (for evaluation)",
        description=(
            "Antialiased MATLAB-style bicubic downscale (the SR-literature 'BI' degradation), with "
            "optional Gaussian blur before, Gaussian noise after and per-frame JPEG; deterministic "
            "with --seed. Writes lossless RGB FFV1 in .mkv; every frame, pts and audio track kept. "
            "Sizes not divisible by --scale are refused unless --crop-reference is given."
        ),
    )
    p.add_argument("input", type=Path, help="high-resolution source clip")
    p.add_argument("-o", "--output", type=Path, required=True, help="low-resolution output (.mkv)")
    p.add_argument("--scale", type=int, required=True, help="integer downscale factor (2, 3, 4...)")
    p.add_argument("--blur", type=float, default=0.0, help="Gaussian blur sigma in HR pixels (default 0)")
    p.add_argument(
        "--noise", type=float, default=0.0, help="Gaussian noise sigma in 8-bit levels (default 0)"
    )
    p.add_argument("--jpeg", type=int, default=None, help="re-compress each frame as JPEG at this quality")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument(
        "--crop-reference",
        type=Path,
        default=None,
        metavar="HR_OUT",
        help="crop a non-divisible input (top-left) to a multiple of --scale; write that HR here (.mkv)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    # PyAV/OpenCV load here, so `vsrflow --help` stays instant.
    from vsrflow.media.degrade import degrade_video

    for path in (args.output, args.crop_reference):
        if path is not None and path.exists() and not args.overwrite:
            raise InputError(f"output {path} already exists", hint="pass --overwrite or choose another path")
    info = degrade_video(
        args.input,
        args.output,
        scale=args.scale,
        blur=args.blur,
        noise=args.noise,
        jpeg=args.jpeg,
        seed=args.seed,
        crop_reference=args.crop_reference,
    )
    print(
        f"wrote {args.output}: {info.width}x{info.height}, {info.frame_count} frames, {info.duration:.3f} s"
    )
    if args.crop_reference is not None:
        print(f"wrote {args.crop_reference}: the matching HR reference")
    return 0
