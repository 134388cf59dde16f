"""Wall time of one fixed chunked job on the local Slurm emulator with 1, 2 and 4 GPU nodes.

The job: bikes downscaled /4 (160x68, 250 frames, 10 s; the clip of ``bench_chunks.py``),
realesr-animevideov3 at x2, libx264, 25-frame chunks (10 array tasks), submitted with
``vsrflow submit --executor slurm``. For each node count a fresh emulator (``slurm/emulator``,
one fake GPU per node, free ports, its own state dir) runs the whole chain: extract, the upscale
array (``--array=0-9%8``, one task per GPU at a time through ``--gres=gpu:1``), encode, finalize.

Reported per node count: wall time from submit to ``done`` (polling the manifest every 0.2 s),
the chunk records' own timings (sum of per-chunk seconds, the largest number of chunks that ran
at once, the span from first chunk start to last chunk finish) and the speed-up over one node.

READ THE RESULT WITH THE MACHINE IN MIND: emulated nodes are processes on this host. On a 2-core
machine, 2 or 4 "GPU nodes" share the same 2 cores. By default each task's torch uses every core
(as it would on its own node), so N tasks at once oversubscribe the host; ``--threads-per-task 1``
sets OMP_NUM_THREADS=1 so the chain's parallelism shows without that thrashing. Neither is GPU
scaling: on a real cluster each task has its own GPU.

Usage: ``python bench/bench_nodes.py [--nodes 1 2 4] [--threads-per-task 1 --tag -1thread]``;
writes ``bench/results/nodes-<host><tag>.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
EMU = REPO / "slurm" / "emulator"
MODEL = "realesr-animevideov3"
SCALE = "2"
CHUNK_FRAMES = 25
SEARCH_PATH = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", ""), "/usr/sbin"])


def _free_port_block(count: int) -> int:
    """A base port with ``count`` consecutive free ports on 127.0.0.1."""
    for base in range(20000, 60000, 97):
        ok = True
        for port in range(base, base + count):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free port block")


def _emulator_env(state: Path, gpu_nodes: int, threads: int | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SQUEUE_"))}
    env.update(
        SLURM_EMU_STATE_DIR=str(state),
        SLURM_EMU_CTLD_PORT=str(base := _free_port_block(2 + gpu_nodes)),
        SLURM_EMU_SLURMD_PORT=str(base + 1),
        SLURM_EMU_CPU_NODES="1",
        SLURM_EMU_GPU_NODES=str(gpu_nodes),
        SLURM_EMU_GPUS_PER_NODE="1",
        SLURM_EMU_CPUS_PER_NODE="4",
        SLURM_EMU_TIMEOUT="60",
        SLURM_EMU_FRESH="1",
        PATH=SEARCH_PATH,
        VSRFLOW_LOG_LEVEL="WARNING",
    )
    env.pop("VSRFLOW_DEVICE", None)
    if threads is not None:
        # Emulated nodes share this host's cores: one torch/OpenMP thread per task keeps N tasks
        # from oversubscribing them (a real node has its own cores and GPU).
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def _run_one(gpu_nodes: int, clip: Path, tmp: Path, threads: int | None) -> dict[str, Any]:
    from vsrflow.workflow.job.layout import JobDir
    from vsrflow.workflow.job.manifest import JobState, ManifestStore

    state, root = tmp / f"state{gpu_nodes}", tmp / f"jobs{gpu_nodes}"
    root.mkdir()
    env = _emulator_env(state, gpu_nodes, threads)
    run: dict[str, Any] = {"capture_output": True, "text": True, "stdin": subprocess.DEVNULL, "check": False}
    start = subprocess.run(["bash", str(EMU / "start.sh")], env=env, timeout=120, **run)
    if start.returncode != 0:
        sys.exit(f"emulator start failed:\n{start.stdout}\n{start.stderr}")
    env["SLURM_CONF"] = str(state / "etc" / "slurm.conf")
    try:
        out = tmp / f"out{gpu_nodes}.mp4"
        argv = [
            sys.executable, "-m", "vsrflow", "submit", str(clip), "-o", str(out), "--model", MODEL,
            "--scale", SCALE, "--executor", "slurm", "--jobs-root", str(root),
            "--chunk-frames", str(CHUNK_FRAMES), "--array-throttle", "8",
        ]  # fmt: skip
        t0 = time.monotonic()
        proc = subprocess.run(argv, env=env, timeout=120, **run)
        if proc.returncode != 0:
            sys.exit(f"submit failed:\n{proc.stderr}")
        (job_path,) = [p for p in root.iterdir() if p.is_dir()]
        store = ManifestStore(JobDir.open(root, job_path.name))
        deadline = t0 + 1800
        while True:
            manifest = store.load() if store.exists() else None
            if manifest is not None and manifest.state in (JobState.DONE, JobState.FAILED):
                break
            if time.monotonic() > deadline:
                sys.exit(f"{gpu_nodes} nodes: job not finished after 1800 s")
            time.sleep(0.2)
        wall = time.monotonic() - t0
        if manifest.state is not JobState.DONE:
            sys.exit(f"{gpu_nodes} nodes: job failed: {manifest.reason}")
        records = manifest.records
        starts = [r.started for r in records if r.started is not None]
        ends = [r.finished for r in records if r.finished is not None]
        events = sorted([(s, 1) for s in starts] + [(e, -1) for e in ends])
        running = most = 0
        for _, step in events:
            running += step
            most = max(most, running)
        return {
            "gpu_nodes": gpu_nodes,
            "wall_s": wall,
            "chunks": len(records),
            "chunk_seconds": [r.seconds for r in records],
            "chunk_seconds_sum": sum(r.seconds or 0.0 for r in records),
            "chunk_span_s": max(ends) - min(starts),
            "max_chunks_at_once": most,
            "output_bytes": out.stat().st_size,
        }
    finally:
        subprocess.run(["bash", str(EMU / "stop.sh")], env=env, timeout=60, **run)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument(
        "--threads-per-task",
        type=int,
        default=None,
        help="OMP_NUM_THREADS of every job (default: unset, torch uses every core in every task)",
    )
    p.add_argument("--tag", default="", help="suffix of the result file name (nodes-<host><tag>.json)")
    args = p.parse_args()
    if not shutil.which("slurmctld", path=SEARCH_PATH):
        sys.exit("Slurm is not installed: run `make slurm-deps`")

    from vsrflow.bench.clips import sample_path
    from vsrflow.bench.machine import device_name, git_commit, host_tag
    from vsrflow.config import Settings
    from vsrflow.media.samples import downscale

    settings = Settings.from_env()
    clip = settings.cache_dir / "bench" / "bikes_d4.mp4"
    if not clip.exists():
        downscale(sample_path(settings, "bikes"), clip, 4, ffmpeg=settings.ffmpeg)
    rows = []
    with tempfile.TemporaryDirectory(prefix="vsr-nodes-") as tmp:
        for n in args.nodes:
            row = _run_one(n, clip, Path(tmp), args.threads_per_task)
            print(
                f"{n} GPU nodes: {row['wall_s']:.1f} s, {row['max_chunks_at_once']} chunks at once",
                file=sys.stderr,
            )
            rows.append(row)
    base = next((r["wall_s"] for r in rows if r["gpu_nodes"] == 1), None)
    for r in rows:
        r["speedup_over_1_node"] = base / r["wall_s"] if base else None
    result = {
        "benchmark": "chunked-workflow-nodes",
        "schema": 1,
        "device": device_name("cpu"),
        "cores": os.cpu_count(),
        "load_average_1_5_15_at_end": list(os.getloadavg()),
        "git_commit": git_commit(REPO),
        "date": datetime.date.today().isoformat(),
        "job": {
            "clip": "bikes downscaled /4: 160x68, 250 frames, 25 fps",
            "model": MODEL,
            "scale": float(SCALE),
            "chunk_frames": CHUNK_FRAMES,
            "encoder": "libx264 crf 18 preset medium (job default)",
            "executor": "slurm (local emulator, 1 cpu node + N gpu nodes with 1 fake GPU each)",
            "threads_per_task": args.threads_per_task,
        },
        "note": "emulated nodes share this host's cores: with fewer cores than nodes this measures "
        "scheduling and the chain's parallelism, not GPU scaling",
        "runs": rows,
    }
    out = REPO / "bench" / "results" / f"nodes-{host_tag()}{args.tag}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(out)


if __name__ == "__main__":
    main()
