"""Rerunnable: the guard and colour-fix measurements on footage, anime, graphics and flat patches.

Usage::

    python bench/content_quality.py [--models SPAN_x2_ch48 ...] [--frames 2]
    python bench/content_quality.py --render-only   # rewrite the docs section from the saved JSON

Writes bench/results/content-quality-<host>.json (with the machine) and the section of
docs/quality.md after its content-quality marker (bench/quality_table.py keeps that section).
The logic lives in :mod:`vsrflow.bench.content`.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from vsrflow.bench.content import (
    auto_cases,
    guarded_scores,
    measure,
    overhead,
    replace_section,
    section_markdown,
)
from vsrflow.bench.machine import device_name, git_commit, host_tag
from vsrflow.config import Settings

ROOT = Path(__file__).resolve().parent.parent
MODELS = [
    "SPAN_x2_ch48",
    "SPAN_x4_ch48",
    "realesr-animevideov3",
    "RealESRGAN_x4plus_anime_6B",
    "RealESRGAN_x4plus",
]
#: Too slow on a CPU for every pattern (36 MFLOP per input pixel): footage, anime, testsrc2, flat only.
SLOW = ["RealESRGAN_x4plus"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--frames", type=int, default=2, help="frames per clip / anime seeds")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=None, help="results file (default per host)")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "quality.md")
    parser.add_argument("--render-only", action="store_true")
    parser.add_argument("--auto-only", action="store_true", help="re-measure only the auto preset's choices")
    parser.add_argument("--guarded-only", action="store_true", help="re-measure only the guarded outputs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    settings = Settings.from_env()
    json_path = args.json or ROOT / "bench" / "results" / f"content-quality-{host_tag()}.json"
    if args.guarded_only:
        result = json.loads(json_path.read_text())
        guarded_scores(settings, result)
        json_path.write_text(json.dumps(result, indent=2) + "\n")
    elif args.auto_only:
        result = json.loads(json_path.read_text())
        result["auto"] = auto_cases(settings, settings.cache_dir / "bench" / "content")
        json_path.write_text(json.dumps(result, indent=2) + "\n")
    elif not args.render_only:
        import dataclasses

        import torch

        settings = dataclasses.replace(settings, device=args.device)
        t0 = time.perf_counter()
        result = measure(settings, args.models, device=args.device, frames=args.frames, slow_models=SLOW)
        guarded_scores(settings, result)
        result["overhead"] = [overhead(settings, "SPAN_x2_ch48")]
        result["auto"] = auto_cases(settings, settings.cache_dir / "bench" / "content")
        result.update(
            {
                "benchmark": "content-quality",
                "script_seconds": time.perf_counter() - t0,
                "machine": device_name(args.device),
                "torch": torch.__version__,
                "git_commit": git_commit(ROOT),
                "date": time.strftime("%Y-%m-%d"),
                "results_file": json_path.relative_to(ROOT).as_posix()
                if json_path.is_relative_to(ROOT)
                else str(json_path),
                "command": f"python bench/content_quality.py --frames {args.frames}",
            }
        )
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {json_path} ({result['script_seconds']:.0f} s)")
    result = json.loads(json_path.read_text())
    args.doc.write_text(replace_section(args.doc.read_text(), section_markdown(result)))
    print(f"wrote {args.doc}")


if __name__ == "__main__":
    main()
