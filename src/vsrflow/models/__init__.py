"""Models: architectures, checkpoints, the registry, the weight store and the loader.

Main entry points::

    from vsrflow.models import WeightStore, load_model, resolve
    store = WeightStore.from_settings(settings)
    spec = resolve(model=None, preset="anime")
    loaded = load_model(spec, store)      # LoadedModel(module, spec, descriptor, provenance)

torch is imported by this package (the layer rules allow it in models/).
"""

from __future__ import annotations

from vsrflow.models.arch import SPAN, RRDBNet, SRVGGNetCompact, build, describe, detect
from vsrflow.models.checkpoint import extract_state_dict, load_strict, read_state_dict
from vsrflow.models.descriptor import ModelDescriptor
from vsrflow.models.loader import LoadedModel, load_model
from vsrflow.models.registry import (
    DEFAULT_PRESET,
    PRESETS,
    REGISTRY,
    ModelSpec,
    NcnnSource,
    all_specs,
    get_spec,
    resolve,
)
from vsrflow.models.store import ImportResult, Manifest, VerifyReport, WeightStore, how_to_get

__all__ = [
    "DEFAULT_PRESET",
    "PRESETS",
    "REGISTRY",
    "SPAN",
    "ImportResult",
    "LoadedModel",
    "Manifest",
    "ModelDescriptor",
    "ModelSpec",
    "NcnnSource",
    "RRDBNet",
    "SRVGGNetCompact",
    "VerifyReport",
    "WeightStore",
    "all_specs",
    "build",
    "describe",
    "detect",
    "extract_state_dict",
    "get_spec",
    "how_to_get",
    "load_model",
    "load_strict",
    "read_state_dict",
    "resolve",
]
