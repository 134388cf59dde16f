"""``vsrflow evaluate OUTPUT --reference REF``: score every frame pair, write CSV/JSON/HTML.

The numbers come from :func:`vsrflow.metrics.evaluate_pair` (PSNR/SSIM on RGB and BT.601 Y, tOF);
this module resolves the options (border crop, alignment), names the inputs in every error, prints
the compact summary and writes the requested files.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from vsrflow.config import Settings
from vsrflow.errors import InputError

if TYPE_CHECKING:
    from vsrflow.metrics.results import EvaluationResult

T = TypeVar("T")

_EPILOG = """\
border crop (pixels removed from each side before every metric, the SR-literature convention):
  --scale S given        crop S
  else --input LR given  crop round(ref_width / lr_width); LR x S must match the reference size
  else                   crop 0, with a note (published numbers crop `scale` pixels)

sizes: an output within max(4 px, 2%) of the reference size in both dimensions is resized to it
(bicubic) and a note says so; larger differences or another aspect ratio are refused (exit 2).
frame counts: --align strict (default) refuses different counts, naming both; --align truncate
compares the first min(N, M) frame pairs and notes both counts.
OUTPUT, REF and LR are video files, folders of PNG/JPG frames (natural name order) or one image.
"""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score an upscaled video against its reference: PSNR/SSIM (RGB, Y), tOF, HTML report",
        description="Measure every frame pair of OUTPUT against REF (no sampling).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    arg = p.add_argument
    arg("output", type=Path, metavar="OUTPUT", help="upscaled video or image folder to score")
    arg(
        "--reference",
        "-r",
        type=Path,
        required=True,
        metavar="REF",
        help="ground-truth video or image folder",
    )
    arg("--input", type=Path, metavar="LR", help="low-resolution source (crop rule, report panels)")
    arg("--csv", type=Path, metavar="FILE", help="write one row per frame to this CSV file")
    arg("--json", type=Path, metavar="FILE", help="write the summary to this JSON file")
    arg("--report", type=Path, metavar="DIR", help="write an HTML report into this folder")
    arg("--scale", type=int, metavar="S", help="border crop in pixels (default: see below)")
    arg("--align", choices=["strict", "truncate"], default="strict", help="frame-count rule (default strict)")
    p.set_defaults(handler=run)


def _as(role: str, action: Callable[[], T]) -> T:
    """Run ``action``; prefix an InputError with the option it concerns (the message has the path)."""
    try:
        return action()
    except InputError as exc:
        raise InputError(f"{role}: {exc.message}", hint=exc.hint) from exc


def _count_error(output: Path, reference: Path, n_out: int, n_ref: int) -> InputError:
    return InputError(
        f"frame counts differ: output {output} has {n_out} frames, reference {reference} has {n_ref}",
        hint="an upscale keeps every frame; pass --align truncate to compare the first "
        f"{min(n_out, n_ref)} frame pairs",
    )


def _check_writable(path: Path | None, option: str) -> None:
    # Fail before minutes of measuring, not after: the parent folder must exist.
    if path is not None and not path.parent.is_dir():
        raise InputError(f"{option} {path}: folder {path.parent} does not exist", hint="create it first")


def _fmt(value: float, digits: int) -> str:
    return f"{value:.{digits}f}" if math.isfinite(value) else "inf"


def summary_table(result: EvaluationResult) -> str:
    """The terminal summary: one row per metric (mean, min, max), the worst/best frames, the notes."""
    rows = [("PSNR Y", "psnr_y", 2, "dB"), ("PSNR RGB", "psnr_rgb", 2, "dB"), ("SSIM Y", "ssim_y", 4, ""),
            ("SSIM RGB", "ssim_rgb", 4, ""), ("tOF", "tof", 3, "px")]  # fmt: skip
    lines = [f"{'metric':<9} {'mean':>9} {'min':>9} {'max':>9}"]
    for label, key, digits, unit in rows:
        stats = result.summary.stats.get(key)
        if stats is None:
            lines.append(f"{label:<9} {'n/a':>9}")
            continue
        cells = " ".join(f"{_fmt(v, digits):>9}" for v in (stats.mean, stats.min, stats.max))
        lines.append(f"{label:<9} {cells} {unit}".rstrip())
    by_index = {f.index: f for f in result.frames}
    worst, best = by_index[result.summary.worst_frame], by_index[result.summary.best_frame]
    lines.append(
        f"worst frame {worst.index} ({_fmt(worst.psnr_y, 2)} dB Y), "
        f"best frame {best.index} ({_fmt(best.psnr_y, 2)} dB Y)"
    )
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)


def run(args: argparse.Namespace, settings: Settings) -> int:
    # Heavy imports (OpenCV, PyAV) here, so `vsrflow --help` stays instant.
    from vsrflow.media.sidecar import read_sidecar
    from vsrflow.metrics import evaluate_pair, iter_frames, summary_dict, write_csv
    from vsrflow.metrics.htmlreport import (
        PERCEPTUAL_NOTE,
        ReportInputs,
        provenance_json,
        provenance_lines,
        write_report,
    )
    from vsrflow.metrics.pairing import decide_crop, frame_count, frame_size

    output, reference, low = args.output, args.reference, args.input
    _check_writable(args.csv, "--csv")
    _check_writable(args.json, "--json")
    ref_size = _as("--reference", lambda: frame_size(reference))
    _as("OUTPUT", lambda: frame_size(output))
    low_size = _as("--input", lambda: frame_size(low)) if low is not None else None
    provenance = _as("OUTPUT", lambda: read_sidecar(output))
    decision = decide_crop(args.scale, low_size, ref_size, input_name=f"--input {low}")
    if args.align == "strict":
        n_out, n_ref = frame_count(output), frame_count(reference)
        if n_out != n_ref:
            raise _count_error(output, reference, n_out, n_ref)

    try:
        # Always truncate inside, then apply the strict rule here with a message naming the paths.
        result = evaluate_pair(
            iter_frames(output), iter_frames(reference), scale_crop=decision.crop, align="truncate"
        )
    except InputError as exc:
        raise InputError(f"comparing {output} with {reference}: {exc.message}", hint=exc.hint) from exc
    if args.align == "strict" and result.output_frames != result.reference_frames:
        raise _count_error(output, reference, result.output_frames, result.reference_frames)
    if decision.note:
        result = dataclasses.replace(result, notes=[*result.notes, decision.note])

    w, h = ref_size
    print(f"evaluated {len(result.frames)} frame pairs of {output} against {reference} ({w}x{h}, "
          f"border crop {result.scale_crop} px)")  # fmt: skip
    for line in provenance_lines(provenance):
        print(line)
    print(summary_table(result))
    if args.csv is not None:
        print(f"wrote {write_csv(result, args.csv)}")
    if args.json is not None:
        summary = summary_dict(result)
        summary["inputs"] = {"output": str(output), "reference": str(reference), "input": low and str(low)}
        summary["provenance"] = provenance_json(provenance)
        summary["perceptual"] = PERCEPTUAL_NOTE
        args.json.write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    if args.report is not None:
        scale = round(w / low_size[0]) if low_size is not None else None
        inputs = ReportInputs(output, reference, low, ref_size, input_scale=scale, provenance=provenance)
        print(f"wrote {write_report(result, args.report, inputs)}")
    return 0
