"""What conditioning costs on the CPU: decode + filters + RGB conversion, frames per second.

Generates SD clips with ffmpeg (tests/mediagen.make_legacy): 576i MPEG-2 (woven 25i, TFF, 720x576)
and 3:2 telecined 480i MPEG-2 (29.97i, 720x480); reads every frame through
``vsrflow.media.reader.FrameReader`` with each conditioning (none, bwdif at the frame rate, bwdif
at the field rate, inverse telecine) and, on the 576i clip, each pre-filter after bwdif (deblock,
nlmeans and atadenoise at two strengths, crop, square pixels, the whole ``--prefilter sd`` chain),
best of ``--repeat``; the model is not run (its cost is in docs/performance.md). fps counts OUTPUT
frames (field rate: twice the source frames; IVTC: 4/5).

Usage: ``python bench/bench_conditioning.py [--frames 100] [--repeat 3]``; writes
``bench/results/conditioning-<host>.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from tests.mediagen import make_legacy  # noqa: E402

from vsrflow.bench.machine import cpu_name, git_commit, host_tag  # noqa: E402
from vsrflow.media.condition import Conditioning  # noqa: E402
from vsrflow.media.probe import probe  # noqa: E402
from vsrflow.media.reader import FrameReader  # noqa: E402

#: Pre-filters on 720x576 (conditioning text of :mod:`vsrflow.media.condition`); square pixels at
#: SAR 16:15 (4:3 PAL): 720 -> 768, the sd chain's 704 crop -> 750.
PREFILTERS = [
    "deblock=weak",
    "deblock=strong",
    "denoise=nlmeans:light",
    "denoise=nlmeans:strong",
    "denoise=atadenoise:light",
    "denoise=atadenoise:strong",
    "crop=704:560:8:8:manual",
    "square=768:16/15",
    "deblock=weak;denoise=nlmeans:light;crop=704:560:8:8:auto;square=750:16/15",
]
CASES = [
    (
        "interlaced-tff",
        (720, 576),
        ["none", "bwdif:tff", "bwdif-field:tff", *(f"bwdif:tff;{p}" for p in PREFILTERS)],
    ),
    ("telecine", (720, 480), ["none", "ivtc:tff"]),
]


def _read(path: Path, mode: str) -> tuple[int, float]:
    info = probe(path)
    t0 = time.perf_counter()
    with FrameReader(path, info, Conditioning.from_text(mode)) as reader:
        frames = sum(1 for _ in reader)
    return frames, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind, size, modes in CASES:
            src = make_legacy(Path(tmp) / f"{kind}.mpg", kind, size=size, frames=args.frames)
            for mode in modes:
                best = min((_read(src, mode) for _ in range(args.repeat)), key=lambda r: r[1])
                frames, seconds = best
                rows.append(
                    {"source": f"{kind} {size[0]}x{size[1]}", "conditioning": mode,
                     "frames_out": frames, "seconds": round(seconds, 3), "fps": round(frames / seconds, 1)}
                )  # fmt: skip
                print(f"{kind:15s} {mode:40s} {frames:4d} frames {frames / seconds:7.1f} fps")
    result = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count()},
        "commit": git_commit(REPO),
        "note": "decode + filters + RGB conversion, no model; best of --repeat",
        "rows": rows,
    }
    out = REPO / "bench" / "results" / f"conditioning-{host_tag()}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
