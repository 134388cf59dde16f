"""The device benchmark's pure parts: budget, plan, batch pick, FLOP ratio, result schema, guard."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from vsrflow.bench.flops import ceiling_fps, peak_tflops_for

REPO = Path(__file__).resolve().parents[2]


def _load_gpu_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_gpu", REPO / "bench" / "gpu.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_gpu"] = mod  # dataclasses resolve their module by name
    spec.loader.exec_module(mod)
    return mod


gpu = _load_gpu_bench()


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_budget_counts_down_and_keeps_a_reserve() -> None:
    clock = FakeClock()
    b = gpu.Budget(60, clock=clock, reserve_s=5)
    assert b.remaining == 55 and b.allows(55) and not b.allows(56)
    clock.t += 50
    assert b.elapsed == 50 and b.remaining == 5
    assert b.child_timeout(150) == 5 and b.child_timeout(2) == 2
    clock.t += 10
    assert b.remaining < 0 and not b.allows(0) and b.child_timeout(10) == 0


def test_budget_rejects_nonsense_and_caps_the_reserve() -> None:
    with pytest.raises(ValueError, match="positive"):
        gpu.Budget(0)
    assert gpu.Budget(4, reserve_s=5).reserve_s == 2  # never more than half a tiny budget


def test_plan_puts_eager_first_and_compiles_last() -> None:
    steps = gpu.plan_steps(
        gpu.GPU_CASES, cuda=True, smoke=False, batches=(1, 2, 4, 8), compile_mode="max-autotune"
    )
    kinds = [s.kind for s in steps]
    assert kinds[:16] == ["model_only"] * 16  # 2 precisions x 2 models x 4 batches
    assert {s.params["precision"] for s in steps[:16]} == {"fp16", "bf16"}
    first_compiled = kinds.index("compiled")
    assert set(kinds[first_compiled:]) == {"compiled"}
    assert {"e2e_upscale", "e2e_chunk", "profile"} <= set(kinds[16:first_compiled])
    inductor = [s for s in steps if s.kind == "compiled" and s.params["backend"] == "inductor"]
    assert len(inductor) == 4 and all(s.params["compile_mode"] == "max-autotune" for s in inductor)
    assert [s.params["precision"] for s in inductor] == ["fp16", "fp16", "bf16", "bf16"]  # fp16 first
    assert sum(s.params.get("backend") == "tensorrt" for s in steps) == 2


def test_plan_on_cpu_uses_fp32_and_the_eager_compile_backend() -> None:
    steps = gpu.plan_steps(gpu.GPU_CASES, cuda=False, smoke=True, batches=(1, 2), compile_mode="max-autotune")
    assert {s.params["precision"] for s in steps if s.kind == "model_only"} == {"fp32", "bf16"}
    assert [s.name for s in steps if s.params["precision"] == "bf16"] == [
        "model-only realesr-animevideov3 bf16 batch 1 eager"
    ]
    assert {s.params["backend"] for s in steps if s.kind == "compiled"} == {"eager", "tensorrt"}


def _m(model: str, prec: str, batch: int, fps: float, status: str = "ok") -> dict[str, Any]:
    return {"kind": "model_only", "model": model, "precision_requested": prec, "batch": batch, "fps": fps,
            "status": status}  # fmt: skip


def test_best_batch_is_the_fastest_successful_one() -> None:
    ms = [_m("a", "fp16", 1, 10), _m("a", "fp16", 4, 30), _m("a", "fp16", 8, 99, "failed"),
          _m("a", "bf16", 2, 50), _m("b", "fp16", 2, 70)]  # fmt: skip
    assert gpu.best_batch(ms, "a", "fp16") == 4
    assert gpu.best_batch(ms, "a", "bf16") == 2
    assert gpu.best_batch(ms, "c", "fp16") == 1 and gpu.best_batch([], "a", "fp16", default=2) == 2


def test_ceiling_ratio_against_the_issue_anchor() -> None:
    # animevideov3 at 1080p: 1.24 MFLOP/px x 2.07 Mpx = 2.57 TFLOP/frame -> ~386 fps at 990 TFLOP/s.
    px = 1920 * 1080
    assert ceiling_fps(1.24, px, 990.0) == pytest.approx(386, abs=1.5)
    r = gpu.ceiling_ratio(150.0, 1.24, px, 990.0)
    assert r["achieved_tflops"] == pytest.approx(1.24e6 * px * 150 / 1e12)
    assert r["ratio"] == pytest.approx(150 / r["ceiling_fps"])
    assert gpu.ceiling_ratio(150.0, 1.24, px, None)["ratio"] is None
    assert gpu.ceiling_ratio(150.0, None, px, 990.0)["achieved_tflops"] is None


def test_peak_table_is_keyed_by_device_name() -> None:
    assert peak_tflops_for("NVIDIA H200") == 990.0
    assert peak_tflops_for("NVIDIA H100 80GB HBM3") == 990.0
    assert peak_tflops_for("NVIDIA H100 PCIe") == 756.0
    assert peak_tflops_for("NVIDIA A100-SXM4-80GB") == 312.0
    assert peak_tflops_for("NVIDIA GeForce RTX 2080") is None
    assert peak_tflops_for("AMD EPYC 7B13 (2 cores)") is None


def test_device_tag() -> None:
    assert gpu.device_tag("NVIDIA H200") == "nvidia-h200"
    assert gpu.device_tag("NVIDIA A100-SXM4-80GB") == "nvidia-a100-sxm4-80gb"
    assert gpu.device_tag("???") == "device"


def _header() -> dict[str, Any]:
    return {"benchmark": "gpu", "schema": 1, "smoke": True, "device": "cpu", "environment": {},
            "budget": {}, "cases": []}  # fmt: skip


def test_result_doc_is_rewritten_after_each_record(tmp_path: Path) -> None:
    path = tmp_path / "r" / "gpu-x.json"
    doc = gpu.ResultDoc(path, _header())
    gpu.check_result(json.loads(path.read_text()))
    rec = {"name": "n", "kind": "model_only", "model": "a", "status": "ok", "seconds_spent": 1.0, "fps": 3.0}
    doc.add(rec)
    doc.skip(gpu.Step("s", "compiled", "a"), "torch_tensorrt does not import")
    on_disk = json.loads(path.read_text())
    gpu.check_result(on_disk)
    assert on_disk["measurements"] == [rec]
    assert on_disk["skipped"][0]["reason"] == "torch_tensorrt does not import"
    assert [p.name for p in path.parent.iterdir()] == ["gpu-x.json"]  # no temp file left


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"fps": None}, "no positive fps"),
        ({"status": "failed"}, "without an error"),
    ],
)
def test_check_result_refuses_incomplete_records(change: dict[str, Any], message: str) -> None:
    rec = {"name": "n", "kind": "e2e_upscale", "model": "a", "status": "ok", "seconds_spent": 1.0, "fps": 3.0}
    doc = {**_header(), "measurements": [{**rec, **change}], "skipped": []}
    with pytest.raises(ValueError, match=message):
        gpu.check_result(doc)
    with pytest.raises(ValueError, match="lacks"):
        gpu.check_result({"benchmark": "gpu"})


def _ctx(tmp_path: Path) -> Any:
    ctx = gpu.Context(device="cpu", smoke=True, workdir=tmp_path, settings=None, peak_tflops=None,
                      min_seconds=0.0, max_iters=1, clip_frames=2)  # fmt: skip
    ctx._models["a"] = {"weights": "test"}
    return ctx


def test_a_failing_step_is_recorded_and_the_run_goes_on(tmp_path: Path) -> None:
    args = gpu.parse_args(["--smoke"])
    ctx = _ctx(tmp_path)
    doc = gpu.ResultDoc(tmp_path / "r.json", _header())
    ctx.doc = doc
    budget = gpu.Budget(60)
    gpu.run_step(ctx, gpu.Step("bad", "no-such-kind", "a"), budget, doc, args)
    gpu.run_step(ctx, gpu.Step("bad2", "no-such-kind", "a"), budget, doc, args)
    recs = json.loads((tmp_path / "r.json").read_text())["measurements"]
    assert [r["status"] for r in recs] == ["failed", "failed"]
    assert "unknown step kind" in recs[0]["error"]


def test_a_step_past_the_budget_is_skipped(tmp_path: Path) -> None:
    clock = FakeClock()
    budget = gpu.Budget(30, clock=clock, reserve_s=5)
    clock.t += 20
    doc = gpu.ResultDoc(tmp_path / "r.json", _header())
    gpu.run_step(
        _ctx(tmp_path), gpu.Step("big", "model_only", "a", estimate_s=90), budget, doc, gpu.parse_args([])
    )
    on_disk = json.loads((tmp_path / "r.json").read_text())
    assert on_disk["measurements"] == [] and "budget: 5 s left" in on_disk["skipped"][0]["reason"]


@pytest.mark.slow
def test_smoke_run_on_cpu_measures_every_kind(tmp_path: Path, cli_env: dict[str, str]) -> None:
    """``bench/gpu.py --smoke`` end to end on the CPU: every step kind runs (or is skipped with a
    reason, such as torch-tensorrt not importing) and the result file passes the schema check."""
    import subprocess

    out = tmp_path / "gpu-smoke.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "gpu.py"), "--smoke", "--out", str(out),
         "--workdir", str(tmp_path)],
        env=cli_env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(out.read_text())
    gpu.check_result(doc)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for m in doc["measurements"]:
        by_kind.setdefault(m["kind"], []).append(m)
    failed = [(m["name"], m.get("error")) for m in doc["measurements"] if m["status"] != "ok"]
    assert not failed, failed
    assert {"model_only", "e2e_upscale", "e2e_chunk", "profile", "compiled"} <= by_kind.keys()
    assert {"decode", "h2d", "model", "d2h", "encode", "mux"} <= by_kind["profile"][0]["stages"].keys()
    assert doc["environment"]["torch"] and doc["environment"]["cpu"]
    reasons = [s["reason"] for s in doc["skipped"]]
    assert all(r.startswith("torch_tensorrt does not import") for r in reasons), reasons


def test_without_stored_weights_a_random_init_is_saved_and_loadable(tmp_path: Path) -> None:
    """The device benchmark's fallback: same network, random weights, a file the CLI can load."""
    from vsrflow.config import Settings
    from vsrflow.models.loader import load_model

    settings = Settings.from_env({"VSRFLOW_CACHE_DIR": str(tmp_path / "empty-cache")})
    got = gpu.load_or_random("realesr-animevideov3", settings, tmp_path)
    assert got["weights"].startswith("random init, seed 0")
    assert got["path"] == tmp_path / "realesr-animevideov3.random.pth"
    assert load_model(got["path"]).descriptor.scale == 4  # detected from the saved keys
