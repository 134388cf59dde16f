"""``vsrflow probe FILE``: print what vsrflow sees in a media file, as JSON."""

from __future__ import annotations

import argparse
import dataclasses
import json
from fractions import Fraction
from pathlib import Path
from typing import Any

from vsrflow.config import Settings
from vsrflow.media.probe import probe


def register(sub: Any) -> None:
    p = sub.add_parser("probe", help="show a video's streams, frame count, timing and colours (JSON)")
    p.add_argument("input", type=Path, help="video file")
    p.add_argument(
        "--scan",
        default="auto",
        choices=["auto", "progressive", "tff", "bff", "telecine"],
        help="override the detected scan type (to preview what upscale would do)",
    )
    p.set_defaults(handler=run)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Fraction):
        return f"{value.numerator}/{value.denominator}"
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def run(args: argparse.Namespace, settings: Settings) -> int:
    from vsrflow.media.condition import choose_conditioning, crop_alignment
    from vsrflow.media.prefilter import detect_crop, square_width
    from vsrflow.media.scan import detect_scan

    info = probe(args.input)
    data = _jsonable(dataclasses.asdict(info))
    # The scan type (flag + idet content sample) and what `upscale` would do with it by default.
    scan = detect_scan(args.input, info, args.scan)
    data["scan"] = scan.to_json()
    data["conditioning"] = choose_conditioning(scan, "frame").describe()
    # What the pre-filters would find (`--crop auto`, `--square-pixels`; off unless asked for).
    crop = detect_crop(args.input, info, settings.ffmpeg, crop_alignment(info.pix_fmt))
    width = crop[0] if crop else info.width
    data["prefilter"] = {
        "crop_detected": None if crop is None else ":".join(map(str, crop)),
        "square_pixels_width": None if info.sar == 1 else square_width(width, info.sar),
    }
    print(json.dumps(data, indent=2))
    return 0
