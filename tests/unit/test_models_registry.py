"""Registry entries, presets and resolution."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vsrflow.errors import InputError
from vsrflow.models import arch as archs
from vsrflow.models.registry import DEFAULT_PRESET, PRESETS, REGISTRY, all_specs, get_spec, resolve

REQUIRED = {
    "RealESRGAN_x4plus",
    "RealESRGAN_x4plus_anime_6B",
    "realesr-animevideov3",
    "SPAN_x2_ch48",
    "SPAN_x4_ch48",
}


def test_required_entries_exist_and_build() -> None:
    assert set(REGISTRY) >= REQUIRED
    for spec in all_specs():
        desc = archs.describe(spec.arch, spec.params)
        assert desc.scale == spec.scale, spec.id
        assert spec.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", spec.sha256), spec.id
        assert spec.url is None or spec.url.startswith("https://"), spec.id
        assert spec.url is not None or spec.ncnn is not None, f"{spec.id} has no source at all"
        if spec.ncnn is not None:
            assert re.fullmatch(r"[0-9a-f]{64}", spec.ncnn.sha256)
            assert spec.ncnn.wheel_filename.endswith(".whl")
        assert spec.filename == f"{spec.id}.pth"


def test_offline_sources_for_required_models() -> None:
    for model_id in REQUIRED:
        assert get_spec(model_id).ncnn is not None


def test_get_spec_unknown_lists_known_ids() -> None:
    with pytest.raises(InputError) as info:
        get_spec("nope")
    assert "RealESRGAN_x4plus" in str(info.value) and "SPAN_x4_ch48" in str(info.value)
    assert get_spec("realesrgan_x4plus").id == "RealESRGAN_x4plus"


def test_presets_reference_known_models() -> None:
    assert set(PRESETS) == {"anime", "live-action", "fidelity"}
    for ids in PRESETS.values():
        assert ids and all(i in REGISTRY for i in ids)


def test_resolve_rules() -> None:
    assert resolve(None, None).id == PRESETS[DEFAULT_PRESET][0]
    assert resolve("SPAN_x2_ch48", "anime").id == "SPAN_x2_ch48"  # model wins
    assert resolve(None, "anime").id == "realesr-animevideov3"
    assert resolve(None, "live-action").id == "RealESRGAN_x4plus"
    assert resolve(None, "fidelity", scale=2).id == "SPAN_x2_ch48"
    only_anime6b = resolve(None, "anime", available=lambda s: s.id == "RealESRGAN_x4plus_anime_6B")
    assert only_anime6b.id == "RealESRGAN_x4plus_anime_6B"
    assert resolve(None, "anime", available=lambda s: False).id == "realesr-animevideov3"
    with pytest.raises(InputError, match="known presets"):
        resolve(None, "cartoon")
    with pytest.raises(InputError, match="unknown model"):
        resolve("x", None)


def test_resolve_scale_rules() -> None:
    """The native-scale rule, owned by ``resolve``: integral asks prefer that native scale;
    a network below the asked scale never serves it (the engine only resizes down)."""
    x2_only = lambda s: s.id == "SPAN_x2_ch48"  # noqa: E731
    assert resolve(None, "fidelity", scale=2.0).id == "SPAN_x2_ch48"  # 2.0 is integral
    assert resolve(None, "fidelity", scale=4, available=x2_only).id == "SPAN_x4_ch48"
    # x3: no native match; SPAN x2 cannot reach it even when only its weights are present.
    assert resolve(None, "fidelity", scale=3, available=x2_only).id == "SPAN_x4_ch48"
    # x1.5: no native preference, both reach it: presence decides (so one store's answer can
    # differ from another's, which is why a job records the id it resolved once).
    assert resolve(None, "fidelity", scale=1.5, available=x2_only).id == "SPAN_x2_ch48"
    assert resolve(None, "fidelity", scale=1.5, available=lambda s: False).id == "SPAN_x4_ch48"
    with pytest.raises(InputError, match=r"preset 'anime' has no model for scale 6") as err:
        resolve(None, "anime", scale=6)
    assert "--model" in str(err.value.hint)


@pytest.mark.parametrize(
    "value", ["./RealESRGAN_x4plus.pth", "/models/net_g.safetensors", "weights/x.pt", "x.pth"]
)
def test_model_given_a_missing_file_path_names_it(value: str) -> None:
    # Paths are model ids too (see test_models_files.py); a missing one is named, not looked up.
    with pytest.raises(InputError, match=r"weight file .* does not exist") as err:
        resolve(value, None)
    assert Path(value).name in str(err.value)


def test_guard_fallback_and_colour_fix_defaults_per_preset() -> None:
    from vsrflow.models.registry import REGISTRY, preset_colour_fix, resolve_fallback

    span = REGISTRY["SPAN_x2_ch48"]
    assert resolve_fallback(None, span, scale=2).id == "realesr-animevideov3"  # type: ignore[union-attr]
    assert resolve_fallback("fidelity", span, scale=2, available=lambda s: False) is None  # not present
    assert resolve_fallback("", span, scale=2) is None  # --model: bicubic
    assert resolve_fallback("anime", REGISTRY["realesr-animevideov3"], scale=4) is None
    assert preset_colour_fix(None) == "off" and preset_colour_fix("") == "off"
    assert preset_colour_fix("anime") == preset_colour_fix("live-action") == "gaussian"
