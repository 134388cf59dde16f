"""``vsrflow compare IN OUT -o strip.png [--html page.html]``: input next to its upscale, chosen frames."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vsrflow.config import Settings
from vsrflow.errors import InputError


def _indices(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma list of frame numbers, e.g. 0,12,24"
        ) from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: frame numbers start at 0")
    return values


def register(sub: Any) -> None:
    p = sub.add_parser("compare", help="input next to its upscale on chosen frames: PNG strip or HTML slider")
    p.add_argument("input", type=Path, help="the source (video, image or folder of images)")
    p.add_argument("upscaled", type=Path, help="its upscale by vsrflow upscale")
    p.add_argument(
        "-o", "--output", type=Path, default=None, help="PNG strip: one row per frame, input | output"
    )
    p.add_argument(
        "--html", type=Path, default=None, help="HTML page with a wipe slider per frame (self-contained)"
    )
    p.add_argument(
        "--frames", type=_indices, default=None, help="frame numbers, e.g. 0,50,100 (default: spread)"
    )
    p.add_argument("--count", type=int, default=3, help="frames spread over the video without --frames (3)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from vsrflow.metrics.compare import compare_frames, write_slider, write_strip

    if args.output is None and args.html is None:
        raise InputError("compare writes -o STRIP.png and/or --html PAGE.html", hint="give at least one")
    if args.count < 1:
        raise InputError(f"--count {args.count} must be at least 1")
    frames = compare_frames(args.input, args.upscaled, args.frames, args.count)
    listed = ", ".join(str(i) for i, _, _ in frames)
    if args.output is not None:
        write_strip(args.output, frames)
        print(f"wrote {args.output} (frames {listed})")
    if args.html is not None:
        write_slider(args.html, frames, args.input, args.upscaled)
        print(f"wrote {args.html} (frames {listed})")
    return 0
