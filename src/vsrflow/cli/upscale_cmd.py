"""``vsrflow upscale INPUT -o OUTPUT``: the main job on one machine."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path
from typing import Any

from vsrflow.cli.options import add_accept_damaged, add_encoder_preset
from vsrflow.config import Settings
from vsrflow.errors import InputError
from vsrflow.formats import check_output_suffix


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be >= 0")
    return value


def add_quality_arguments(p: argparse.ArgumentParser) -> None:
    """``--on-artifact`` and ``--colour-fix``: shared by ``upscale`` and ``submit`` (one meaning)."""
    from vsrflow.engine.quality import COLOUR_FIX, ON_ARTIFACT

    p.add_argument(
        "--on-artifact",
        choices=ON_ARTIFACT,
        default="fallback",
        help="a frame whose model output blows up (sanity guard, always on): fallback = redo it with "
        "the preset's fallback model (bicubic without one), fail = fail naming the frames, keep = keep "
        "it with a warning (default fallback)",
    )
    p.add_argument(
        "--fallback-model",
        default=None,
        metavar="MODEL",
        help="model that redoes blown-up frames (default: the preset's; none with --model: bicubic)",
    )
    p.add_argument(
        "--colour-fix",
        choices=COLOUR_FIX,
        default=None,
        help="keep the source's low-frequency colour in the output (wavelet or gaussian low-pass); "
        "default: the preset's choice (gaussian for anime and live-action, off for fidelity and --model)",
    )


def pick_auto_preset(args: argparse.Namespace) -> None:
    """``--preset auto``: replace it with the preset the input's content calls for (logged)."""
    if args.preset != "auto":
        return
    import logging

    from vsrflow.media.content import classify
    from vsrflow.models.registry import CONTENT_PRESETS

    guess = classify(args.input)
    args.preset = CONTENT_PRESETS[guess.kind]
    logging.getLogger("vsrflow").info(
        "preset auto: %s looks like %s (flatness %.2f over %d sampled frames): preset %s",
        args.input, guess.kind, guess.flatness, len(guess.per_frame), args.preset,
    )  # fmt: skip


def quality_options(args: argparse.Namespace, spec: Any, settings: Settings) -> Any:
    """The run's QualityOptions: the flags, the preset's fallback model and colour-fix default."""
    from vsrflow.engine.quality import QualityOptions
    from vsrflow.models.registry import preset_colour_fix, resolve_fallback
    from vsrflow.models.store import WeightStore

    preset = "" if args.model is not None else args.preset
    fallback = None
    if args.on_artifact == "fallback" and args.fallback_model is not None:
        from vsrflow.models.registry import get_spec

        fallback = get_spec(args.fallback_model).id  # an unknown id is refused now, not on a tripped frame
    elif args.on_artifact == "fallback":
        found = resolve_fallback(
            preset, spec, scale=args.scale, available=WeightStore(settings.weights_dir).has
        )
        fallback = None if found is None else found.id
    colour_fix = args.colour_fix or preset_colour_fix(preset)
    return QualityOptions(on_artifact=args.on_artifact, fallback=fallback, colour_fix=colour_fix)


def register(sub: Any) -> None:
    p = sub.add_parser("upscale", help="upscale one video; every frame, track and timestamp kept")
    p.add_argument(
        "input",
        type=Path,
        help="source video (any container/codec ffmpeg reads), an image, or a folder of images",
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="output video (.mp4, .mkv, .mov), image (.png keeps 16 bits), or a folder (for a folder)",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--model", help="model id (see `vsrflow models list`) or a path to a .pth weight file")
    which.add_argument(
        "--preset",
        help="content preset: anime, live-action, fidelity, or auto (anime for cartoons and graphics, "
        "fidelity for footage, judged from sampled frames) (default: fidelity)",
    )
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
        help="inference precision (auto: fp16 on CUDA, bf16 for models that overflow fp16, fp32 on CPU)",
    )
    p.add_argument(
        "--batch",
        default="auto",
        metavar="N|auto",
        help="frames per inference batch (default auto: from free GPU memory on CUDA, 1 on CPU)",
    )
    p.add_argument(
        "--codec",
        default="libx264",
        help="video encoder (default libx264; auto: h264_nvenc where the GPU has NVENC, else libx264; "
        "h264_nvenc/hevc_nvenc fall back to libx264/libx265 with a warning where NVENC cannot run)",
    )
    p.add_argument("--crf", type=int, default=18, help="encoder CRF (default 18)")
    add_encoder_preset(p, "medium", "x264/x265 speed preset, e.g. veryfast, slow (default medium)")
    p.add_argument(
        "--pix-fmt",
        default=None,
        help="output pixel format (default: yuv420p for 8-bit, yuv420p10le for 10-bit sources)",
    )
    add_quality_arguments(p)
    add_conditioning_args(p)
    add_accept_damaged(p)
    preview = p.add_mutually_exclusive_group()
    preview.add_argument(
        "--frames", default=None, metavar="A:B",
        help="preview: upscale only frames A..B-1 (frame-exact; audio cut to match, no subtitles)",
    )  # fmt: skip
    preview.add_argument(
        "--start", type=float, default=None, metavar="T", help="preview: from T seconds (with --duration)"
    )
    p.add_argument(
        "--duration", type=float, default=None, metavar="D", help="preview: D seconds from --start"
    )
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.add_argument(
        "--no-progress", action="store_true", help="no progress bar or progress lines (see also --quiet)"
    )
    p.set_defaults(handler=run)


def add_conditioning_args(p: argparse.ArgumentParser) -> None:
    """``--deinterlace``, ``--scan``, ``--video-stream`` and the pre-filters (shared by ``upscale``
    and ``submit``)."""
    from vsrflow.media import prefilter as pf

    p.add_argument(
        "--video-stream",
        type=_positive_int,
        default=None,
        metavar="N",
        help="a source with several video streams: upscale stream N (its index in `vsrflow probe`'s "
        "streams); the other video streams are not carried (cover art is). Without it such a "
        "source is refused",
    )
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
    p.add_argument(
        "--prefilter",
        choices=tuple(pf.PRESETS),
        default="off",
        help="pre-filter preset: sd = denoise nlmeans light, deblock weak, crop auto, square pixels "
        "(legacy SD sources); the options below override it (default off)",
    )
    p.add_argument(
        "--denoise",
        choices=pf.DENOISE_FILTERS,
        default=None,
        help="denoise before the model: nlmeans (spatial) or atadenoise (temporal) (default off)",
    )
    p.add_argument(
        "--denoise-strength", choices=pf.STRENGTHS, default=None, help="denoise level (default light)"
    )
    p.add_argument(
        "--deblock", choices=pf.DEBLOCK_LEVELS, default=None, help="remove 8x8 block edges (default off)"
    )
    p.add_argument(
        "--crop",
        type=_crop_value,
        default=None,
        metavar="auto|off|W:H:X:Y",
        help="crop black borders / overscan: auto (cropdetect, decided once per source) or a rectangle "
        "of even values in source pixels (default off)",
    )
    p.add_argument(
        "--square-pixels",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="resample an anamorphic picture (SAR not 1:1) to square pixels: height kept, width "
        "W*SAR rounded to even, output SAR 1:1 (default off)",
    )


def _crop_value(text: str) -> str:
    """``--crop``'s argparse type: checked here so a bad value is a usage error (exit 2)."""
    from vsrflow.media.prefilter import parse_crop

    try:
        parse_crop(text)
    except InputError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def prefilter_request(args: argparse.Namespace) -> Any:
    """The :class:`~vsrflow.media.prefilter.PrefilterRequest` of the parsed pre-filter options."""
    from vsrflow.media.prefilter import PrefilterRequest

    square = None if args.square_pixels is None else ("on" if args.square_pixels else "off")
    return PrefilterRequest(
        preset=args.prefilter,
        denoise=args.denoise,
        strength=args.denoise_strength,
        deblock=args.deblock,
        crop=args.crop,
        square_pixels=square,
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
    from vsrflow.engine.batching import auto_batch_for, parse_batch
    from vsrflow.engine.cache import UpscalerCache
    from vsrflow.engine.device import auto_precision, resolve_device
    from vsrflow.engine.pipeline import upscale_video
    from vsrflow.engine.progress import ProgressDisplay
    from vsrflow.engine.upscaler import Upscaler
    from vsrflow.media.assemble import check_streams, check_video_codec
    from vsrflow.media.encoders import resolve_codec
    from vsrflow.media.probe import probe
    from vsrflow.media.writer import EncoderOptions, check_encoder
    from vsrflow.models.loader import load_model
    from vsrflow.models.registry import resolve
    from vsrflow.models.store import WeightStore

    try:
        batch = parse_batch(args.batch)
    except ValueError:
        raise InputError(
            f"--batch {args.batch!r} is not a positive integer or auto", hint="use --batch auto or e.g. 4"
        ) from None
    pick_auto_preset(args)
    store = WeightStore.from_settings(settings)
    spec = resolve(args.model, args.preset, scale=args.scale, available=store.has)
    images = _image_pairs(args.input, args.output, args.overwrite)
    codec = args.codec
    streams = None
    if images is None:
        source = probe(args.input, args.video_stream, accept_damaged=args.accept_damaged)
        _check_output(args.output, args.overwrite)
        codec = resolve_codec(args.codec, settings.ffmpeg)
        check_video_codec(args.output, check_encoder(codec))
        # Every stream the final mux would fail on is refused now, before the model is loaded.
        streams = check_streams(source, args.output, video_stream=args.video_stream, ffmpeg=settings.ffmpeg)
    loaded = load_model(spec, store)
    quality = quality_options(args, spec, settings)
    device = resolve_device(args.device or settings.device)
    precision = args.precision if args.precision != "auto" else auto_precision(spec.id, device)
    # The guard's fallback loads through the cache the chunk stages use: one code path.
    guard = UpscalerCache(dataclasses.replace(settings, device=str(device))).guard(
        quality, args.scale or spec.scale
    )
    upscaler = Upscaler(
        loaded.module,
        loaded.descriptor,
        scale=args.scale,
        device=str(device),
        precision=precision,
        tile=args.tile or None,
        tile_pad=args.tile_pad,
        batch=batch or 1,
        guard=guard,
        colour_fix=quality.colour_fix,
    )
    if images is not None:
        if prefilter_request(args).any_on:
            print(
                "vsrflow: warning: pre-filters apply to videos; images are upscaled as they are",
                file=sys.stderr,
            )
        return _upscale_images(images, upscaler, loaded.provenance, args, settings)
    if batch is None:
        upscaler.batch, _ = auto_batch_for(upscaler, source.height, source.width)
    damage = source.damage  # of the input as given (a preview slice is a new, whole file)
    encoder = EncoderOptions(codec=codec, crf=args.crf, preset=args.encoder_preset, pix_fmt=args.pix_fmt)
    # A bar on a terminal; a plain line every VSRFLOW_PROGRESS_INTERVAL seconds in a log or pipe.
    display = ProgressDisplay(
        f"upscale {args.input.name}",
        interval=settings.progress_interval,
        enabled=not (args.no_progress or settings.quiet),
    )
    try:
        with tempfile.TemporaryDirectory(dir=args.output.parent, prefix=f".{args.output.name}.") as tmp:
            clip, video_stream = args.input, args.video_stream
            if args.frames is not None or args.start is not None or args.duration is not None:
                clip = _preview_slice(args, source, Path(tmp), settings)
                source = probe(clip)
                streams, video_stream = None, None  # the slice holds the chosen video and its audio
            result = upscale_video(
                clip,
                args.output,
                upscaler=upscaler,
                encoder=encoder,
                progress=display,
                ffmpeg=settings.ffmpeg,
                deinterlace=args.deinterlace,
                scan=args.scan,
                accept_damaged=args.accept_damaged,
                video_stream=video_stream,
                streams=streams,
                prefilter=prefilter_request(args),
            )
    finally:
        display.close()
    out = result.output
    from vsrflow.media.sidecar import Provenance, write_sidecar
    from vsrflow.models.registry import DEFAULT_PRESET

    sidecar = write_sidecar(
        args.output,
        Provenance(
            model=loaded.provenance,
            model_id=spec.id,
            preset=None if args.model is not None else (args.preset or DEFAULT_PRESET),
            scale=float(args.scale or spec.scale),
            colour_fix=quality.colour_fix,
            on_artifact=quality.on_artifact,
            guard=result.guard.to_json(),
            input=str(args.input),
            frames=out.frame_count,
            damage=None if damage is None else damage.to_json(),
            conditioning=result.conditioning.to_json(),
        ),
    )
    print(
        f"wrote {args.output} with {loaded.provenance} (provenance: {sidecar.name})\n"
        f"  input : {source.width}x{source.height}, {source.frame_count} frames, {source.duration:.3f} s\n"
        f"  output: {out.width}x{out.height}, {out.frame_count} frames, {out.duration:.3f} s\n"
        f"  speed : {result.fps:.2f} frames/s over {result.seconds:.1f} s (batch {upscaler.batch})\n"
        f"  guard : {result.guard.summary()} (--on-artifact {quality.on_artifact})\n"
        f"  colour: colour fix {quality.colour_fix}\n"
        f"  before: {result.conditioning.describe()}"
        + (f"\n  damage: input cut short, {damage.describe()} (--accept-damaged)" if damage else "")
    )
    return 0


def _image_pairs(source: Path, output: Path, overwrite: bool) -> list[tuple[Path, Path]] | None:
    """(input image, output image) pairs when ``source`` is an image or a folder; None for a video.

    A folder goes to a folder (created; same file names); one image to one image file. Existing
    outputs need ``overwrite``; a folder is never written into itself.
    """
    from vsrflow.media.images import is_image, list_images

    if source.is_dir():
        if output.exists() and not output.is_dir():
            raise InputError(f"output {output} is a file; a folder of images goes to a folder", hint="-o DIR")
        if output.resolve() == source.resolve():
            raise InputError("the output folder is the input folder", hint="choose another -o DIR")
        pairs = [(p, output / p.name) for p in list_images(source)]
    elif is_image(source):
        if not is_image(output):
            raise InputError(
                f"output {output}: an image input writes an image",
                hint="e.g. -o big.png (or .jpg, .webp, .tif)",
            )
        pairs = [(source, output)]
    else:
        return None
    taken = [out for _, out in pairs if out.exists()]
    if taken and not overwrite:
        raise InputError(f"output {taken[0]} already exists", hint="pass --overwrite or choose another -o")
    return pairs


def _upscale_images(
    pairs: list[tuple[Path, Path]],
    upscaler: Any,
    provenance: str,
    args: argparse.Namespace,
    settings: Settings,
) -> int:
    """Upscale each image (bit depth and alpha kept: :mod:`vsrflow.media.images`); one line per image."""
    import time

    from vsrflow.engine.progress import ProgressDisplay
    from vsrflow.media.images import Image, read_image, resize_plane, write_image

    if len(pairs) > 1:
        pairs[0][1].parent.mkdir(parents=True, exist_ok=True)
    display = ProgressDisplay(
        "upscale", interval=settings.progress_interval, unit="images",
        enabled=len(pairs) > 1 and not (args.no_progress or settings.quiet),
    )  # fmt: skip
    t0 = time.monotonic()
    try:
        for done, (src, dst) in enumerate(pairs, 1):
            image = read_image(src)
            rgb = upscaler.upscale_frames(image.rgb[None])[0]
            alpha = None if image.alpha is None else resize_plane(image.alpha, rgb.shape[:2])
            write_image(dst, Image(rgb, alpha, image.gray))
            h, w = image.rgb.shape[:2]
            print(f"wrote {dst}: {w}x{h} -> {rgb.shape[1]}x{rgb.shape[0]}, {image.bits}-bit")
            display(done, len(pairs))
    finally:
        display.close()
    print(f"{len(pairs)} image(s) with {provenance} in {time.monotonic() - t0:.1f} s")
    return 0


def _preview_slice(args: argparse.Namespace, source: Any, tmp: Path, settings: Settings) -> Path:
    """Cut the ``--frames``/``--start``/``--duration`` slice of the input into ``tmp`` (lossless)."""
    from vsrflow.media.keyframes import scan_frames
    from vsrflow.media.preview import cut_slice, frame_range

    if args.start is not None and args.start < 0:
        raise InputError(f"--start {args.start} must be >= 0 seconds")
    if args.duration is not None and not args.duration > 0:
        raise InputError(f"--duration {args.duration} must be > 0 seconds")
    if args.frames is not None and args.duration is not None:
        raise InputError(
            "--duration goes with --start, not with --frames", hint="--frames A:B or --start T --duration D"
        )
    pts = None if args.frames is not None else scan_frames(args.input, args.video_stream).pts
    start, end = frame_range(source, args.frames, args.start, args.duration, pts)
    print(f"preview: frames {start}..{end - 1} of {source.frame_count}", file=sys.stderr)
    return cut_slice(args.input, tmp / "preview.mkv", source, start, end, ffmpeg=settings.ffmpeg)
