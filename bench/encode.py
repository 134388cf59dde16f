"""CPU encoder speed at 4K: libx264/libx265, presets, thread counts, through vsrflow's own writer.

What the chunk encoder costs on the CPUs of a node, to size CPU cores per GPU in the cluster
templates: frames per second of :class:`vsrflow.media.writer.FrameWriter` (RGB -> YUV conversion
and the encoder, as the pipeline runs them) on 3840x2160 frames, crf 18, yuv420p.

Input: a bikes.mp4 frame (real footage; the test samples cache) resized to 4K and panned by a few
pixels per frame, so motion estimation has real work; without the sample, a generated pattern.
Frames are made before the clock starts; the timed part is ``write`` of every frame plus
``close`` (the encoder's flush of its lookahead). Each configuration stops after ``--max-seconds``
(the frames done so far and the flush are counted), so slow presets cannot eat the run.

Usage: ``python bench/encode.py [--frames 30] [--threads 0,1]`` -> bench/results/encode-<host>.json
(threads 0 = the encoder's automatic choice, i.e. all cores).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SIZE = (3840, 2160)


def _frames(n: int, settings: Any) -> tuple[list[Any], str]:
    import cv2
    import numpy as np

    w, h = SIZE
    bikes = settings.cache_dir / "samples" / "bikes.mp4"
    base = None
    if bikes.exists():
        from vsrflow.media.reader import FrameReader

        with FrameReader(bikes) as reader:
            base = next(iter(reader)).image
        source = "bikes.mp4 frame 0 resized to 3840x2160 (bicubic), panned 4 px/frame"
    if base is None:
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([(xx * 255 // w), (yy * 255 // h), ((xx ^ yy) & 255)], axis=-1).astype(np.uint8)
        source = "generated gradient/XOR pattern 3840x2160, panned 4 px/frame"
    big = (
        cv2.resize(base, (w + 4 * n, h), interpolation=cv2.INTER_CUBIC) if base.shape[:2] != (h, w) else base
    )
    if big.shape[1] < w + 4 * n:
        big = np.pad(big, ((0, 0), (0, w + 4 * n - big.shape[1]), (0, 0)), mode="reflect")
    return [np.ascontiguousarray(big[:, 4 * i : 4 * i + w]) for i in range(n)], source


def _source_info() -> Any:
    """A 4K, 24 fps, 8-bit BT.709 limited-range source description for the writer."""
    from fractions import Fraction

    from vsrflow.media.info import VideoInfo

    return VideoInfo(
        path=Path("generated"), container="none", width=SIZE[0], height=SIZE[1],
        frame_rate=Fraction(24), avg_frame_rate=Fraction(24), time_base=Fraction(1, 24),
        frame_count=0, duration=0.0, start_pts=0, sar=Fraction(1), rotation=0, pix_fmt="yuv420p",
        bit_depth=8, color_primaries="bt709", color_transfer="bt709", color_matrix="bt709",
        color_range="tv", is_vfr=False, video_stream_index=0, streams=(), chapters=0,
        last_frame_duration=1,
    )  # fmt: skip


def measure(
    codec: str, preset: str, threads: int, frames: list[Any], info: Any, max_seconds: float
) -> dict[str, Any]:
    from vsrflow.media.writer import EncoderOptions, FrameWriter

    opts = EncoderOptions(codec=codec, crf=18, preset=preset, threads=threads)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "out.nut"
        writer = FrameWriter(path, width=SIZE[0], height=SIZE[1], source=info, options=opts)
        writer.open()
        t0 = time.perf_counter()
        done = 0
        for i, f in enumerate(frames):
            writer.write(f, i)
            done += 1
            if time.perf_counter() - t0 > max_seconds:
                break
        writer.close()
        secs = time.perf_counter() - t0
        size = path.stat().st_size
    return {
        "codec": codec, "preset": preset, "threads": threads, "frames": done, "seconds": secs,
        "fps": done / secs, "bytes_per_frame": size / done, "stopped_early": done < len(frames),
    }  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--codecs", default="libx264,libx265")
    p.add_argument("--presets", default="veryfast,medium")
    p.add_argument("--threads", default="0,1", help="comma list; 0 = encoder's automatic choice (all cores)")
    p.add_argument("--max-seconds", type=float, default=90.0, help="stop one configuration after this")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()

    from vsrflow.bench.machine import cpu_name, git_commit, host_tag, peak_rss_mb
    from vsrflow.config import Settings

    settings = Settings.from_env()
    frames, source = _frames(a.frames, settings)
    info = _source_info()
    runs = []
    for codec in a.codecs.split(","):
        for preset in a.presets.split(","):
            for threads in (int(t) for t in a.threads.split(",")):
                r = measure(codec, preset, threads, frames, info, a.max_seconds)
                print(
                    f"{codec} {preset} threads={threads}: {r['fps']:.2f} fps ({r['frames']} frames)",
                    flush=True,
                )
                runs.append(r)
    doc = {
        "benchmark": "encode-4k",
        "schema": 1,
        "machine": {
            "cpu": cpu_name(),
            "cpu_count": os.cpu_count(),
            "host": host_tag(),
            "load_average_1m_at_end": os.getloadavg()[0],
        },
        "git_commit": git_commit(REPO),
        "date": time.strftime("%Y-%m-%d"),
        "input": f"{source}; {a.frames} frames, crf 18, yuv420p, FrameWriter -> .nut",
        "method": f"frames made before timing; write + close timed; stop after {a.max_seconds} s per config",
        "peak_rss_mb": peak_rss_mb(),
        "runs": runs,
    }
    out = a.out or REPO / "bench" / "results" / f"encode-{host_tag()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
