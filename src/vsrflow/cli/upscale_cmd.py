"""``vsrflow upscale INPUT -o OUTPUT``: the main job on one machine."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from vsrflow.config import Settings
from vsrflow.errors import InputError
from vsrflow.formats import check_output_suffix


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be >= 0")
    return value


def register(sub: Any) -> None:
    p = sub.add_parser("upscale", help="upscale one video; every frame, track and timestamp kept")
    p.add_argument("input", type=Path, help="source video (any container/codec ffmpeg reads)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output file (.mp4, .mkv, .mov)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--model", help="model id (see `vsrflow models list`) or a path to a .pth weight file")
    which.add_argument("--preset", help="content preset: anime, live-action or fidelity (default: fidelity)")
    p.add_argument(
        "--scale",
        type=float,
        default=None,
        help="output scale (default: the model's native scale; at most the native scale)",
    )
    p.add_argument(
        "--tile",
        type=_positive_int,
        default=0,
        help="max tile side in input pixels (0: the model's default, whole frames except transformers; "
        "halves itself on out-of-memory)",
    )
    p.add_argument(
        "--tile-pad",
        type=_positive_int,
        default=None,
        help="tile overlap in input pixels (default: the model's receptive radius, capped)",
    )
    p.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument(
        "--precision",
        choices=["auto", "fp32", "fp16", "bf16"],
        default="auto",
        help="inference precision (auto: fp16 on CUDA, fp32 on CPU)",
    )
    p.add_argument("--batch", type=int, default=1, help="frames per inference batch (default 1)")
    p.add_argument("--codec", default="libx264", help="video encoder (default libx264)")
    p.add_argument("--crf", type=int, default=18, help="encoder CRF (default 18)")
    p.add_argument("--preset-x264", default="medium", help="x264/x265 speed preset (default medium)")
    p.add_argument(
        "--pix-fmt",
        default=None,
        help="output pixel format (default: yuv420p for 8-bit, yuv420p10le for 10-bit sources)",
    )
    add_conditioning_args(p)
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def add_conditioning_args(p: argparse.ArgumentParser) -> None:
    """``--deinterlace`` and ``--scan`` (shared by ``upscale`` and ``submit``)."""
    p.add_argument(
        "--deinterlace",
        choices=["frame", "field", "off"],
        default="frame",
        help="interlaced sources: deinterlace with bwdif at the frame rate (default), at the field "
        "rate (frame rate doubled, e.g. 50i -> 50p), or off; telecined film is inverse-telecined "
        "to 23.976p unless off",
    )
    p.add_argument(
        "--scan",
        choices=["auto", "progressive", "tff", "bff", "telecine"],
        default="auto",
        help="scan type of the source (default auto: stream flag + content detection with idet)",
    )


def _check_output(output: Path, overwrite: bool) -> None:
    if output.exists() and not overwrite:
        raise InputError(f"output {output} already exists", hint="pass --overwrite or choose another -o")
    parent = output.parent if str(output.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"output directory {parent} does not exist", hint="create it first")
    # Try a real file rather than os.access: root passes access checks on read-only mounts.
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise InputError(
            f"output directory {parent} is not writable ({exc.strerror})", hint="choose a writable -o path"
        ) from exc
    check_output_suffix(output)


def run(args: argparse.Namespace, settings: Settings) -> int:
    # Heavy imports (torch, PyAV) here, so `vsrflow --help` stays instant.
    from vsrflow.engine.pipeline import upscale_video
    from vsrflow.engine.upscaler import Upscaler
    from vsrflow.media.assemble import check_video_codec
    from vsrflow.media.probe import probe
    from vsrflow.media.writer import EncoderOptions, check_encoder
    from vsrflow.models.loader import load_model
    from vsrflow.models.registry import resolve
    from vsrflow.models.store import WeightStore

    if args.batch < 1:
        raise InputError(f"--batch {args.batch} must be at least 1")
    store = WeightStore(settings.weights_dir)
    spec = resolve(args.model, args.preset, scale=args.scale, available=store.has)
    source = probe(args.input)
    _check_output(args.output, args.overwrite)
    check_video_codec(args.output, check_encoder(args.codec))
    loaded = load_model(spec, store)
    upscaler = Upscaler(
        loaded.module,
        loaded.descriptor,
        scale=args.scale,
        device=args.device or settings.device,
        precision=args.precision,
        tile=args.tile or None,
        tile_pad=args.tile_pad,
        batch=args.batch,
    )
    encoder = EncoderOptions(codec=args.codec, crf=args.crf, preset=args.preset_x264, pix_fmt=args.pix_fmt)
    result = upscale_video(
        args.input,
        args.output,
        upscaler=upscaler,
        encoder=encoder,
        progress=not args.no_progress and sys.stderr.isatty(),
        ffmpeg=settings.ffmpeg,
        deinterlace=args.deinterlace,
        scan=args.scan,
    )
    out = result.output
    print(
        f"wrote {args.output} with {loaded.provenance}\n"
        f"  input : {source.width}x{source.height}, {source.frame_count} frames, {source.duration:.3f} s\n"
        f"  output: {out.width}x{out.height}, {out.frame_count} frames, {out.duration:.3f} s\n"
        f"  speed : {result.fps:.2f} frames/s over {result.seconds:.1f} s"
    )
    return 0
