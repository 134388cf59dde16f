"""Device benchmark: model-only and end-to-end speed on one GPU, inside a time budget.

For each case (realesr-animevideov3 1920x1080 -> 4K, RealESRGAN_x4plus 640x360 -> 720p; the
x4plus output is resized to x2 by the Upscaler, as a 720p deliverable needs) it measures, in
priority order so that a short budget still gets the important numbers first:

1. **model-only, eager**: the network alone on a static device tensor (compute dtype,
   channels_last), fp16 and bf16, batch 1/2/4/8; plus the Upscaler path (uint8 host frames in and
   out: upload, normalise, model, quantise, download) at each batch;
2. **end to end**: ``vsrflow upscale`` on a generated clip (a fresh process: startup, decode,
   model, encode, mux) and one chunk of the chained workflow (``vsrflow job upscale-chunk`` on a
   job dir prepared with the extract stage);
3. **where time goes**: one in-process ``upscale_video`` with a synchronising
   :class:`~vsrflow.engine.stagetimer.StageTimer` (decode, h2d, model, d2h, encode, mux);
4. **compiled**: ``torch.compile`` (``--compile-mode``, default ``reduce-overhead``: CUDA graphs
   on the static shape; ``max-autotune`` searches kernels for minutes) and
   torch-tensorrt when it imports (else recorded as skipped with the reason), each in a child
   process with a timeout (a compile can take minutes and cannot be interrupted in-process).

Every measurement is guarded: an exception (out of memory, a compile error, a child timeout) is
recorded with its message and the run goes on. The result file is rewritten after every
measurement, so a run killed at the wall still leaves everything done so far. Measurements whose
estimated cost exceeds the remaining budget are recorded as skipped.

Peak GPU memory is ``torch.cuda.max_memory_allocated`` per measurement (reset before it). The FLOP
ceiling uses :mod:`vsrflow.bench.flops` (MFLOP per LR pixel, dense fp16 peak per device name).

Usage::

    python bench/gpu.py                      # on a GPU node: bench/results/gpu-<device>.json
    python bench/gpu.py --smoke              # CPU check of every code path: tiny sizes, < 1 min
    python bench/gpu.py --budget 300 --out /tmp/gpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SCHEMA_VERSION = 1
DEFAULT_BUDGET_S = 450.0  # 7.5 min: fits an 8-minute device window with margin for startup
#: Seconds kept back at the end of the budget for writing the result and exiting cleanly.
RESERVE_S = 5.0

#: (model, input WxH, output scale) of the device benchmark; output 3840x2160 and 1280x720.
GPU_CASES: tuple[tuple[str, tuple[int, int], float], ...] = (
    ("realesr-animevideov3", (1920, 1080), 2.0),
    ("RealESRGAN_x4plus", (640, 360), 2.0),
)
SMOKE_SIZE = (64, 36)
#: RealESRGAN_x4plus is ~30x the work per pixel: its smoke frame is smaller, so the smoke run
#: stays under a minute on a loaded 2-core machine.
SMOKE_SIZES = {"RealESRGAN_x4plus": (24, 16)}
GPU_BATCHES = (1, 2, 4, 8)
SMOKE_BATCHES = (1, 2)
#: Keys of the result document and of every measurement (checked by the unit tests).
RESULT_KEYS = frozenset(
    {"benchmark", "schema", "smoke", "device", "environment", "budget", "cases", "measurements", "skipped"}
)
MEASUREMENT_KEYS = frozenset({"name", "kind", "model", "status", "seconds_spent"})


# ---------------------------------------------------------------------------- budget (pure)


class Budget:
    """A total wall-clock budget, read from ``clock`` (seconds, monotonic).

    ``allows(estimate)`` is True when ``estimate`` seconds still fit before the reserve at the end;
    ``child_timeout(cap)`` is the timeout to give a child process (at most ``cap``, never past the
    budget's end).
    """

    def __init__(
        self, total_s: float, clock: Callable[[], float] = time.monotonic, reserve_s: float = RESERVE_S
    ):
        if total_s <= 0:
            raise ValueError(f"budget {total_s} s must be positive")
        self.total_s = float(total_s)
        self.reserve_s = min(float(reserve_s), self.total_s / 2)
        self._clock = clock
        self._t0 = clock()

    @property
    def elapsed(self) -> float:
        return self._clock() - self._t0

    @property
    def remaining(self) -> float:
        """Seconds left before the reserve (may be negative once spent)."""
        return self.total_s - self.reserve_s - self.elapsed

    def allows(self, estimate_s: float) -> bool:
        return self.remaining >= estimate_s

    def child_timeout(self, cap_s: float) -> float:
        return max(0.0, min(cap_s, self.remaining))


# ---------------------------------------------------------------------------- plan (pure)


@dataclass(frozen=True)
class Step:
    """One measurement to make: ``kind`` picks the function, ``params`` its arguments.

    ``estimate_s`` is what the step is expected to cost on the target (a GPU, or the CPU in smoke
    mode); a step is skipped when the budget no longer allows it.
    """

    name: str
    kind: str
    model: str
    params: dict[str, Any] = field(default_factory=dict)
    estimate_s: float = 5.0


def plan_steps(
    cases: tuple[tuple[str, tuple[int, int], float], ...],
    *,
    cuda: bool,
    smoke: bool,
    batches: tuple[int, ...],
    compile_mode: str,
) -> list[Step]:
    """The ordered measurement list: cheap and important first, compiles last.

    On CPU (smoke) the precisions are fp32 and bf16 (fp16 falls back to fp32 on CPU) and the
    compile step uses the ``eager`` backend, which exercises torch.compile's tracing without the
    minutes an inductor build takes on two cores.
    """
    precisions = ("fp16", "bf16") if cuda else ("fp32", "bf16")
    steps: list[Step] = []
    for prec in precisions:
        # Smoke: the second precision once (bf16 on a CPU without native bf16 is ~10x slower).
        some = smoke and prec != precisions[0]
        for model, size, scale in cases[:1] if some else cases:
            for b in batches[:1] if some else batches:
                steps.append(
                    Step(
                        f"model-only {model} {prec} batch {b} eager",
                        "model_only",
                        model,
                        {"size": size, "scale": scale, "precision": prec, "batch": b, "backend": "eager"},
                        estimate_s=4.0,
                    )
                )
    first = precisions[0]
    for model, size, scale in cases:
        common = {"size": size, "scale": scale, "precision": first}
        steps.append(Step(f"e2e vsrflow upscale {model}", "e2e_upscale", model, common, estimate_s=40.0))
        steps.append(Step(f"e2e chunk {model}", "e2e_chunk", model, common, estimate_s=40.0))
        steps.append(Step(f"stage profile {model}", "profile", model, common, estimate_s=25.0))
    compile_backend = "inductor" if cuda and not smoke else "eager"
    # fp16 compiles of both models first, then bf16, then TensorRT: a short budget keeps the best.
    for prec in precisions[:1] if smoke else precisions:
        for model, size, scale in cases:
            p = {"size": size, "scale": scale, "precision": prec, "batch": "best"}
            steps.append(
                Step(
                    f"model-only {model} {prec} best batch compile:{compile_mode}",
                    "compiled",
                    model,
                    {**p, "backend": compile_backend, "compile_mode": compile_mode},
                    estimate_s=90.0 if compile_backend == "inductor" else 15.0,
                )
            )
    for model, size, scale in cases:
        steps.append(
            Step(
                f"model-only {model} {first} best batch torch-tensorrt",
                "compiled",
                model,
                {"size": size, "scale": scale, "precision": first, "batch": "best", "backend": "tensorrt"},
                estimate_s=120.0 if cuda else 5.0,
            )
        )
    return steps


def best_batch(measurements: list[dict[str, Any]], model: str, precision: str, default: int = 1) -> int:
    """Batch of the fastest successful eager model-only measurement of ``model`` at ``precision``."""
    done = [
        m
        for m in measurements
        if m["kind"] == "model_only"
        and m["model"] == model
        and m.get("precision_requested") == precision
        and m["status"] == "ok"
    ]
    return int(max(done, key=lambda m: m["fps"])["batch"]) if done else default


def ceiling_ratio(
    fps: float, mflop_per_px: float | None, pixels: int, peak_tflops: float | None
) -> dict[str, Any]:
    """Achieved TFLOP/s of ``fps`` frames of ``pixels`` LR pixels, and the ratio to the device peak.

    ``ratio`` and ``ceiling_fps`` are None when the model's cost or the device's peak is unknown.
    """
    from vsrflow.bench.flops import achieved_tflops, ceiling_fps

    if mflop_per_px is None or fps <= 0:
        return {"achieved_tflops": None, "peak_tflops": peak_tflops, "ceiling_fps": None, "ratio": None}
    tflops = achieved_tflops(mflop_per_px, pixels, 1, 1.0 / fps)
    return {
        "achieved_tflops": tflops,
        "peak_tflops": peak_tflops,
        "ceiling_fps": None if peak_tflops is None else ceiling_fps(mflop_per_px, pixels, peak_tflops),
        "ratio": None if peak_tflops is None else tflops / peak_tflops,
    }


# ---------------------------------------------------------------------------- result document


class ResultDoc:
    """The result file: environment, every measurement and skip, rewritten atomically on each change."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self.doc: dict[str, Any] = {**header, "measurements": [], "skipped": []}
        self.write()

    @property
    def measurements(self) -> list[dict[str, Any]]:
        return list(self.doc["measurements"])

    def add(self, record: dict[str, Any]) -> None:
        self.doc["measurements"].append(record)
        self.write()

    def skip(self, step: Step, reason: str) -> None:
        self.doc["skipped"].append(
            {"name": step.name, "kind": step.kind, "model": step.model, "reason": reason}
        )
        self.write()

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.doc, indent=2, default=str) + "\n")
        os.replace(tmp, self.path)  # a reader (or a kill) never sees half a file


def check_result(doc: dict[str, Any]) -> None:
    """Raise ValueError when ``doc`` lacks a key of :data:`RESULT_KEYS` or a measurement one of
    :data:`MEASUREMENT_KEYS`, or a successful measurement lacks its numbers."""
    missing = RESULT_KEYS - doc.keys()
    if missing:
        raise ValueError(f"result lacks {sorted(missing)}")
    for i, m in enumerate(doc["measurements"]):
        lacking = MEASUREMENT_KEYS - m.keys()
        if lacking:
            raise ValueError(f"measurement {i} lacks {sorted(lacking)}")
        timed = m["kind"] in ("model_only", "compiled", "e2e_upscale", "e2e_chunk")
        if m["status"] == "ok" and timed and (not isinstance(m.get("fps"), int | float) or m["fps"] <= 0):
            raise ValueError(f"measurement {i} ({m['name']}) is ok but has no positive fps")
        if m["status"] == "failed" and not m.get("error"):
            raise ValueError(f"measurement {i} ({m['name']}) failed without an error message")


def device_tag(name: str) -> str:
    """File-name tag of a device name: ``NVIDIA H200`` -> ``nvidia-h200``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "device"


# ---------------------------------------------------------------------------- environment


def environment(device: str) -> dict[str, Any]:
    """Device name, driver, torch/CUDA/cuDNN versions, CPU, host, git commit."""
    import torch

    from vsrflow.bench.machine import cpu_name, device_name, git_commit

    env: dict[str, Any] = {
        "device_name": device_name(device),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "driver": None,
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "host": platform.node(),
        "python": platform.python_version(),
        "git_commit": git_commit(REPO),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device))
        env["gpu_memory_mib"] = props.total_memory // 2**20
        env["multiprocessors"] = props.multi_processor_count
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True, text=True, check=False, timeout=20,
            )  # fmt: skip
            env["driver"] = out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout else None
        except (OSError, subprocess.TimeoutExpired):
            pass
    return env


# ---------------------------------------------------------------------------- measurements


@dataclass
class Context:
    """What every measurement shares."""

    device: str
    smoke: bool
    workdir: Path
    settings: Any
    peak_tflops: float | None
    min_seconds: float
    max_iters: int
    clip_frames: int
    doc: ResultDoc | None = None
    _models: dict[str, Any] = field(default_factory=dict)

    def measurements(self) -> list[dict[str, Any]]:
        return self.doc.measurements if self.doc is not None else []

    @property
    def cuda(self) -> bool:
        return self.device.startswith("cuda")

    def sync(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize(torch.device(self.device))

    def model(self, model_id: str) -> Any:
        """The loaded model (fp32, cpu) from the weight store, else randomly initialised weights of
        the same architecture (speed does not depend on the weights; the record says which)."""
        if model_id not in self._models:
            self._models[model_id] = load_or_random(model_id, self.settings, self.workdir)
        return self._models[model_id]


def load_or_random(model_id: str, settings: Any, workdir: Path) -> dict[str, Any]:
    """``{"module", "descriptor", "weights", "path"}``: store weights, else a random init saved to
    ``workdir/<id>.random.pth`` (so the CLI runs can load the same network with ``--model PATH``)."""
    import torch

    from vsrflow.errors import VsrError
    from vsrflow.models import arch as archs
    from vsrflow.models.loader import load_model
    from vsrflow.models.registry import get_spec
    from vsrflow.models.store import WeightStore

    spec = get_spec(model_id)
    try:
        loaded = load_model(spec, WeightStore(settings.weights_dir))
        return {
            "module": loaded.module,
            "descriptor": loaded.descriptor,
            "weights": loaded.provenance,
            "path": None,
        }
    except VsrError as exc:
        reason = str(exc).splitlines()[0]
    torch.manual_seed(0)
    module = archs.build(spec.arch, dict(spec.params)).float().eval()
    path = workdir / f"{model_id}.random.pth"
    torch.save(module.state_dict(), path)
    return {
        "module": module,
        "descriptor": archs.describe(spec.arch, dict(spec.params)),
        "weights": f"random init, seed 0 (no stored weights: {reason}); speed only",
        "path": path,
    }


@contextmanager
def _cuda_peak(ctx: Context, rec: dict[str, Any]) -> Iterator[None]:
    import torch

    if ctx.cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(torch.device(ctx.device))
    yield
    if ctx.cuda:
        rec["peak_gpu_mib"] = torch.cuda.max_memory_allocated(torch.device(ctx.device)) / 2**20


def _timed_loop(fn: Callable[[], Any], ctx: Context, warmup: int = 2) -> tuple[int, float]:
    """Run ``fn`` ``warmup`` times untimed (once in smoke mode), then until ``min_seconds`` pass or
    ``max_iters`` calls."""
    for _ in range(1 if ctx.smoke else warmup):
        fn()
    ctx.sync()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        if n >= ctx.max_iters:
            break
        if n % 2 == 0:  # a sync costs a pipeline drain: check the clock every other call
            ctx.sync()
            if time.perf_counter() - t0 >= ctx.min_seconds:
                break
    ctx.sync()
    return n, time.perf_counter() - t0


def _upscaler(ctx: Context, model_id: str, precision: str, batch: int, scale: float | None = None) -> Any:
    from vsrflow.engine.upscaler import Upscaler

    m = ctx.model(model_id)
    return Upscaler(
        m["module"], m["descriptor"], device=ctx.device, precision=precision, batch=batch, scale=scale
    )


def _static_input(ctx: Context, step: Step, batch: int) -> tuple[Any, dict[str, Any], Any]:
    """(Upscaler, the record's shape fields, a random (batch,3,H,W) channels-last device tensor)."""
    import torch

    p = step.params
    w, h = p["size"]
    up = _upscaler(ctx, step.model, p["precision"], batch, scale=p["scale"])
    rec: dict[str, Any] = {
        "precision": str(up.dtype).removeprefix("torch."),
        "batch": batch,
        "size": f"{w}x{h}",
    }
    x = (
        torch.rand(batch, 3, h, w, device=up.device)
        .to(up.dtype)
        .contiguous(memory_format=torch.channels_last)
    )
    return up, rec, x


def measure_model_only(ctx: Context, step: Step, batch: int) -> dict[str, Any]:
    """Eager network on a static device tensor, then the Upscaler on uint8 host frames."""
    import numpy as np
    import torch

    from vsrflow.bench.flops import mflop_per_px

    p = step.params
    w, h = p["size"]
    up, rec, x = _static_input(ctx, step, batch)
    autocast = up.dtype != torch.float32
    module = up.module

    def forward() -> Any:
        with (
            torch.inference_mode(),
            torch.autocast(device_type=up.device.type, dtype=up.dtype, enabled=autocast),
        ):
            return module(x)

    with _cuda_peak(ctx, rec):
        n, secs = _timed_loop(forward, ctx)
    rec.update(calls=n, seconds=secs, fps=n * batch / secs, ms_per_batch=1000 * secs / n)
    frames = np.random.default_rng(0).integers(0, 256, (batch, h, w, 3), dtype=np.uint8)
    n2, secs2 = _timed_loop(lambda: up.upscale_frames(frames), ctx, warmup=1)
    rec["upscaler_uint8"] = {"calls": n2, "seconds": secs2, "fps": n2 * batch / secs2}
    rec["mflop_per_px"] = mflop_per_px(step.model, module if ctx.smoke else None)
    rec["ceiling"] = ceiling_ratio(rec["fps"], rec["mflop_per_px"], w * h, ctx.peak_tflops)
    return rec


def measure_compiled(ctx: Context, step: Step, batch: int) -> dict[str, Any]:
    """torch.compile or torch-tensorrt of the network on the static shape (run in a child process)."""
    import torch

    from vsrflow.bench.flops import mflop_per_px

    p = step.params
    w, h = p["size"]
    up, rec, x = _static_input(ctx, step, batch)
    backend = p["backend"]
    t0 = time.perf_counter()
    if backend == "tensorrt":
        import torch_tensorrt  # type: ignore[import-not-found, import-untyped, unused-ignore]

        rec["torch_tensorrt"] = getattr(torch_tensorrt, "__version__", "unknown")
        compiled = torch_tensorrt.compile(up.module, ir="dynamo", inputs=[x], enabled_precisions={up.dtype})
    else:
        mode = p.get("compile_mode") if backend == "inductor" else None
        rec["compile"] = {"backend": backend, "mode": mode}
        compiled = torch.compile(up.module, backend=backend, mode=mode, dynamic=False)
    autocast = up.dtype != torch.float32

    def forward() -> Any:
        with (
            torch.inference_mode(),
            torch.autocast(device_type=up.device.type, dtype=up.dtype, enabled=autocast),
        ):
            return compiled(x)

    with _cuda_peak(ctx, rec):
        forward()  # the compile happens here
        ctx.sync()
        rec["compile_seconds"] = time.perf_counter() - t0
        n, secs = _timed_loop(forward, ctx)
    rec.update(calls=n, seconds=secs, fps=n * batch / secs, ms_per_batch=1000 * secs / n)
    rec["mflop_per_px"] = mflop_per_px(step.model, up.module if ctx.smoke else None)
    rec["ceiling"] = ceiling_ratio(rec["fps"], rec["mflop_per_px"], w * h, ctx.peak_tflops)
    return rec


def make_clip(ctx: Context, size: tuple[int, int]) -> Path:
    """A generated test clip (ffmpeg testsrc2, 24 fps, libx264 crf 16 yuv420p) of ``clip_frames`` frames."""
    w, h = size
    path = ctx.workdir / f"testsrc2_{w}x{h}_{ctx.clip_frames}.mp4"
    if not path.exists():
        argv = [
            ctx.settings.ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
            "-i", f"testsrc2=size={w}x{h}:rate=24", "-frames:v", str(ctx.clip_frames),
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-pix_fmt", "yuv420p", str(path),
        ]  # fmt: skip
        subprocess.run(argv, check=True, capture_output=True, timeout=300)
    return path


def _vsrflow_argv() -> list[str]:
    return [sys.executable, "-m", "vsrflow"]


def _child_env(ctx: Context) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    env["VSRFLOW_DEVICE"] = ctx.device
    if ctx.smoke:
        env["OMP_NUM_THREADS"] = "1"  # as _smoke_threads: predictable on a shared CPU
    return env


def _model_arg(ctx: Context, model_id: str) -> str:
    path = ctx.model(model_id)["path"]
    return str(path) if path is not None else model_id


def measure_e2e_upscale(ctx: Context, step: Step, budget: Budget) -> dict[str, Any]:
    """``vsrflow upscale --batch auto`` (fresh process) on the generated clip; fps = frames / process
    wall time (startup and model load included); ``pipeline_fps`` is the command's own figure."""
    p = step.params
    clip = make_clip(ctx, p["size"])
    out = ctx.workdir / f"e2e-{step.model}.mp4"
    argv = [
        *_vsrflow_argv(), "upscale", str(clip), "-o", str(out), "--overwrite", "--no-progress",
        "--model", _model_arg(ctx, step.model), "--scale", str(p["scale"]), "--device", ctx.device,
        "--precision", p["precision"], "--batch", "auto", "--encoder-preset", "veryfast",
    ]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=_child_env(ctx),
        timeout=budget.child_timeout(300),
        check=False,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"vsrflow upscale exited {proc.returncode}: {proc.stderr.strip()[-600:]}")
    speed = re.search(r"speed : ([0-9.]+) frames/s over ([0-9.]+) s \(batch (\d+)\)", proc.stdout)
    return {
        "batch": f"auto -> {speed.group(3)}" if speed else "auto",
        "frames": ctx.clip_frames,
        "encoder": "libx264 veryfast crf 18",
        "process_seconds": wall,
        "fps": ctx.clip_frames / wall,
        "pipeline_fps": float(speed.group(1)) if speed else None,
        "input": f"testsrc2 {p['size'][0]}x{p['size'][1]}, {ctx.clip_frames} frames",
    }


def measure_e2e_chunk(ctx: Context, step: Step, budget: Budget) -> dict[str, Any]:
    """One chunk of the chained workflow: extract in-process, then ``vsrflow job upscale-chunk``."""
    from vsrflow.workflow.job import stages
    from vsrflow.workflow.job.layout import JobDir
    from vsrflow.workflow.job.spec import JobSpec, file_identity

    p = step.params
    clip = make_clip(ctx, p["size"])
    spec = JobSpec(
        source=str(clip),
        destination=str(ctx.workdir / f"chunk-{step.model}.mp4"),
        model=_model_arg(ctx, step.model),
        scale=float(p["scale"]),
    )
    root = Path(tempfile.mkdtemp(prefix="jobs-", dir=ctx.workdir))
    job = JobDir.create(root, spec, spec.job_id(file_identity(clip)))
    stages.extract(job)
    argv = [*_vsrflow_argv(), "job", "upscale-chunk", str(job.path), "--index", "0"]
    t0 = time.perf_counter()
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=_child_env(ctx),
        timeout=budget.child_timeout(300),
        check=False,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(
            f"vsrflow job upscale-chunk exited {proc.returncode}: {proc.stderr.strip()[-600:]}"
        )
    from vsrflow.workflow.job.manifest import ManifestStore

    plan = ManifestStore(job).load().plan
    frames = plan.chunks[0].frames if plan is not None else ctx.clip_frames
    return {
        "frames": frames,
        "chunks_in_plan": len(plan.chunks) if plan is not None else None,
        "encoder": f"{spec.encoder.codec} {spec.encoder.preset} crf {spec.encoder.crf} (the job default)",
        "batch": "the chunk path's default",
        "process_seconds": wall,
        "fps": frames / wall,
    }


def measure_profile(ctx: Context, step: Step) -> dict[str, Any]:
    """In-process ``upscale_video`` with a synchronising stage timer: seconds per stage."""
    from vsrflow.engine.pipeline import upscale_video
    from vsrflow.engine.stagetimer import StageTimer
    from vsrflow.media.writer import EncoderOptions

    p = step.params
    batch = best_batch(ctx.measurements(), step.model, p["precision"])
    clip = make_clip(ctx, p["size"])
    up = _upscaler(ctx, step.model, p["precision"], batch, scale=p["scale"])
    timer = StageTimer(sync=ctx.sync)
    rec: dict[str, Any] = {"batch": batch, "encoder": "libx264 veryfast crf 18"}
    with _cuda_peak(ctx, rec):
        result = upscale_video(
            clip,
            ctx.workdir / f"profile-{step.model}.mp4",
            upscaler=up,
            encoder=EncoderOptions(codec="libx264", crf=18, preset="veryfast"),
            progress=False,
            ffmpeg=ctx.settings.ffmpeg,
            timer=timer,
        )
    rec.update(frames=result.frames, seconds=result.seconds, fps=result.fps, stages=timer.summary())
    rec["note"] = "synchronising timer: stages are serialised on the device; fps here is below the e2e fps"
    return rec


def run_compiled_child(
    ctx: Context, step: Step, batch: int, budget: Budget, args: argparse.Namespace
) -> dict[str, Any]:
    """Run :func:`measure_compiled` in a fresh process with a timeout; returns its record."""
    if step.params["backend"] == "tensorrt":
        try:
            import torch_tensorrt  # type: ignore[import-not-found, import-untyped, unused-ignore]  # noqa: F401
        except Exception as exc:
            return {
                "status": "skipped",
                "reason": f"torch_tensorrt does not import: {type(exc).__name__}: {exc}",
            }
    payload = json.dumps({"step": step.__dict__, "batch": batch})
    argv = [
        sys.executable, str(Path(__file__).resolve()), "--child", payload, "--device", ctx.device,
        "--workdir", str(ctx.workdir), "--min-seconds", str(ctx.min_seconds),
        "--max-iters", str(ctx.max_iters),
    ]  # fmt: skip
    if args.smoke:
        argv.append("--smoke")
    timeout = budget.child_timeout(args.compile_timeout)
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, env=_child_env(ctx), timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(
            f"compile child timed out after {timeout:.0f} s (budget or --compile-timeout)"
        ) from None
    if proc.returncode != 0:
        raise RuntimeError(f"compile child exited {proc.returncode}: {proc.stderr.strip()[-800:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def run_step(ctx: Context, step: Step, budget: Budget, doc: ResultDoc, args: argparse.Namespace) -> None:
    """Run one step under its guard and record the outcome (ok, failed with the error, or skipped)."""
    if not budget.allows(step.estimate_s):
        doc.skip(step, f"budget: {budget.remaining:.0f} s left, step estimated at {step.estimate_s:.0f} s")
        return
    t0 = time.perf_counter()
    rec: dict[str, Any] = {"name": step.name, "kind": step.kind, "model": step.model}
    rec["precision_requested"] = step.params.get("precision")
    try:
        weights = ctx.model(step.model)["weights"]
        rec["weights"] = weights
        if step.kind == "model_only":
            rec.update(measure_model_only(ctx, step, int(step.params["batch"])))
        elif step.kind == "compiled":
            batch = step.params["batch"]
            if batch == "best":
                batch = best_batch(ctx.measurements(), step.model, step.params["precision"])
            child = run_compiled_child(ctx, step, int(batch), budget, args)
            if child.get("status") == "skipped":
                doc.skip(step, child["reason"])
                return
            rec.update(child)
        elif step.kind == "e2e_upscale":
            rec.update(measure_e2e_upscale(ctx, step, budget))
        elif step.kind == "e2e_chunk":
            rec.update(measure_e2e_chunk(ctx, step, budget))
        elif step.kind == "profile":
            rec.update(measure_profile(ctx, step))
        else:
            raise ValueError(f"unknown step kind {step.kind!r}")
        rec["status"] = "ok"
    except Exception as exc:  # one failure (OOM, compile error, timeout) never ends the run
        rec["status"] = "failed"
        rec["error"] = f"{type(exc).__name__}: {str(exc)[:1500]}"
        rec["traceback_tail"] = traceback.format_exc().strip().splitlines()[-6:]
        if ctx.cuda:
            import torch

            torch.cuda.empty_cache()
    rec["seconds_spent"] = time.perf_counter() - t0
    doc.add(rec)
    status = rec["status"] if rec["status"] != "ok" else f"{rec.get('fps', 0):.2f} fps"
    print(f"[{budget.elapsed:6.1f} s] {step.name}: {status}", flush=True)


# ---------------------------------------------------------------------------- entry points


def _settings() -> Any:
    from vsrflow.config import Settings

    return Settings.from_env()


def _context(args: argparse.Namespace, device: str, workdir: Path) -> Context:
    from vsrflow.bench.flops import peak_tflops_for
    from vsrflow.bench.machine import device_name

    return Context(
        device=device,
        smoke=args.smoke,
        workdir=workdir,
        settings=_settings(),
        peak_tflops=peak_tflops_for(device_name(device)) if device.startswith("cuda") else None,
        min_seconds=args.min_seconds,
        max_iters=args.max_iters,
        clip_frames=args.clip_frames,
    )


def _child_main(args: argparse.Namespace) -> int:
    payload = json.loads(args.child)
    s = payload["step"]
    s["params"]["size"] = tuple(s["params"]["size"])
    step = Step(**s)
    ctx = _context(args, args.device, Path(args.workdir))
    print(json.dumps(measure_compiled(ctx, step, int(payload["batch"])), default=str))
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--smoke",
        action="store_true",
        help=f"tiny CPU check: {SMOKE_SIZE[0]}x{SMOKE_SIZE[1]}, few iterations",
    )
    p.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S, help="total seconds (default 450)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (smoke: cpu)")
    p.add_argument("--out", type=Path, default=None, help="result JSON (default <out-dir>/gpu-<device>.json)")
    p.add_argument(
        "--out-dir", type=Path, default=REPO / "bench" / "results", help="directory of the default --out"
    )
    p.add_argument("--workdir", type=Path, default=None, help="scratch directory (default: a temporary one)")
    p.add_argument(
        "--compile-mode",
        default="reduce-overhead",
        help="torch.compile mode: reduce-overhead (CUDA graphs on the static shape; the default: it "
        "compiles in well under the per-compile timeout) or max-autotune (kernel search: minutes)",
    )
    p.add_argument("--compile-timeout", type=float, default=150.0, help="seconds per compile child")
    p.add_argument("--min-seconds", type=float, default=None, help="timed seconds per model-only point")
    p.add_argument("--max-iters", type=int, default=None, help="max timed calls per model-only point")
    p.add_argument("--clip-frames", type=int, default=None, help="frames of the generated end-to-end clip")
    p.add_argument("--only", default=None, help="regex: run only the steps whose name matches")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    a.min_seconds = a.min_seconds if a.min_seconds is not None else (0.0 if a.smoke else 1.5)
    a.max_iters = a.max_iters if a.max_iters is not None else (1 if a.smoke else 200)
    a.clip_frames = a.clip_frames if a.clip_frames is not None else (4 if a.smoke else 96)
    if a.smoke and a.device == "auto":
        a.device = "cpu"
    return a


def _smoke_threads() -> None:
    """One intra-op thread in smoke mode: on a shared, oversubscribed CPU, spinning OpenMP workers
    made a 24x16 x4plus call take minutes; one thread is slower per call but predictable."""
    import torch

    torch.set_num_threads(1)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.smoke:
        _smoke_threads()
    if args.child is not None:
        return _child_main(args)
    budget = Budget(args.budget)
    from vsrflow.bench.speed import resolve_device_name

    device = resolve_device_name(args.device)
    cuda = device.startswith("cuda")
    if cuda:
        import torch

        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    env = environment(device)
    cases = (
        GPU_CASES
        if not args.smoke
        else tuple((m, SMOKE_SIZES.get(m, SMOKE_SIZE), s) for m, _, s in GPU_CASES)
    )
    batches = SMOKE_BATCHES if args.smoke else GPU_BATCHES
    out = (
        args.out
        or args.out_dir / f"gpu-{device_tag(env['device_name'])}{'-smoke' if args.smoke else ''}.json"
    )
    steps = plan_steps(cases, cuda=cuda, smoke=args.smoke, batches=batches, compile_mode=args.compile_mode)
    if args.only:
        steps = [s for s in steps if re.search(args.only, s.name)]
    with tempfile.TemporaryDirectory(prefix="vsrflow-gpu-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        ctx = _context(args, device, workdir)
        header = {
            "benchmark": "gpu",
            "schema": SCHEMA_VERSION,
            "smoke": args.smoke,
            "device": device,
            "environment": env,
            "budget": {"total_s": budget.total_s, "reserve_s": budget.reserve_s},
            "cases": [
                {"model": m, "input": f"{w}x{h}", "scale": s, "output": f"{int(w * s)}x{int(h * s)}"}
                for m, (w, h), s in cases
            ],
            "peak_tflops_fp16": ctx.peak_tflops,
            "method": {
                "model_only": f"static random device tensor, compute dtype, channels_last; 2 warm-up calls, "
                f"then >= {args.min_seconds} s or {args.max_iters} calls, synchronised",
                "e2e": "fresh `vsrflow upscale` / `vsrflow job upscale-chunk` process, "
                "wall time incl. startup",
            },
        }
        doc = ResultDoc(out, header)
        ctx.doc = doc
        print(
            f"device {env['device_name']} ({device}); {len(steps)} steps; budget {budget.total_s:.0f} s",
            flush=True,
        )
        for step in steps:
            run_step(ctx, step, budget, doc, args)
        doc.doc["budget"]["spent_s"] = budget.elapsed
        doc.write()
    print(f"wrote {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
