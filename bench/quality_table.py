"""Rerunnable: measure the quality table and write docs/quality.md + bench/results/quality-<host>.json.

Usage::

    python bench/quality_table.py [--frames 24] [--hd-frames 12] [--clips bikes ...]
    python bench/quality_table.py --render-only   # rewrite docs from the saved JSON and frames

The logic lives in :mod:`vsrflow.bench.quality` (measurement) and
:mod:`vsrflow.bench.quality_report` (Markdown and the side-by-side picture); this file only wires
paths. About 15 minutes on 2 CPU cores with the defaults.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from vsrflow.bench.machine import device_name, git_commit, host_tag
from vsrflow.bench.quality import CLIPS, MODELS, run_table
from vsrflow.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", nargs="+", default=list(CLIPS), choices=list(CLIPS))
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--frames", type=int, default=24, help="consecutive frames per clip, centred")
    parser.add_argument("--hd-frames", type=int, default=8, help="frames for clips above 640x480")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=None, help="results file (default per host)")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "quality.md")
    parser.add_argument("--picture", type=Path, default=ROOT / "docs" / "img" / "quality-bikes-x4.png")
    parser.add_argument("--render-only", action="store_true", help="rewrite docs from --json and frames")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    settings = Settings.from_env()
    workdir = settings.cache_dir / "bench" / "quality"
    json_path = args.json or ROOT / "bench" / "results" / f"quality-{host_tag()}.json"
    if not args.render_only:
        t0 = time.perf_counter()
        result = run_table(
            settings,
            clips=args.clips,
            models=args.models,
            frames=args.frames,
            hd_frames=args.hd_frames,
            device=args.device,
            workdir=workdir,
            picture_dir=workdir / "picture",
        )
        import torch

        result.update(
            {
                "script_seconds": time.perf_counter() - t0,
                "machine": device_name(args.device),
                "torch": torch.__version__,
                "git_commit": git_commit(ROOT),
                "date": time.strftime("%Y-%m-%d"),
                "results_file": json_path.relative_to(ROOT).as_posix()
                if json_path.is_relative_to(ROOT)
                else str(json_path),
                "command": "python bench/quality_table.py "
                f"--frames {args.frames} --hd-frames {args.hd_frames}",
            }
        )
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {json_path} ({result['script_seconds']:.0f} s)")
    # Imported late: a rendering bug must not cost the measurement (rerun with --render-only).
    from vsrflow.bench.quality_report import render

    result = json.loads(json_path.read_text())
    render(result, doc=args.doc, picture=args.picture, picture_frames=workdir / "picture", root=ROOT)
    print(f"wrote {args.doc} and {args.picture}")


if __name__ == "__main__":
    main()
