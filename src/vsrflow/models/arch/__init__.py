"""Architectures: build a network from (arch, params), describe it, or detect both from weights.

``params`` are plain dicts of constructor keyword arguments so registry entries stay declarative.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal, cast

from torch import Tensor, nn

from vsrflow.errors import ModelError
from vsrflow.models.arch import egvsr, rrdbnet, span, srvgg, swin2sr
from vsrflow.models.arch.egvsr import EGVSR, EGVSRParams
from vsrflow.models.arch.rrdbnet import RRDBNet, RRDBParams
from vsrflow.models.arch.span import SPAN, SpanParams
from vsrflow.models.arch.srvgg import SRVGGNetCompact, SRVGGParams
from vsrflow.models.arch.swin2sr import Swin2SR, Swin2SRParams
from vsrflow.models.descriptor import ModelDescriptor

ArchName = Literal["rrdbnet", "srvgg", "span", "swin2sr", "egvsr"]
ARCHS: tuple[ArchName, ...] = ("rrdbnet", "srvgg", "span", "swin2sr", "egvsr")
AnyParams = RRDBParams | SRVGGParams | SpanParams | Swin2SRParams | EGVSRParams
_PARAMS: dict[str, type[AnyParams]] = {
    "rrdbnet": RRDBParams,
    "srvgg": SRVGGParams,
    "span": SpanParams,
    "swin2sr": Swin2SRParams,
    "egvsr": EGVSRParams,
}

__all__ = [
    "ARCHS",
    "EGVSR",
    "SPAN",
    "ArchName",
    "RRDBNet",
    "SRVGGNetCompact",
    "Swin2SR",
    "build",
    "describe",
    "detect",
    "normalize_state",
]


def _params(arch: str, params: Mapping[str, Any]) -> AnyParams:
    cls = _PARAMS.get(arch)
    if cls is None:
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
    if isinstance(p, Swin2SRParams):
        return Swin2SR(**kwargs)
    if isinstance(p, EGVSRParams):
        return EGVSR(**kwargs)
    return SPAN(**kwargs)


def describe(arch: str, params: Mapping[str, Any]) -> ModelDescriptor:
    """The engine contract (:class:`ModelDescriptor`) for ``arch`` with ``params``."""
    p = _params(arch, params)
    if isinstance(p, RRDBParams):
        return rrdbnet.descriptor(p)
    if isinstance(p, SRVGGParams):
        return srvgg.descriptor(p)
    if isinstance(p, Swin2SRParams):
        return swin2sr.descriptor(p)
    if isinstance(p, EGVSRParams):
        return egvsr.descriptor(p)
    return span.descriptor(p)


def normalize_state(arch: str, state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename legacy key schemes to ours (RRDBNet ESRGAN/old-arch -> BasicSR), add EGVSR's fixed buffers."""
    if arch == "rrdbnet":
        return rrdbnet.to_basicsr(state)
    if arch == "egvsr":
        return egvsr.complete_state(state)
    return dict(state)


def detect(state: Mapping[str, Tensor]) -> tuple[ArchName, dict[str, Any]]:
    """Guess the architecture and its parameters from a state dict's keys and shapes.

    See :func:`vsrflow.models.detect.detect_arch`; unknown layouts raise ModelError naming the
    closest known architecture and the keys that did not fit.
    """
    from vsrflow.models.detect import detect_arch  # detect imports the arch modules: import late

    found = detect_arch(state)
    return cast(ArchName, found.arch), dict(found.params)
