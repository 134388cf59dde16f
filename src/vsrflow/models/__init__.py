"""Models: architectures, checkpoints, the registry, the weight store and the loader.

Main entry points::

    from vsrflow.models import WeightStore, load_model, resolve
    store = WeightStore.from_settings(settings)
    spec = resolve(model=None, preset="anime")
    loaded = load_model(spec, store)      # LoadedModel(module, spec, descriptor, provenance)

torch is imported by this package's architectures and loader (the layer rules allow it in models/),
lazily: the registry and the weight store do not need it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

#: Public name -> submodule. Imported on first use (PEP 562) so that ``import vsrflow.models.registry``
#: (the CLI's model listing, the Lambda-free layers) does not pay for importing torch.
_LAZY: dict[str, str] = {
    **dict.fromkeys(("SPAN", "RRDBNet", "SRVGGNetCompact", "build", "describe", "detect"), "arch"),
    **dict.fromkeys(("extract_state_dict", "load_strict", "read_state_dict"), "checkpoint"),
    "ModelDescriptor": "descriptor",
    **dict.fromkeys(("LoadedModel", "load_model"), "loader"),
    **dict.fromkeys(
        (
            "DEFAULT_PRESET",
            "PRESETS",
            "REGISTRY",
            "ModelSpec",
            "NcnnSource",
            "all_specs",
            "get_spec",
            "resolve",
        ),
        "registry",
    ),
    **dict.fromkeys(("ImportResult", "Manifest", "VerifyReport", "WeightStore", "how_to_get"), "store"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vsrflow.models' has no attribute {name!r}")
    return getattr(importlib.import_module(f"vsrflow.models.{module}"), name)


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
