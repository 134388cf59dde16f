"""``--batch auto``: frames per model call chosen from the accelerator's free memory.

Policy (documented decision):
    * CPU (and temporal models, which run frame by frame anyway): batch 1. On a CPU a larger
      batch buys nothing measurable and costs latency and memory.
    * CUDA: a probe runs the real Upscaler on one and on two blank frames of the video's size and
      reads the allocator's peak for each; the difference is the memory one more frame costs
      (bytes per frame), the rest is the fixed cost (weights, workspace). The batch is the number of
      frames whose cost fits in :data:`MEMORY_FRACTION` of the memory free after the probe
      (``torch.cuda.mem_get_info``) plus the probe's own fixed cost, capped at :data:`MAX_AUTO_BATCH`.
      The OOM fallback of the Upscaler (tiles) still guards a wrong estimate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

#: Share of the free accelerator memory ``auto`` plans to use (the rest absorbs fragmentation,
#: cuDNN workspaces of other algorithms and the encoder's own use of the card).
MEMORY_FRACTION = 0.8
#: Largest batch ``auto`` picks: past a few frames a GPU is saturated and bigger batches only add
#: latency and memory (the device benchmark measures 1/2/4/8).
MAX_AUTO_BATCH = 8


def parse_batch(text: str) -> int | None:
    """``auto`` -> None; a positive integer -> itself.

    Raises:
        ValueError: anything else (argparse turns it into a usage error naming the option).
    """
    if text.strip().lower() == "auto":
        return None
    value = int(text)
    if value < 1:
        raise ValueError(f"batch {text} must be >= 1 or auto")
    return value


def choose_batch(
    free_bytes: int,
    fixed_bytes: float,
    bytes_per_frame: float,
    *,
    fraction: float = MEMORY_FRACTION,
    max_batch: int = MAX_AUTO_BATCH,
) -> int:
    """Largest batch in [1, max_batch] with ``fixed + batch * per_frame <= fraction * free``.

    ``bytes_per_frame <= 0`` (a probe that saw no growth) gives ``max_batch``; too little memory for
    even one frame gives 1 (the Upscaler's OOM fallback then tiles).
    """
    if bytes_per_frame <= 0:
        return max_batch
    fits = int((fraction * free_bytes - max(0.0, fixed_bytes)) // bytes_per_frame)
    return max(1, min(max_batch, fits))


def auto_batch(
    device_type: str,
    peak_bytes: Callable[[int], int],
    free_bytes: Callable[[], int],
    *,
    temporal: bool = False,
    max_batch: int = MAX_AUTO_BATCH,
) -> tuple[int, dict[str, Any]]:
    """(batch, how it was chosen) for a device.

    Args:
        device_type: ``cpu`` or ``cuda`` (others: 1).
        peak_bytes: ``peak_bytes(n)`` runs the model on ``n`` frames and returns the allocator's
            peak during that call (bytes above the memory in use before it).
        free_bytes: free device memory now (bytes), after the probe released its cache.
        temporal: recurrent models run frame by frame: always 1.
    """
    if device_type != "cuda" or temporal:
        reason = "temporal model (frame by frame)" if temporal else f"{device_type}: batch 1"
        return 1, {"batch": 1, "reason": reason}
    one, two = peak_bytes(1), peak_bytes(2)
    per_frame = float(two - one)
    fixed = float(one) - per_frame
    free = free_bytes()
    batch = choose_batch(free, fixed, per_frame, max_batch=max_batch)
    info = {"batch": batch, "bytes_per_frame": per_frame, "fixed_bytes": fixed, "free_bytes": free}
    return batch, info


def auto_batch_for(upscaler: Any, height: int, width: int) -> tuple[int, dict[str, Any]]:
    """:func:`auto_batch` for a real :class:`~vsrflow.engine.upscaler.Upscaler` and frame size.

    On CUDA the probe runs ``upscaler.upscale_frames`` on blank uint8 frames of (height, width)
    (a temporal model's state is reset afterwards), measuring ``torch.cuda.max_memory_allocated``.
    """
    import numpy as np
    import torch

    device = upscaler.device

    def peak(n: int) -> int:
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        saved = upscaler.batch
        upscaler.batch = n
        try:
            upscaler.upscale_frames(np.zeros((n, height, width, 3), dtype=np.uint8))
        finally:
            upscaler.batch = saved
            upscaler.reset()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - base)

    def free() -> int:
        torch.cuda.empty_cache()
        return int(torch.cuda.mem_get_info(device)[0])

    batch, info = auto_batch(device.type, peak, free, temporal=bool(upscaler.temporal))
    log.info("batch auto: %s", info)
    return batch, info
