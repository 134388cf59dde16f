"""Architecture detection: which known network (and hyper-parameters) a state dict belongs to.

Contract: :func:`detect_arch` takes an unwrapped state dict (see
:func:`vsrflow.models.checkpoint.extract_state_dict`) and returns a :class:`Detection` whose
``params`` build a network that loads these weights with ``strict=True`` (after
:func:`vsrflow.models.arch.normalize_state`). It never guesses silently: when no architecture fits,
:class:`ModelError` names the closest known architecture (the one whose key patterns cover most
keys) and the keys that did not fit.

Supported layouts: RRDBNet (BasicSR, xinntao/ESRGAN and old-arch keys; any nb/nf/gc; x1/x2/x4/x8),
SRVGGNetCompact (any depth; PReLU), SPAN (official and fused/ncnn forms), Swin2SR (classical,
lightweight, real-world, compressed heads; any depths/heads/window/embed dim) and EGVSR.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from vsrflow.errors import ModelError
from vsrflow.models.arch import egvsr, rrdbnet, span, srvgg, swin2sr

_W = r"\.(weight|bias)$"

#: Key patterns per architecture: used to rank architectures when nothing fits exactly.
PATTERNS: Mapping[str, tuple[re.Pattern[str], ...]] = {
    "rrdbnet": tuple(
        re.compile(p)
        for p in (
            r"^(conv_first|conv_body|conv_up[123]|conv_hr|conv_last|trunk_conv|upconv[123]|HRconv)" + _W,
            r"^body\.\d+\.rdb[123]\.conv[1-5]" + _W,
            r"^RRDB_trunk\.\d+\.RDB[123]\.conv[1-5]" + _W,
            r"^model\.1\.sub\.\d+\.RDB[123]\.conv[1-5]\.0" + _W,
            r"^model\.(\d+|1\.sub\.\d+)" + _W,
        )
    ),
    "srvgg": (re.compile(r"^body\.\d+" + _W),),
    "span": tuple(
        re.compile(p)
        for p in (
            r"^(conv_1|conv_2|block_\d+\.c[123]_r)\.(sk|conv\.[012]|eval_conv)" + _W,
            r"^(conv_cat|upsampler\.0)" + _W,
        )
    ),
    "swin2sr": tuple(
        re.compile(p)
        for p in (
            r"^(conv_first|conv_after_body(\.\d)?|patch_embed\.(proj|norm)|norm|conv_before_upsample\.0"
            r"|upsample\.\d+|conv_last|conv_up[12]|conv_hr|conv_bicubic|conv_aux|conv_after_aux\.0)" + _W,
            r"^layers\.\d+\.(conv(\.\d)?|patch_embed\.proj)" + _W,
            r"^layers\.\d+\.residual_group\.blocks\.\d+\.(attn_mask|(norm[12]|mlp\.fc[12]|attn\.proj"
            r"|attn\.cpb_mlp\.[02])\.(weight|bias)|attn\.(logit_scale|q_bias|v_bias|qkv\.weight"
            r"|relative_coords_table|relative_position_index))$",
        )
    ),
    "egvsr": tuple(
        re.compile(p)
        for p in (
            r"^fnet\.(encoder[123]|decoder[123]|flow)\.[02]" + _W,
            r"^srnet\.(conv_in\.0|resblocks\.\d+\.conv\.[02]|conv_up\.[02]|conv_out)" + _W,
            r"^(srnet\.)?upsample_func\.kernels$",
        )
    ),
}

_LABELS = {
    "rrdbnet": "RRDBNet (ESRGAN/Real-ESRGAN)",
    "srvgg": "SRVGGNetCompact (Real-ESRGAN compact)",
    "span": "SPAN",
    "swin2sr": "Swin2SR",
    "egvsr": "EGVSR",
}
_MAX_SHOWN = 8


@dataclass(frozen=True)
class Detection:
    """What :func:`detect_arch` found.

    Attributes:
        arch: architecture name (``rrdbnet``, ``srvgg``, ``span``, ``swin2sr``, ``egvsr``).
        params: constructor keyword arguments (plain JSON-able values).
        scale: native scale factor.
        variant: human label, e.g. ``"Swin2SR RealworldSR (nearest+conv)"`` or ``"RRDBNet (esrgan keys)"``.
    """

    arch: str
    params: Mapping[str, Any]
    scale: int
    variant: str


def _fit(arch: str, keys: list[str]) -> list[str]:
    return [k for k in keys if any(p.match(k) for p in PATTERNS[arch])]


def closest(state: Mapping[str, Tensor]) -> tuple[str, list[str], list[str]]:
    """(closest architecture, keys fitting its patterns, keys that do not) for an unknown layout."""
    keys = list(state)
    best = max(PATTERNS, key=lambda a: (len(_fit(a, keys)), -list(PATTERNS).index(a)))
    fitting = set(_fit(best, keys))
    return best, [k for k in keys if k in fitting], [k for k in keys if k not in fitting]


def _names(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_SHOWN])
    return shown + (f" and {len(keys) - _MAX_SHOWN} more" if len(keys) > _MAX_SHOWN else "")


def _unknown(state: Mapping[str, Tensor], reason: str = "") -> ModelError:
    arch, fitting, misfits = closest(state)
    if not fitting:
        return ModelError(
            f"cannot recognise the architecture of these weights{reason}: no key matches a known layout "
            f"(first keys: {_names(list(state))})",
            hint=f"supported: {', '.join(_LABELS.values())}",
        )
    return ModelError(
        f"cannot recognise the architecture of these weights{reason}; closest known architecture: "
        f"{_LABELS[arch]} ({len(fitting)} of {len(state)} keys fit); keys that did not fit: "
        + (_names(misfits) if misfits else "none (but required keys are missing or mis-shaped)"),
        hint=f"supported: {', '.join(_LABELS.values())}",
    )


def _swin2sr_variant(p: swin2sr.Swin2SRParams) -> str:
    names = {
        "pixelshuffle": "ClassicalSR",
        "pixelshuffledirect": "Lightweight",
        "nearest+conv": "RealworldSR",
        "pixelshuffle_aux": "CompressedSR",
    }
    head = f"{p.upsampler}, embed {p.embed_dim}, depths {list(p.depths)}"
    return f"Swin2SR {names[p.upsampler]} x{p.upscale} ({head})"


def _detect_swin2sr(state: Mapping[str, Tensor]) -> Detection:
    p = swin2sr.detect_params(state)
    return Detection("swin2sr", _plain(p), p.upscale, _swin2sr_variant(p))


def _detect_egvsr(state: Mapping[str, Tensor]) -> Detection:
    p = egvsr.detect_params(state)
    return Detection("egvsr", _plain(p), egvsr.SCALE, f"EGVSR x4 (nf {p.nf}, {p.nb} residual blocks)")


def _detect_span(state: Mapping[str, Tensor]) -> Detection:
    p = span.detect_params(state)
    form = span.detect_form(state)
    return Detection(
        "span", _plain(p), p.upscale, f"SPAN x{p.upscale} ({p.feature_channels} channels, {form} form)"
    )


def _detect_srvgg(state: Mapping[str, Tensor]) -> Detection:
    p = srvgg.detect_params(state)
    return Detection(
        "srvgg", _plain(p), p.upscale, f"SRVGGNetCompact x{p.upscale} ({p.num_conv} convs, {p.num_feat} feat)"
    )


def _detect_rrdbnet(state: Mapping[str, Tensor]) -> Detection:
    scheme = rrdbnet.detect_scheme(state)
    p = rrdbnet.detect_params(state)
    return Detection(
        "rrdbnet",
        _plain(p),
        p.scale,
        f"RRDBNet x{p.scale} ({scheme} keys, nb {p.num_block}, nf {p.num_feat}, gc {p.num_grow_ch})",
    )


def _plain(params: Any) -> dict[str, Any]:
    out = dataclasses.asdict(params)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


_DETECTORS: tuple[
    tuple[str, Callable[[Mapping[str, Tensor]], bool], Callable[[Mapping[str, Tensor]], Detection]], ...
] = (
    (
        "egvsr",
        lambda s: "srnet.conv_in.0.weight" in s or any(k.startswith("fnet.") for k in s),
        _detect_egvsr,
    ),
    ("swin2sr", lambda s: any(".residual_group.blocks." in k for k in s), _detect_swin2sr),
    ("span", lambda s: "conv_1.eval_conv.weight" in s or "conv_1.sk.weight" in s, _detect_span),
    (
        "srvgg",
        lambda s: "body.0.weight" in s and s["body.0.weight"].ndim == 4 and "conv_first.weight" not in s,
        _detect_srvgg,
    ),
    (
        "rrdbnet",
        lambda s: "conv_first.weight" in s or any(k.startswith(("RRDB_trunk.", "model.1.sub.")) for k in s),
        _detect_rrdbnet,
    ),
)


def detect_arch(state: Mapping[str, Tensor]) -> Detection:
    """Detect the architecture of ``state`` (see module docstring); ModelError when none fits."""
    for arch, applies, detect in _DETECTORS:
        if not applies(state):
            continue
        try:
            found = detect(state)
        except (ModelError, KeyError, IndexError, ValueError) as exc:
            raise _unknown(state, f" (looks like {_LABELS[arch]} but: {exc})") from None
        _check_fit(found, state)
        return found
    raise _unknown(state)


def _check_fit(found: Detection, state: Mapping[str, Tensor]) -> None:
    """Every key must match the detected architecture's patterns (names the ones that do not)."""
    misfits = [k for k in state if not any(p.match(k) for p in PATTERNS[found.arch])]
    if misfits:
        raise ModelError(
            f"weights look like {found.variant} but have keys that do not belong to it: {_names(misfits)}",
            hint="a modified or different architecture; only the official layouts are supported",
        )
