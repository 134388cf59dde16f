"""``engine.cache.UpscalerCache``: one load per model (every scale a view of it), bounded LRU eviction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vsrflow.config import Settings
from vsrflow.engine.cache import UpscalerCache
from vsrflow.engine.upscaler import Upscaler
from vsrflow.models import loader
from vsrflow.models.store import WeightStore

MODEL, OTHER = "realesr-animevideov3", "SPAN_x2_ch48"  # both in the test weight store (model_env)
LOAD_MODEL = loader.load_model  # the real one (the tests count calls through a wrapper)


@pytest.fixture
def settings(model_env: dict[str, str]) -> Settings:
    return Settings(cache_dir=Path(model_env["VSRFLOW_CACHE_DIR"]), device="cpu")


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Ids passed to ``load_model`` (the real one still runs)."""
    calls: list[str] = []

    def counting(spec: Any, store: Any = None) -> Any:
        calls.append(spec.id)
        return LOAD_MODEL(spec, store)

    monkeypatch.setattr(loader, "load_model", counting)
    return calls


def test_every_scale_shares_one_load(settings: Settings, loads: list[str]) -> None:
    cache = UpscalerCache(settings)
    up2, up4 = cache.get(MODEL, 2.0), cache.get(MODEL, 4.0)
    assert loads == [MODEL] and cache.loads == 1
    assert up2 is not up4 and up2.module is up4.module and (up2.scale, up4.scale) == (2.0, 4.0)
    assert cache.get(MODEL, 2.0) is up2
    # Sharing the module changes nothing: each view gives what a model of its own gives.
    frames = np.random.default_rng(0).integers(0, 256, (2, 12, 16, 3), dtype=np.uint8)
    store = WeightStore(settings.weights_dir)
    for view in (up4, up2):
        fresh = LOAD_MODEL(MODEL, store)
        alone = Upscaler(fresh.module, fresh.descriptor, scale=view.scale, device="cpu")
        assert np.array_equal(view.upscale_frames(frames), alone.upscale_frames(frames))


@pytest.mark.parametrize(("max_models", "expected"), [(1, [MODEL, OTHER, MODEL]), (2, [MODEL, OTHER])])
def test_least_recently_used_model_is_dropped(
    settings: Settings, loads: list[str], max_models: int, expected: list[str]
) -> None:
    cache = UpscalerCache(settings, max_models=max_models)
    for model in (MODEL, OTHER, MODEL):
        cache.get(model, 2.0)
    assert loads == expected and cache.loads == len(expected)
    assert len(cache._modules) == max_models
