"""Model endpoint overhead per chunk: the same chunk through an endpoint vs in-process (CPU).

Clip: bikes downscaled /4 (``vsrflow.media.samples.downscale``: 160x68, 25 fps) looped 6 times
into 60 s = 1500 frames (libx264 crf 10), so ONE chunk at the job's default chunk size (60 s).
A small frame size because this runs on CPU: per-frame compute is small, so the endpoint's fixed
costs weigh MORE here than on a GPU with real frame sizes (a conservative ratio).
Model realesr-animevideov3 at x2, job default encoder (libx264 crf 18 preset medium, bf=0 chunks).

Measured, interleaved, ``--repeat`` times, each on a fresh job directory:

* ``inproc``: ``stages.upscale_chunk`` in this process with the model ALREADY loaded (a warm
  ``UpscalerCache``): the pure chunk cost, what a task would pay if loading were free;
* ``endpoint``: ``stages.upscale_chunk`` with the endpoint runner (``vsrflow job upscale-chunk``
  with ``VSRFLOW_ENDPOINT_BASE_PORT`` set), against one CPU endpoint started once;
* overhead = endpoint - inproc (best of each, and medians): end to end, but on a shared 2-core host
  the run-to-run noise is far larger than the overhead; so also the protocol part = client wall -
  the server's own ``run_chunk`` seconds (HTTP, MMS queueing, request parsing, job and manifest
  reads), relative to the chunk's compute: the endpoint runs the very same ``run_chunk``;
* model load: the endpoint loads once (``model_fn``; its ``model_loads`` counter stays 1 over
  every request); an in-process array task loads per task (a fresh ``UpscalerCache`` per process),
  timed here as a cold ``UpscalerCache.get``, plus the endpoint's start-to-ready time.

Usage: ``python bench/bench_endpoint.py [--repeat 3]``; writes ``bench/results/endpoint-<host>.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MODEL = "realesr-animevideov3"
SCALE = 2.0
LOOPS = 6


def _clip(settings: Any, loops: int) -> Path:
    from vsrflow.bench.clips import sample_path
    from vsrflow.media.samples import downscale

    base = settings.cache_dir / "bench" / "bikes_d4.mp4"
    if not base.exists():
        downscale(sample_path(settings, "bikes"), base, 4, ffmpeg=settings.ffmpeg)
    looped = settings.cache_dir / "bench" / f"bikes_d4_x{loops}.mp4"
    if not looped.exists():
        tmp = looped.with_name(f".{looped.name}")
        argv = [
            settings.ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-stream_loop", str(loops - 1), "-i", str(base), "-an",
            "-c:v", "libx264", "-crf", "10", "-pix_fmt", "yuv420p", "-f", "mp4", str(tmp),
        ]  # fmt: skip
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)
        tmp.replace(looped)
    return looped


def _job(root: Path, clip: Path, tag: str) -> Any:
    from vsrflow.workflow.job import stages
    from vsrflow.workflow.job.layout import JobDir
    from vsrflow.workflow.job.spec import JobSpec

    spec = JobSpec(source=str(clip), destination=str(root / f"{tag}.mp4"), model=MODEL, scale=SCALE)
    (root / tag).mkdir()
    job = JobDir.create(root / tag, spec, spec.job_id(f"{clip}:{tag}"))
    stages.extract(job)
    return job


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--loops", type=int, default=LOOPS, help="clip = bikes/4 looped N times (6: 60 s)")
    args = p.parse_args()

    import dataclasses

    import torch

    from vsrflow.bench.machine import device_name, git_commit, host_tag
    from vsrflow.config import EndpointSettings, Settings
    from vsrflow.engine.cache import UpscalerCache
    from vsrflow.media.probe import probe
    from vsrflow.serving.client import endpoint_runner
    from vsrflow.serving.server import Endpoint
    from vsrflow.serving.spec import EndpointSpec
    from vsrflow.workflow.job import stages
    from vsrflow.workflow.job.manifest import ManifestStore

    settings = dataclasses.replace(Settings.from_env(), device="cpu")
    clip = _clip(settings, args.loops)
    info = probe(clip)
    port = 18000 + os.getpid() % 2000

    t0 = time.perf_counter()
    cold = UpscalerCache(settings)
    cold.get(MODEL, SCALE)
    model_load_s = time.perf_counter() - t0
    warm_cache = cold

    runs: dict[str, list[float]] = {"inproc": [], "endpoint": []}
    server_s: list[float] = []
    stats_seen: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="vsr-endpoint-bench-") as tmp:
        root = Path(tmp)
        espec = EndpointSpec(
            model=MODEL, scale=SCALE, device="cpu", cache_dir=settings.cache_dir.resolve(), port=port
        )
        # The bench's jobs (under root) and its clip are the only paths the endpoint may touch.
        roots = os.pathsep.join([str(root.resolve()), str(clip.resolve().parent)])
        endpoint = Endpoint(
            espec, state_dir=root / "endpoint", extra_env={"VSRFLOW_ENDPOINT_ALLOWED_ROOTS": roots}
        )
        t0 = time.perf_counter()
        endpoint.start()
        try:
            warm = endpoint.wait_ready(300)
            ready_s = time.perf_counter() - t0
            eps = dataclasses.replace(settings, endpoint=EndpointSettings(base_port=port))
            base_runner = endpoint_runner(eps, {})

            def runner(job: Any, chunk: Any, output: Path) -> dict[str, Any]:
                stats = base_runner(job, chunk, output)
                stats_seen.append(stats)
                return stats

            for r in range(args.repeat):
                for mode in ("inproc", "endpoint") if r % 2 == 0 else ("endpoint", "inproc"):
                    job = _job(root, clip, f"{mode}{r}")
                    assert ManifestStore(job).load().chunk_count == 1, "the default chunk size covers 60 s"
                    t0 = time.perf_counter()
                    if mode == "inproc":
                        stages.upscale_chunk(job, 0, settings, cache=warm_cache)
                    else:
                        stages.upscale_chunk(job, 0, eps, runner=runner)
                    wall = time.perf_counter() - t0
                    runs[mode].append(wall)
                    if mode == "endpoint":
                        server_s.append(float(stats_seen[-1]["seconds"]))
                    print(f"{mode} r{r}: {wall:.2f} s", file=sys.stderr)
        finally:
            endpoint.stop()

    best = {m: min(v) for m, v in runs.items()}
    med = {m: statistics.median(v) for m, v in runs.items()}
    protocol = [w - s for w, s in zip(runs["endpoint"], server_s, strict=True)]
    result = {
        "benchmark": "endpoint-overhead-per-chunk",
        "schema": 1,
        "device": device_name("cpu"),
        "device_kind": "cpu",
        "torch": torch.__version__,
        "git_commit": git_commit(REPO),
        "date": datetime.date.today().isoformat(),
        "model": MODEL,
        "scale": SCALE,
        "input": {
            "clip": f"bikes downscaled /4 looped {args.loops}x: {info.width}x{info.height}, "
            f"{info.frame_count} frames, {float(info.frame_rate):.3g} fps, {info.duration:.1f} s"
            " (small frames: this ran on CPU)",
            "frames": info.frame_count,
            "chunk": "one chunk: the job default chunk_seconds=60",
        },
        "encoder": {
            "codec": "libx264",
            "crf": 18,
            "preset": "medium",
            "note": "job default; chunks add bf=0",
        },
        "method": {
            "repeat": args.repeat,
            "order": "interleaved (alternating which mode goes first), a fresh job dir per run",
            "inproc": "stages.upscale_chunk in the bench process, model already loaded (warm UpscalerCache)",
            "endpoint": "stages.upscale_chunk with the endpoint runner (HTTP to one CPU endpoint, model "
            "loaded once at its start)",
            "host_load": "2 shared CPU cores, other jobs running: treat small differences as noise",
        },
        "inproc_s": {"best": best["inproc"], "median": med["inproc"], "all": runs["inproc"]},
        "endpoint_s": {"best": best["endpoint"], "median": med["endpoint"], "all": runs["endpoint"]},
        "overhead": {
            "best_s": best["endpoint"] - best["inproc"],
            "best_fraction": (best["endpoint"] - best["inproc"]) / best["inproc"],
            "median_s": med["endpoint"] - med["inproc"],
            "median_fraction": (med["endpoint"] - med["inproc"]) / med["inproc"],
            "protocol_s": {"median": statistics.median(protocol), "all": protocol},
            # Robust to the host's noise: the endpoint runs the same run_chunk code; what it adds is
            # everything outside it (HTTP, MMS queueing, parsing, job/manifest reads).
            "protocol_fraction_of_chunk": statistics.median(
                [x / s for x, s in zip(protocol, server_s, strict=True)]
            ),
            "server_chunk_s": {"median": statistics.median(server_s), "all": server_s},
            "target_fraction": 0.02,
        },
        "model_load": {
            "endpoint_loads": stats_seen[-1]["model_loads"] if stats_seen else None,
            "endpoint_requests_served": stats_seen[-1]["requests"] if stats_seen else None,
            "endpoint_start_to_ready_s": ready_s,
            "endpoint_ping_s": warm.ping_seconds,
            "endpoint_first_invocation_s": warm.first_invocation_seconds,
            "inproc_model_load_per_task_s": model_load_s,
            "note": "an in-process array task pays the model load (and torch import) in every task; "
            "an endpoint pays it once",
        },
    }
    dest = REPO / "bench" / "results" / f"endpoint-{host_tag()}.json"
    dest.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("inproc_s", "endpoint_s", "overhead", "model_load")}, indent=2))


if __name__ == "__main__":
    main()
