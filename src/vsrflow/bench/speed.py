"""``vsrflow bench``: model-only vs end-to-end speed and peak memory, each in a fresh process.

What is measured, per (model, size):

* **model-only**: the clip decoded into memory first, one untimed warm-up batch, then
  ``Upscaler.upscale_frames`` timed alone (CUDA synchronised at both ends);
* **end-to-end**: ``upscale_video`` on the same clip: decode + inference + encode + final mux and
  validation;
* both on the clip looped ``loops`` times (steady state: probing, the final mux and validation are
  amortised), in fresh processes, interleaved, ``repeat`` times; the best of each is reported
  (this is a shared VM with noisy neighbours; the minimum is the least disturbed estimate of the
  code's own cost) and every sample is kept in ``all_seconds``;
* **peak memory**: ``VmHWM`` of a fresh end-to-end process on the short clip and on the looped
  one (flat in video length means ratio ~1); on CUDA also ``torch.cuda.max_memory_allocated``;
* **cost**: MFLOP per LR pixel (:mod:`vsrflow.bench.flops`) -> achieved TFLOP/s; on CUDA, the
  fraction of the ~990 TFLOP/s dense fp16/bf16 ceiling and the ceiling's fps.

Fresh processes matter: a model loaded earlier in the same process would leave its allocator
state and high-water mark behind. Children run ``python -m vsrflow.bench.speed --child ...`` and
print one JSON line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vsrflow.bench.clips import looped_clip, resized_clip, sample_path
from vsrflow.bench.flops import PEAK_TFLOPS_FP16, achieved_tflops, ceiling_fps, fraction_of_ceiling
from vsrflow.bench.machine import device_name, git_commit, peak_rss_mb
from vsrflow.config import Settings
from vsrflow.errors import InputError

SCHEMA_VERSION = 1
#: CPU defaults sized for 2 cores: (size WxH, frames); bikes.mp4 is 640x272
CPU_DEFAULTS: dict[str, tuple[tuple[int, int], int]] = {
    "realesr-animevideov3": ((320, 136), 40),
    "RealESRGAN_x4plus": ((80, 34), 6),
}
CPU_FALLBACK = ((160, 68), 20)
#: On a GPU: bikes at its own size, enough frames to leave launch overheads behind
GPU_DEFAULT = ((640, 272), 30)
#: Keys every run record carries (unit tests check results against this).
RUN_KEYS = frozenset(
    {
        "model", "size", "input", "frames", "precision", "batch", "model_only", "end_to_end",
        "e2e_over_model", "all_seconds", "e2e_short_clip", "peak_memory", "mflop_per_px",
        "achieved_tflops", "ceiling",
    }
)  # fmt: skip
RESULT_KEYS = frozenset(
    {
        "benchmark",
        "schema",
        "device",
        "device_kind",
        "torch",
        "git_commit",
        "date",
        "encoder",
        "method",
        "runs",
    }
)


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark invocation (every run shares it).

    Attributes:
        device / precision / batch: as ``vsrflow upscale`` takes them.
        loops: length multiple of the timed clip (and of the RSS flatness check).
        repeat: interleaved repeats; the best is reported.
        x264_preset: encoder speed preset of the end-to-end runs (crf 18, libx264).
    """

    device: str = "cpu"
    precision: str = "auto"
    batch: int = 1
    loops: int = 10
    repeat: int = 2
    x264_preset: str = "veryfast"


def resolve_device_name(spec: str) -> str:
    """``auto``/``cpu``/``cuda``/``cuda:N`` -> the concrete device (``cpu`` or ``cuda:N``).

    Resolved once in the parent so every child and the result file name the same device.

    Raises:
        InputError: unknown spelling or CUDA unavailable (see :func:`vsrflow.engine.device.resolve_device`).
    """
    from vsrflow.engine.device import resolve_device

    return str(resolve_device(spec))


def default_case(model: str, device: str) -> tuple[tuple[int, int], int]:
    """Default (size, frames) of ``model`` on ``device`` (see module constants)."""
    if device.startswith("cuda"):
        return GPU_DEFAULT
    return CPU_DEFAULTS.get(model, CPU_FALLBACK)


# ---------------------------------------------------------------------------- child process


def _child_main(argv: Sequence[str]) -> None:
    """Entry of a fresh measuring process: print one JSON line (see :func:`_measure`)."""
    p = argparse.ArgumentParser(prog="python -m vsrflow.bench.speed")
    p.add_argument("--child", type=Path, required=True)
    p.add_argument("--mode", choices=["model", "e2e"], required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--device", required=True)
    p.add_argument("--precision", required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--x264-preset", required=True)
    a = p.parse_args(argv)
    print(json.dumps(_measure(a.child, a.mode, a.model, a.device, a.precision, a.batch, a.x264_preset)))


def _measure(
    clip: Path, mode: str, model: str, device: str, precision: str, batch: int, x264_preset: str
) -> dict[str, Any]:
    """Time one mode on ``clip`` in this process; returns seconds, frames, pixels, memory, cost."""
    import numpy as np
    import torch

    from vsrflow.bench.flops import mflop_per_px
    from vsrflow.engine.pipeline import upscale_video
    from vsrflow.engine.upscaler import Upscaler
    from vsrflow.media.reader import FrameReader
    from vsrflow.media.writer import EncoderOptions
    from vsrflow.models.loader import load_model
    from vsrflow.models.registry import get_spec
    from vsrflow.models.store import WeightStore

    settings = Settings.from_env()
    loaded = load_model(get_spec(model), WeightStore.from_settings(settings))
    up = Upscaler(loaded.module, loaded.descriptor, device=device, precision=precision, batch=batch)
    cuda = up.device.type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(up.device)

    out: dict[str, Any] = {"precision": str(up.dtype).removeprefix("torch.")}
    if mode == "model":
        with FrameReader(clip) as reader:
            stack = np.stack([f.image for f in reader])
        up.upscale_frames(stack[:batch])  # warm-up (cudnn autotune, allocator), not timed
        if cuda:
            torch.cuda.reset_peak_memory_stats(up.device)
        sync()
        t0 = time.perf_counter()
        for i in range(0, len(stack), batch):
            up.upscale_frames(stack[i : i + batch])
        sync()
        out.update(seconds=time.perf_counter() - t0, frames=len(stack))
        out["pixels"] = int(stack.shape[1] * stack.shape[2])
        out["mflop_per_px"] = mflop_per_px(model, up.module)
    else:
        encoder = EncoderOptions(codec="libx264", crf=18, preset=x264_preset)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            result = upscale_video(
                clip,
                Path(tmp) / "out.mp4",
                upscaler=up,
                encoder=encoder,
                progress=False,
                ffmpeg=settings.ffmpeg,
            )
            sync()
            out.update(seconds=time.perf_counter() - t0, frames=result.frames)
    out["peak_rss_mb"] = peak_rss_mb()
    out["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated(up.device) / 2**20 if cuda else None
    return out


def _run_child(clip: Path, mode: str, model: str, config: BenchConfig) -> dict[str, Any]:
    argv = [
        sys.executable, "-m", "vsrflow.bench.speed", "--child", str(clip), "--mode", mode,
        "--model", model, "--device", config.device, "--precision", config.precision,
        "--batch", str(config.batch), "--x264-preset", config.x264_preset,
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-5:]
        raise RuntimeError(f"benchmark child ({mode}, {model}) failed: " + " | ".join(tail))
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


# ---------------------------------------------------------------------------- parent


def ceiling_block(
    device_kind: str, mflop: float | None, pixels: int, tflops: float | None
) -> dict[str, Any] | None:
    """The GPU ceiling comparison, or None on a CPU or for a model of unknown cost."""
    if device_kind != "cuda" or mflop is None or tflops is None:
        return None
    return {
        "peak_tflops": PEAK_TFLOPS_FP16,
        "basis": "dense fp16/bf16 tensor-core peak, H100/H200 (NVIDIA H100 SXM datasheet)",
        "ceiling_fps": ceiling_fps(mflop, pixels),
        "fraction_of_ceiling": fraction_of_ceiling(tflops),
    }


def measurements_per_case(config: BenchConfig) -> int:
    """Fresh child processes :func:`bench_one` runs: model-only and end-to-end per repeat, one short."""
    return 2 * config.repeat + 1


def bench_one(
    settings: Settings,
    model: str,
    size: tuple[int, int],
    frames: int,
    config: BenchConfig,
    workdir: Path,
    on_measurement: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """Measure one (model, size) and return its run record (keys :data:`RUN_KEYS`).

    ``on_measurement()`` is called after each of the :func:`measurements_per_case` children."""
    w, h = size
    bikes = sample_path(settings, "bikes")
    clip = resized_clip(settings, bikes, size, frames, workdir / f"bikes_{w}x{h}_{frames}.mkv")
    long_clip = looped_clip(
        settings, clip, config.loops, workdir / f"bikes_{w}x{h}_{frames}x{config.loops}.mkv"
    )
    models, longs = [], []
    for _ in range(config.repeat):  # interleaved: a slow spell of the VM hits both modes alike
        models.append(_run_child(long_clip, "model", model, config))
        on_measurement()
        longs.append(_run_child(long_clip, "e2e", model, config))
        on_measurement()
    short = _run_child(clip, "e2e", model, config)
    on_measurement()
    best_model = min(models, key=lambda r: r["seconds"])
    best_e2e = min(longs, key=lambda r: r["seconds"])
    n, pixels = best_model["frames"], best_model["pixels"]
    if best_e2e["frames"] != n:
        raise RuntimeError(f"model-only saw {n} frames but end-to-end wrote {best_e2e['frames']}")
    mflop = best_model.get("mflop_per_px")
    tflops = None if mflop is None else achieved_tflops(mflop, pixels, n, best_model["seconds"])
    long_rss = max(r["peak_rss_mb"] for r in longs)
    cuda_peaks = [
        r["cuda_max_allocated_mb"] for r in [*models, *longs] if r.get("cuda_max_allocated_mb") is not None
    ]
    kind = "cuda" if config.device.startswith("cuda") else "cpu"
    return {
        "model": model,
        "size": f"{w}x{h}",
        "input": f"bikes.mp4 (lossy h264) resized to {w}x{h} (bicubic), first {frames} frames "
        f"looped {config.loops}x = {n} frames",
        "frames": {"short": short["frames"], "long": n},
        "precision": best_model["precision"],
        "batch": config.batch,
        "model_only": {"seconds": best_model["seconds"], "fps": n / best_model["seconds"]},
        "end_to_end": {"seconds": best_e2e["seconds"], "fps": n / best_e2e["seconds"]},
        "e2e_over_model": best_e2e["seconds"] / best_model["seconds"],
        "all_seconds": {
            "model_only": [r["seconds"] for r in models],
            "end_to_end": [r["seconds"] for r in longs],
        },
        "e2e_short_clip": {"frames": short["frames"], "seconds": short["seconds"]},
        "peak_memory": {
            "rss_mb_short": short["peak_rss_mb"],
            "rss_mb_long": long_rss,
            "rss_ratio": long_rss / short["peak_rss_mb"],
            "cuda_max_allocated_mb": max(cuda_peaks) if cuda_peaks else None,
        },
        "mflop_per_px": mflop,
        "achieved_tflops": tflops,
        "ceiling": ceiling_block(kind, mflop, pixels, tflops),
    }


def run_benchmark(
    settings: Settings,
    cases: Sequence[tuple[str, tuple[int, int], int]],
    config: BenchConfig,
    *,
    repo: Path,
    workdir: Path,
    log: Any = print,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Run every (model, size, frames) case; returns the result document (keys :data:`RESULT_KEYS`).

    Weights must already be in the store (``vsrflow models import-ncnn``); a missing one fails the
    first child with the store's own message. ``progress(done, total)`` counts measurements (fresh
    child processes) as they finish.
    """
    import torch

    if config.batch < 1 or config.loops < 1 or config.repeat < 1:
        raise InputError("--batch, --loops and --repeat must be at least 1")
    workdir.mkdir(parents=True, exist_ok=True)
    runs = []
    total = len(cases) * measurements_per_case(config)
    done = [0]

    def measured() -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], total)

    for model, size, frames in cases:
        if frames < 1:
            raise InputError(f"--frames {frames} must be at least 1")
        run = bench_one(settings, model, size, frames, config, workdir, measured)
        log(
            f"{model} {run['size']}: model-only {run['model_only']['fps']:.2f} fps, "
            f"end-to-end {run['end_to_end']['fps']:.2f} fps (x{run['e2e_over_model']:.2f}), "
            f"peak RSS {run['peak_memory']['rss_mb_long']:.0f} MB"
        )
        runs.append(run)
    return {
        "benchmark": "upscale-speed",
        "schema": SCHEMA_VERSION,
        "device": device_name(config.device),
        "device_kind": "cuda" if config.device.startswith("cuda") else "cpu",
        "torch": torch.__version__,
        "git_commit": git_commit(repo),
        "date": time.strftime("%Y-%m-%d"),
        "encoder": {"codec": "libx264", "crf": 18, "preset": config.x264_preset},
        "method": {
            "repeat": config.repeat,
            "loops": config.loops,
            "timing": "fresh process per measurement, interleaved repeats, best of each",
            "memory": "VmHWM of a fresh end-to-end process (short clip and looped clip)",
        },
        "runs": runs,
    }


def check_result(doc: dict[str, Any]) -> None:
    """Raise ValueError when ``doc`` lacks a key of :data:`RESULT_KEYS` or a run one of :data:`RUN_KEYS`."""
    missing = RESULT_KEYS - doc.keys()
    if missing:
        raise ValueError(f"result lacks {sorted(missing)}")
    for i, run in enumerate(doc["runs"]):
        lacking = RUN_KEYS - run.keys()
        if lacking:
            raise ValueError(f"run {i} lacks {sorted(lacking)}")


if __name__ == "__main__":
    _child_main(sys.argv[1:])
