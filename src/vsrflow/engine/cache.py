"""Loaded models for a process that runs many chunks (an array task, a model endpoint).

The cache is keyed by a *resolved* model: a registry id or the path of a user weight file, as a
job spec records it (``models.registry.resolve`` already ran where the job was created). It never
resolves a preset itself, so it cannot pick a different network than the one the job names.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from vsrflow.config import Settings
from vsrflow.engine.quality import QualityOptions

log = logging.getLogger(__name__)


@dataclass
class UpscalerCache:
    """Loaded networks, one per (resolved model, device), shared by per-scale Upscaler views.

    Every view uses this cache's device and the model's auto precision
    (:func:`~vsrflow.engine.device.auto_precision`: bf16 on CUDA for models that overflow fp16), so
    the second view's move/cast in ``Upscaler.__init__`` is a no-op on the already converted
    module, and each view keeps its own per-clip state (temporal state, OOM-lowered tile).
    ``loads`` counts ``load_model`` calls.
    ``max_models`` (None: unbounded) keeps at most that many networks, dropping the least recently
    used one (with its views) to load another.
    """

    settings: Settings
    max_models: int | None = None
    loads: int = 0
    _modules: dict[tuple[str, str], Any] = field(default_factory=dict)
    _views: dict[tuple[str, str, float, QualityOptions], Any] = field(default_factory=dict)

    def get(self, model: str, scale: float, quality: QualityOptions | None = None) -> Any:
        """An Upscaler of ``model`` (a registry id or weight-file path, already resolved) at ``scale``.

        The weights come from this machine's store (fetched when the registry has a URL); a model
        whose weights cannot be had raises ModelError naming it: never a silent substitute.
        ``quality`` (default :class:`QualityOptions`: guard on, fallback bicubic, no colour fix)
        sets the view's guard and colour fix; its fallback model loads on the first tripped frame.
        """
        from vsrflow.models.registry import get_spec

        return self.upscaler(get_spec(model), scale, quality)

    def upscaler(self, model: Any, scale: float, quality: QualityOptions | None = None) -> Any:
        """An Upscaler of ``model`` (a resolved ModelSpec) at ``scale``, loading the model once."""
        from vsrflow.engine.upscaler import Upscaler

        quality = quality or QualityOptions()
        loaded, key = self._load(model)
        view = (*key, float(scale), quality)
        if view not in self._views:
            from vsrflow.engine.device import auto_precision, resolve_device

            # bf16 for models whose activations overflow fp16 on CUDA (see device.auto_precision)
            precision = auto_precision(getattr(model, "id", None), resolve_device(key[1]))
            self._views[view] = Upscaler(
                loaded.module,
                loaded.descriptor,
                scale=scale,
                device=key[1],
                precision=precision,
                guard=self.guard(quality, scale),
                colour_fix=quality.colour_fix,
            )
        return self._views[view]

    def guard(self, quality: QualityOptions, scale: float) -> Any:
        """The Guard of ``quality`` (None when off); its fallback is a plain view of this cache."""
        from vsrflow.engine.guard import Guard
        from vsrflow.engine.quality import BICUBIC

        if not quality.guard:
            return None
        fallback = quality.fallback
        if fallback is None:
            return Guard(policy=quality.on_artifact)
        off = QualityOptions(guard=False)
        return Guard(
            policy=quality.on_artifact,
            fallback=lambda: self.get(fallback, scale, off),
            fallback_name=fallback or BICUBIC,
        )

    def _load(self, model: Any) -> tuple[Any, tuple[str, str]]:
        from vsrflow.models.loader import load_model
        from vsrflow.models.store import WeightStore

        key = (str(model.path or model.id), self.settings.device)
        loaded = self._modules.pop(key, None)
        if loaded is None:
            loaded = load_model(model, WeightStore.from_settings(self.settings))
            self.loads += 1
            log.info("loaded %s", loaded.provenance)
            while self.max_models is not None and self._modules and len(self._modules) >= self.max_models:
                self._evict(next(iter(self._modules)))
        self._modules[key] = loaded  # re-inserted last: dict order is least recently used first
        return loaded, key

    def _evict(self, key: tuple[str, str]) -> None:
        from vsrflow.engine.device import release_cached_memory, resolve_device

        self._modules.pop(key)
        for view in [v for v in self._views if v[:2] == key]:
            del self._views[view]
        log.info("unloaded %s on %s (at most %s models kept)", key[0], key[1], self.max_models)
        release_cached_memory(resolve_device(key[1]))
