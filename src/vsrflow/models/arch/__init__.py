"""Architectures: build a network from (arch, params), describe it, or detect both from weights.

``params`` are plain dicts of constructor keyword arguments so registry entries stay declarative.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from torch import Tensor, nn

from vsrflow.errors import ModelError
from vsrflow.models.arch import rrdbnet, span, srvgg
from vsrflow.models.arch.rrdbnet import RRDBNet, RRDBParams
from vsrflow.models.arch.span import SPAN, SpanParams
from vsrflow.models.arch.srvgg import SRVGGNetCompact, SRVGGParams
from vsrflow.models.descriptor import ModelDescriptor

ArchName = Literal["rrdbnet", "srvgg", "span"]
ARCHS: tuple[ArchName, ...] = ("rrdbnet", "srvgg", "span")

__all__ = [
    "ARCHS",
    "SPAN",
    "ArchName",
    "RRDBNet",
    "SRVGGNetCompact",
    "build",
    "describe",
    "detect",
    "normalize_state",
]


def _params(arch: str, params: Mapping[str, Any]) -> RRDBParams | SRVGGParams | SpanParams:
    cls: type[RRDBParams] | type[SRVGGParams] | type[SpanParams]
    if arch == "rrdbnet":
        cls = RRDBParams
    elif arch == "srvgg":
        cls = SRVGGParams
    elif arch == "span":
        cls = SpanParams
    else:
        raise ModelError(f"unknown architecture {arch!r}", hint=f"known: {', '.join(ARCHS)}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - names)
    if unknown:
        raise ModelError(f"unknown {arch} parameter(s) {unknown}", hint=f"known: {sorted(names)}")
    kwargs = dict(params)
    if "rgb_mean" in kwargs:
        kwargs["rgb_mean"] = tuple(kwargs["rgb_mean"])
    return cls(**kwargs)


def build(arch: str, params: Mapping[str, Any]) -> nn.Module:
    """A freshly initialised network (train mode, fp32, cpu) for ``arch`` with ``params``."""
    p = _params(arch, params)
    kwargs = dataclasses.asdict(p)
    if isinstance(p, RRDBParams):
        return RRDBNet(**kwargs)
    if isinstance(p, SRVGGParams):
        return SRVGGNetCompact(**kwargs)
    return SPAN(**kwargs)


def describe(arch: str, params: Mapping[str, Any]) -> ModelDescriptor:
    """The engine contract (:class:`ModelDescriptor`) for ``arch`` with ``params``."""
    p = _params(arch, params)
    if isinstance(p, RRDBParams):
        return rrdbnet.descriptor(p)
    if isinstance(p, SRVGGParams):
        return srvgg.descriptor(p)
    return span.descriptor(p)


def normalize_state(arch: str, state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename legacy key schemes to ours (RRDBNet ESRGAN/old-arch -> BasicSR); others unchanged."""
    if arch == "rrdbnet":
        return rrdbnet.to_basicsr(state)
    return dict(state)


def detect(state: Mapping[str, Tensor]) -> tuple[ArchName, dict[str, Any]]:
    """Guess the architecture and its parameters from a state dict's keys and shapes."""
    if "conv_1.eval_conv.weight" in state or "conv_1.sk.weight" in state:
        return "span", dataclasses.asdict(span.detect_params(state))
    if "body.0.weight" in state and state["body.0.weight"].ndim == 4:
        return "srvgg", dataclasses.asdict(srvgg.detect_params(state))
    try:
        rrdbnet.detect_scheme(state)
    except ModelError:
        raise ModelError(
            f"cannot recognise the architecture of these weights (first keys: {', '.join(list(state)[:4])})",
            hint="supported: RRDBNet (BasicSR/ESRGAN/old-arch keys), SRVGGNetCompact, SPAN",
        ) from None
    return "rrdbnet", dataclasses.asdict(rrdbnet.detect_params(state))
