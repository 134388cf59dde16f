"""Read PyTorch checkpoint files safely and load them strictly.

Contract: :func:`read_state_dict` returns a flat ``{name: float tensor}`` on the CPU with wrapper
dicts removed and a shared ``module.``/``netG.`` prefix stripped, or raises :class:`ModelError`
naming the file and the problem (truncated, not a state dict, NaN/Inf weights). Files are read
with ``torch.load(weights_only=True)``: no arbitrary code runs while reading a download.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from vsrflow.errors import ModelError

# Checked in this order: Real-ESRGAN files hold both params and params_ema; the EMA is the release.
WRAPPER_KEYS = ("params_ema", "params", "model_ema", "state_dict", "model", "net", "g_ema")
SHARED_PREFIXES = ("module.", "netG.")
_MAX_NAMES = 8


def _names(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_NAMES])
    return shown + (f" and {len(keys) - _MAX_NAMES} more" if len(keys) > _MAX_NAMES else "")


def read_checkpoint(path: str | Path) -> Any:
    """``torch.load(path, map_location='cpu', weights_only=True)`` with actionable errors."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"weight file {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, RuntimeError, ValueError, OSError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"cannot read weight file {path}: {first_line[:300]}",
            hint="the file is truncated, corrupt or not a PyTorch checkpoint; delete it and fetch it again",
        ) from None


def extract_state_dict(obj: Any, *, source: str = "<checkpoint>") -> dict[str, Tensor]:
    """Unwrap a loaded checkpoint to a flat state dict and validate it (see module docstring)."""
    for _ in range(3):  # wrappers nest at most a couple of levels in the wild
        if not isinstance(obj, Mapping):
            break
        inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping) or not obj:
        raise ModelError(
            f"{source} does not contain a state dict (found {type(obj).__name__})",
            hint="expected a dict of tensors, possibly under params_ema/params/state_dict",
        )
    non_tensor = [str(k) for k, v in obj.items() if not isinstance(v, Tensor)]
    if non_tensor:
        raise ModelError(f"{source} is not a state dict: entries {_names(non_tensor)} are not tensors")
    state = {str(k): v for k, v in obj.items()}
    for prefix in SHARED_PREFIXES:
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise ModelError(
            f"{source} has NaN or infinite values in {_names(bad)}",
            hint="the weights are broken; fetch or import them again",
        )
    return state


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read ``path`` and return its validated, unwrapped state dict."""
    return extract_state_dict(read_checkpoint(path), source=str(path))


def load_strict(module: nn.Module, state: Mapping[str, Tensor], *, source: str = "<weights>") -> None:
    """``module.load_state_dict(state, strict=True)`` with missing/extra/mis-shaped keys named."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing keys: {_names(missing)}")
        if extra:
            parts.append(f"unexpected keys: {_names(extra)}")
        raise ModelError(
            f"{source} does not fit {type(module).__name__}: " + "; ".join(parts),
            hint="wrong architecture or parameters for these weights",
        )
    wrong = [
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if tuple(state[k].shape) != tuple(v.shape)
    ]
    if wrong:
        raise ModelError(
            f"{source} does not fit {type(module).__name__}: shape mismatch {_names(wrong)}",
            hint="wrong architecture parameters (channels, blocks or scale) for these weights",
        )
    module.load_state_dict(dict(state), strict=True)
