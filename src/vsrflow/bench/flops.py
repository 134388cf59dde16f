"""Model cost per low-resolution input pixel and the achievable ceiling on a GPU.

Costs are 2 x multiply-accumulates of the convolutions per LR input pixel, counted from each
architecture's layer shapes. Models missing from the table are measured by
:func:`count_mflop_per_px`, which counts Conv2d/ConvTranspose2d MACs with forward hooks on one
small input: element-wise ops, pixel shuffles and interpolation are ignored (they are < 1 % of
the conv work for these nets).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch only where a module is actually measured
    import torch

#: MFLOP per LR input pixel (2 x MACs), from the layer shapes; anime_6B and SPAN counted with
#: :func:`count_mflop_per_px` (which also gives 35.85 for x4plus and 1.238 for animevideov3, matching
#: the table). The old bench script's 9.8 for anime_6B was wrong: 6 RRDBs are 8.63 MFLOP, and the
#: upsampling convs at 4x/16x the pixels add 2.79.
MFLOP_PER_PX: dict[str, float] = {
    "RealESRGAN_x4plus": 35.9,
    "RealESRGAN_x2plus": 9.0,
    "RealESRGAN_x4plus_anime_6B": 11.41,
    "realesr-animevideov3": 1.24,
    "realesr-general-x4v3": 2.42,
    "SPAN_x2_ch48": 0.82,
    "SPAN_x4_ch48": 0.85,
}

#: Dense fp16/bf16 tensor-core peak of an H100/H200 SXM (TFLOP/s), from NVIDIA's datasheet.
PEAK_TFLOPS_FP16 = 990.0

#: Dense (no sparsity) fp16/bf16 tensor-core peaks with fp32 accumulation, TFLOP/s, from NVIDIA's
#: datasheets, keyed by a substring of ``torch.cuda.get_device_name()``; the first match wins, so
#: more specific names come first. PCIe/NVL variants of H100 run lower clocks (756 TFLOP/s).
DEVICE_PEAK_TFLOPS_FP16: tuple[tuple[str, float], ...] = (
    ("H100 PCIe", 756.0),
    ("H200", 990.0),
    ("H100", 990.0),
    ("A100", 312.0),
    ("L4", 121.0),
)


def peak_tflops_for(device_name: str) -> float | None:
    """Dense fp16/bf16 peak (TFLOP/s) of the GPU named ``device_name``; None when not in the table
    (a CPU, or a GPU whose datasheet figure is not recorded: no ratio is better than a wrong one)."""
    for key, peak in DEVICE_PEAK_TFLOPS_FP16:
        if key.lower() in device_name.lower():
            return peak
    return None


def achieved_tflops(mflop_per_px: float, pixels_per_frame: int, frames: int, seconds: float) -> float:
    """Useful TFLOP/s: ``mflop_per_px * pixels * frames / seconds`` (pixels = LR input pixels).

    Raises:
        ValueError: ``seconds`` <= 0 or a negative count.
    """
    if seconds <= 0 or pixels_per_frame < 0 or frames < 0 or mflop_per_px < 0:
        raise ValueError(f"bad cost inputs: {mflop_per_px=} {pixels_per_frame=} {frames=} {seconds=}")
    return mflop_per_px * 1e6 * pixels_per_frame * frames / seconds / 1e12


def ceiling_fps(mflop_per_px: float, pixels_per_frame: int, peak_tflops: float = PEAK_TFLOPS_FP16) -> float:
    """Frames per second the model could reach if every FLOP ran at ``peak_tflops``."""
    return peak_tflops * 1e12 / (mflop_per_px * 1e6 * pixels_per_frame)


def fraction_of_ceiling(tflops: float, peak_tflops: float = PEAK_TFLOPS_FP16) -> float:
    """Achieved TFLOP/s over the peak (0..1 for any real measurement)."""
    return tflops / peak_tflops


def count_mflop_per_px(module: torch.nn.Module, height: int = 32, width: int = 32) -> float:
    """Count conv MFLOP per input pixel of ``module`` on one (1, 3, height, width) input.

    Every Conv2d/ConvTranspose2d contributes ``2 * out_elements * in_channels/groups * kh * kw``.
    The input size must satisfy the model's size multiple; 32x32 does for every registry model.
    """
    import torch

    total = 0

    def hook(mod: Any, _inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        kh, kw = mod.kernel_size
        per_out = (mod.in_channels // mod.groups) * kh * kw
        total += 2 * output.numel() * per_out

    convs = (torch.nn.Conv2d, torch.nn.ConvTranspose2d)
    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, convs)]
    try:
        param = next(module.parameters(), None)
        x = torch.zeros(1, 3, height, width, dtype=param.dtype if param is not None else torch.float32)
        with torch.inference_mode():
            module(x.to(param.device) if param is not None else x)
    finally:
        for h in handles:
            h.remove()
    return total / (height * width) / 1e6


def mflop_per_px(model_id: str, module: torch.nn.Module | None = None) -> float | None:
    """Table value for ``model_id``, else a hook count on ``module``, else None."""
    if model_id in MFLOP_PER_PX:
        return MFLOP_PER_PX[model_id]
    return None if module is None else count_mflop_per_px(module)
