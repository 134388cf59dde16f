"""Specs for user weight files (``--model path/to/file.pth``): read, detect, describe.

Contract: :func:`spec_from_file` returns a :class:`ModelSpec` with ``path`` set (absolute), the
detected ``arch``/``params``/``scale`` and ``url``/``sha256`` None, so every code path that takes a
model id (upscale, submit, the workflow stages, serving) also takes a file. A file that is not
usable weights (missing, truncated, not a state dict, NaN/Inf values, unknown layout) raises
:class:`InputError`: it is the user's input, not a broken installation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from torch import Tensor

from vsrflow.errors import InputError, ModelError
from vsrflow.models.checkpoint import read_state_dict
from vsrflow.models.detect import Detection, detect_arch
from vsrflow.models.registry import ModelSpec


@dataclass(frozen=True)
class Inspection:
    """What a weight file holds: detection result, tensor count and parameter count."""

    path: Path
    detection: Detection
    tensors: int
    parameters: int


def _read(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        raise InputError(f"weight file {path} does not exist", hint="check the --model path")
    try:
        return read_state_dict(path)
    except ModelError as exc:
        raise InputError(exc.message, hint=exc.hint) from None


def inspect_file(path: Path) -> tuple[Inspection, dict[str, Tensor]]:
    """Read ``path`` and detect its architecture; InputError naming the file on any problem."""
    path = Path(path)
    state = _read(path)
    try:
        found = detect_arch(state)
    except ModelError as exc:
        raise InputError(f"{path}: {exc.message}", hint=exc.hint) from None
    params = sum(int(v.numel()) for v in state.values() if v.is_floating_point())
    return Inspection(path, found, len(state), params), state


def spec_from_file(path: Path) -> ModelSpec:
    """A registry-like spec for a local weight file (architecture detected from its state dict)."""
    info, _ = inspect_file(path)
    found = info.detection
    params: dict[str, Any] = dict(found.params)
    return ModelSpec(
        id=path.stem,
        arch=found.arch,
        scale=found.scale,
        params=MappingProxyType(params),
        url=None,
        sha256=None,
        size=path.stat().st_size,
        license="unknown (user-supplied file)",
        tags=(),
        description=found.variant,
        path=str(path.resolve()),
    )


def describe_file(path: Path) -> dict[str, Any]:
    """JSON-able description of a weight file, after proving it loads with ``strict=True``.

    Keys: ``arch``, ``variant``, ``scale``, ``params``, ``tensors``, ``parameters``, ``temporal``.
    InputError when the file is unusable (message names the file and the problem).
    """
    from vsrflow.models import arch as archs
    from vsrflow.models.checkpoint import load_strict

    info, state = inspect_file(Path(path))
    found = info.detection
    try:
        state = archs.normalize_state(found.arch, state)
        params = dict(found.params)
        module = archs.build(found.arch, params)
        load_strict(module, state, source=str(path))
        descriptor = archs.describe(found.arch, params)
    except ModelError as exc:
        raise InputError(exc.message, hint=exc.hint) from None
    return {
        "arch": found.arch,
        "variant": found.variant,
        "scale": found.scale,
        "params": dict(found.params),
        "tensors": info.tensors,
        "parameters": info.parameters,
        "temporal": descriptor.temporal,
    }
