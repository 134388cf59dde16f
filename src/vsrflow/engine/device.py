"""Device and precision resolution for the engine.

Turns the user-facing strings (``--device auto|cpu|cuda|cuda:N``, ``--precision
auto|fp32|fp16|bf16``) into torch objects once, with errors that name the bad value, and holds
the small CUDA helpers (OOM detection, cache release) the Upscaler needs.

Precision policy (documented decision):
    * ``auto`` is fp16 on CUDA and fp32 on CPU.
    * ``fp16`` on CPU falls back to fp32 with a warning: CPU half-precision convolutions are
      slow or missing for many ops and never faster than fp32, and fp32 gives an output at least
      as accurate as fp16 would have. Failing a long CLI run for that request helps nobody.
    * ``bf16`` is honoured on CPU (oneDNN supports it) and on CUDA devices that support it;
      a CUDA device without bf16 support raises :class:`InputError`.
"""

from __future__ import annotations

import logging
import re

import torch

from vsrflow.errors import InputError

log = logging.getLogger(__name__)

DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N")
PRECISION_CHOICES = ("auto", "fp32", "fp16", "bf16")

_PRECISIONS: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "fp16": torch.float16,
    "bf16": torch.bfloat16,
}

_CUDA_RE = re.compile(r"^cuda(?::(\d+))?$")


def resolve_device(spec: str) -> torch.device:
    """Resolve a device string to a :class:`torch.device`.

    ``auto`` picks ``cuda`` (the current CUDA device) when CUDA is available, else ``cpu``.
    ``cuda``/``cuda:N`` must name an existing device.

    Raises:
        InputError: unknown spelling, CUDA unavailable, or ``N`` out of range.
    """
    s = spec.strip().lower()
    if s == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")
    if s == "cpu":
        return torch.device("cpu")
    m = _CUDA_RE.match(s)
    if m is None:
        raise InputError(
            f"device {spec!r} is not supported",
            hint=f"use one of {', '.join(DEVICE_CHOICES)}",
        )
    if not torch.cuda.is_available():
        raise InputError(
            f"device {spec!r} requested but CUDA is not available to this torch build ({torch.__version__})",
            hint="use --device cpu or auto, or install a CUDA build of torch",
        )
    count = torch.cuda.device_count()
    index = int(m.group(1)) if m.group(1) is not None else torch.cuda.current_device()
    if index >= count:
        raise InputError(
            f"device {spec!r} does not exist: this machine has {count} CUDA device(s)",
            hint=f"use cuda:0 .. cuda:{count - 1}",
        )
    return torch.device("cuda", index)


def resolve_precision(spec: str, device: torch.device) -> torch.dtype:
    """Resolve a precision string for ``device`` to the compute dtype.

    See the module docstring for the policy (fp16 on CPU falls back to fp32 with a warning).

    Raises:
        InputError: unknown spelling, or bf16 on a CUDA device without bf16 support.
    """
    s = spec.strip().lower()
    if s == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if s not in _PRECISIONS:
        raise InputError(
            f"precision {spec!r} is not supported",
            hint=f"use one of {', '.join(PRECISION_CHOICES)}",
        )
    dtype = _PRECISIONS[s]
    if device.type == "cpu" and dtype == torch.float16:
        log.warning("precision fp16 is not supported on CPU; using fp32 instead")
        return torch.float32
    if device.type == "cuda" and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise InputError(
            f"precision bf16 is not supported on {device} ({torch.cuda.get_device_name(device)})",
            hint="use --precision fp16 or fp32",
        )
    return dtype


def configure_device(device: torch.device) -> None:
    """One-time backend settings for inference on ``device``.

    On CUDA: make ``device`` current and enable cuDNN autotuning (frames of one video share a
    shape, so the one-off benchmark per shape pays back after a few frames).
    """
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True


def is_oom_error(exc: BaseException) -> bool:
    """True for an accelerator out-of-memory error.

    Covers :class:`torch.OutOfMemoryError` (alias ``torch.cuda.OutOfMemoryError``) and the
    generic ``RuntimeError('... out of memory ...')`` some backends (cuDNN, MPS, older builds)
    raise instead.
    """
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def release_cached_memory(device: torch.device) -> None:
    """Return cached allocator blocks to the driver after an OOM (no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()


#: Models whose fp32 activations exceed fp16's range (65504) on saturated content: the largest
#: |activation| measured on the CPU by ``bench/fp16_range.py`` (bench/results/fp16-range-*.json;
#: a 1-pixel 0/1 checkerboard). ``--precision auto`` runs these in bf16 on CUDA (fp32's range).
#: Measured and NOT listed: realesr-animevideov3 549, RealESRGAN_x4plus 50, SPAN_x4_ch48 12200
#: (5.4x headroom).
FP16_OVERFLOW_MODELS: dict[str, float] = {"SPAN_x2_ch48": 96790.0}


def auto_precision(model_id: str | None, device: torch.device, *, bf16_supported: bool | None = None) -> str:
    """The precision string ``--precision auto`` means for ``model_id`` on ``device``.

    ``bf16`` on CUDA for :data:`FP16_OVERFLOW_MODELS` when the device supports it (else ``fp32``,
    never an overflowing fp16); ``auto`` (fp16 on CUDA, fp32 on CPU) for everything else.
    ``bf16_supported`` None asks the device.
    """
    if device.type != "cuda" or model_id not in FP16_OVERFLOW_MODELS:
        return "auto"
    if bf16_supported is None:
        bf16_supported = bool(torch.cuda.is_bf16_supported())
    choice = "bf16" if bf16_supported else "fp32"
    log.info("%s overflows fp16 (activations up to %.0f): running it in %s", model_id,
             FP16_OVERFLOW_MODELS[model_id], choice)  # fmt: skip
    return choice
