"""Does a model overflow in fp16? The largest activation of every layer, measured in fp32 on the CPU.

fp16 holds magnitudes up to 65504; a network whose intermediate activations exceed that on some
content produces inf/NaN under fp16 autocast and needs bf16 (same range as fp32). The measurement
needs no GPU: run the model in fp32 with forward hooks on every leaf module and record the largest
``|output|`` per layer, on content that drives activations hardest (saturated white, black, a
1-pixel 0/1 checkerboard, uniform noise) and on a real frame (bikes.mp4).

Usage: ``python bench/fp16_range.py [--size 48]`` -> bench/results/fp16-range-<host>.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FP16_MAX = 65504.0
MODELS = ("realesr-animevideov3", "RealESRGAN_x4plus", "SPAN_x2_ch48", "SPAN_x4_ch48")


def _inputs(size: int, settings: Any) -> dict[str, Any]:
    import numpy as np
    import torch

    s = size
    yy, xx = np.mgrid[0:s, 0:s]
    board = ((xx + yy) % 2).astype(np.float32)
    out = {
        "white": torch.ones(1, 3, s, s),
        "black": torch.zeros(1, 3, s, s),
        "checkerboard_1px": torch.from_numpy(np.broadcast_to(board, (1, 3, s, s)).copy()),
        "uniform_noise": torch.rand(1, 3, s, s, generator=torch.Generator().manual_seed(0)),
    }
    bikes = settings.cache_dir / "samples" / "bikes.mp4"
    if bikes.exists():
        from vsrflow.media.reader import FrameReader

        with FrameReader(bikes) as reader:
            img = next(iter(reader)).image[:s, :s]
        out["bikes_frame0_crop"] = torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float() / 255
    return out


def measure(model_id: str, size: int, settings: Any) -> dict[str, Any]:
    import torch

    from vsrflow.models.loader import load_model
    from vsrflow.models.registry import get_spec
    from vsrflow.models.store import WeightStore

    loaded = load_model(get_spec(model_id), WeightStore(settings.weights_dir))
    module = loaded.module.eval()
    worst: dict[str, tuple[float, str]] = {}
    current: dict[str, float] = {}

    def hook(name: str) -> Any:
        def f(_m: Any, _i: Any, out: Any) -> None:
            if isinstance(out, torch.Tensor) and out.is_floating_point():
                current[name] = max(current.get(name, 0.0), float(out.detach().abs().max()))

        return f

    leaves = [(n, m) for n, m in module.named_modules() if n and not list(m.children())]
    handles = [m.register_forward_hook(hook(n)) for n, m in leaves]
    per_input = {}
    try:
        for label, x in _inputs(size, settings).items():
            current.clear()
            with torch.inference_mode():
                y = module(x)
            top = max(current.items(), key=lambda kv: kv[1]) if current else ("-", 0.0)
            per_input[label] = {
                "max_abs_activation": top[1],
                "layer": top[0],
                "output_min": float(y.min()),
                "output_max": float(y.max()),
            }
            for name, v in current.items():
                if v > worst.get(name, (0.0, ""))[0]:
                    worst[name] = (v, label)
    finally:
        for h in handles:
            h.remove()
    overall = max(per_input.values(), key=lambda r: r["max_abs_activation"])
    return {
        "model": model_id,
        "weights": loaded.provenance,
        "size": f"{size}x{size}",
        "max_abs_activation": overall["max_abs_activation"],
        "layer": overall["layer"],
        "fp16_headroom": FP16_MAX / overall["max_abs_activation"] if overall["max_abs_activation"] else None,
        "overflows_fp16": overall["max_abs_activation"] > FP16_MAX,
        "per_input": per_input,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=48, help="square input side (LR pixels)")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()

    import torch

    from vsrflow.bench.machine import cpu_name, git_commit, host_tag
    from vsrflow.config import Settings

    settings = Settings.from_env()
    runs = []
    for model in a.models.split(","):
        try:
            r = measure(model, a.size, settings)
        except Exception as exc:  # a model without weights here: say so, measure the others
            r = {"model": model, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}
        runs.append(r)
        keys = ("model", "max_abs_activation", "layer", "overflows_fp16", "error")
        print({k: r[k] for k in keys if k in r})
    doc = {
        "benchmark": "fp16-range",
        "schema": 1,
        "machine": {"cpu": cpu_name(), "host": host_tag()},
        "torch": torch.__version__,
        "git_commit": git_commit(REPO),
        "date": time.strftime("%Y-%m-%d"),
        "method": "fp32 forward with hooks on every leaf module; max |output| per layer; fp16 max 65504",
        "runs": runs,
    }
    out = a.out or REPO / "bench" / "results" / f"fp16-range-{host_tag()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
