"""``vsrflow bench``: model-only vs end-to-end fps, peak memory and FLOP efficiency, as JSON.

The measurement lives in :mod:`vsrflow.bench.speed`; this module parses, obtains the weights the
runs need (the store's first-use import or download), and writes the result file.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path
from typing import Any

from vsrflow.cli.options import add_encoder_preset
from vsrflow.config import Settings
from vsrflow.errors import InputError

#: Results land here by default when run from a checkout (the repo root holds pyproject.toml).
_REPO = Path(__file__).resolve().parents[3]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "bench",
        help="benchmark model-only vs end-to-end speed and peak memory (JSON into bench/results/)",
    )
    p.add_argument(
        "--model", action="append", dest="models", metavar="ID",
        help="model id, repeatable (default: realesr-animevideov3 and RealESRGAN_x4plus)",
    )  # fmt: skip
    p.add_argument(
        "--size", action="append", dest="sizes", metavar="WxH",
        help="clip size, repeatable: bikes.mp4 resized to WxH, every frame kept (default per model)",
    )  # fmt: skip
    p.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (default: VSRFLOW_DEVICE, auto)")
    p.add_argument("--precision", choices=["auto", "fp32", "fp16", "bf16"], default="auto")
    p.add_argument(
        "--frames", type=int, default=None, help="frames per clip before looping (default per model)"
    )
    p.add_argument("--batch", type=int, default=1, help="frames per inference batch (default 1)")
    p.add_argument("--loops", type=int, default=10, help="timed clip = clip looped N times (default 10)")
    p.add_argument("--repeat", type=int, default=2, help="interleaved repeats, best reported (default 2)")
    add_encoder_preset(p, "veryfast", "x264 speed preset of the end-to-end runs (default veryfast)")
    p.add_argument(
        "--out", type=Path, default=None, help="JSON file (default bench/results/upscale-<dev>-<host>.json)"
    )
    p.set_defaults(handler=run)


def _default_out(device: str) -> Path:
    kind = "cuda" if device.startswith("cuda") else "cpu"
    base = _REPO / "bench" / "results" if (_REPO / "pyproject.toml").exists() else Path.cwd()
    return base / f"upscale-{kind}-{(platform.node() or 'host').split('.')[0]}.json"


def run(args: argparse.Namespace, settings: Settings) -> int:
    # Heavy imports (torch via the bench package's children, PyAV) here: `vsrflow --help` stays instant.
    from vsrflow.bench.clips import parse_size
    from vsrflow.bench.speed import BenchConfig, default_case, resolve_device_name, run_benchmark
    from vsrflow.engine.progress import ProgressDisplay
    from vsrflow.models.registry import get_spec
    from vsrflow.models.store import WeightStore

    device = resolve_device_name(args.device or settings.device)
    models = args.models or ["realesr-animevideov3", "RealESRGAN_x4plus"]
    for model in models:
        get_spec(model)  # unknown id -> InputError before any work
    sizes = [parse_size(s) for s in args.sizes] if args.sizes else None
    if args.frames is not None and args.frames < 1:
        raise InputError(f"--frames {args.frames} must be at least 1")
    store = WeightStore.from_settings(settings)
    for model in models:
        store.require(get_spec(model))  # missing weights: obtained now (or exit 2 with the fix)
    cases = []
    for model in models:
        default_size, default_frames = default_case(model, device)
        for size in sizes or [default_size]:
            cases.append((model, size, args.frames or default_frames))
    config = BenchConfig(
        device=device,
        precision=args.precision,
        batch=args.batch,
        loops=args.loops,
        repeat=args.repeat,
        x264_preset=args.encoder_preset,
    )
    display = ProgressDisplay(
        "bench", interval=settings.progress_interval, unit="measurements", enabled=not settings.quiet
    )
    try:
        result = run_benchmark(
            settings, cases, config, repo=_REPO, workdir=settings.cache_dir / "bench", progress=display
        )
    finally:
        display.close()
    out: Path = args.out or _default_out(device)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0
