"""Map ncnn layer weights onto our state-dict keys, per architecture.

The mapping is positional over the weight-bearing layers (ncnn keeps ONNX graph order, which is
the PyTorch forward order) and is checked against the layer types, the graph's attributes that
the architecture fixes (upsampling mode, activation slope, input normalisation) and every tensor
shape of a freshly built module. Any mismatch is a :class:`ModelError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from vsrflow.errors import ModelError
from vsrflow.models import arch as archs
from vsrflow.models.arch.span import DEFAULT_RGB_MEAN
from vsrflow.models.ncnn import Layer, LayerWeights


def _conv_names_rrdbnet(params: Mapping[str, Any]) -> list[str]:
    names = ["conv_first"]
    for b in range(int(params.get("num_block", 23))):
        names += [f"body.{b}.rdb{r}.conv{c}" for r in (1, 2, 3) for c in range(1, 6)]
    names += ["conv_body", "conv_up1", "conv_up2"]
    if int(params.get("scale", 4)) == 8:
        names.append("conv_up3")
    return [*names, "conv_hr", "conv_last"]


def _names_srvgg(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    n = int(params.get("num_conv", 16))
    prelu = params.get("act_type", "prelu") == "prelu"
    seq: list[tuple[str, str]] = []
    for i in range(n + 1):
        seq.append(("Convolution", f"body.{2 * i}"))
        if prelu:
            seq.append(("PReLU", f"body.{2 * i + 1}"))
    seq.append(("Convolution", f"body.{2 * n + 2}"))
    return seq


def _names_span() -> list[tuple[str, str]]:
    seq = [("MemoryData", "mean"), ("Convolution", "conv_1.eval_conv")]
    for b in range(1, 7):
        seq += [("Convolution", f"block_{b}.c{c}_r.eval_conv") for c in (1, 2, 3)]
    seq += [("Convolution", "conv_2.eval_conv"), ("Convolution", "conv_cat"), ("Convolution", "upsampler.0")]
    return seq


def _check_graph(arch: str, params: Mapping[str, Any], layers: Sequence[Layer], source: str) -> None:
    def fail(what: str) -> ModelError:
        return ModelError(f"{source}: not a {arch} graph with {dict(params)}: {what}")

    interps = [ly for ly in layers if ly.type == "Interp"]
    if arch == "rrdbnet":
        n_up = 3 if int(params.get("scale", 4)) == 8 else 2
        if len(interps) != n_up or any(ly.int(0) != 1 for ly in interps):
            raise fail(f"expected {n_up} nearest Interp layers, found {[ly.get(0) for ly in interps]}")
    elif arch == "srvgg":
        # The residual is a nearest upsample of the input (the UP2X/UP3X files add a bicubic
        # resize after it and are different graphs).
        if [ly.int(0) for ly in interps] != [1]:
            raise fail("expected exactly one nearest Interp (the input residual)")
        shuffles = [ly.int(0) for ly in layers if ly.type == "PixelShuffle"]
        if shuffles != [int(params.get("upscale", 4))]:
            raise fail(f"PixelShuffle factors {shuffles}")
    elif arch == "span":
        muls = [ly for ly in layers if ly.type == "BinaryOp" and ly.int(0) == 2 and ly.int(1) == 1]
        if not muls or abs(muls[0].float(2) - float(params.get("img_range", 255.0))) > 1e-3:
            raise fail("input scaling by img_range not found")


def state_dict_from_ncnn(
    arch: str,
    params: Mapping[str, Any],
    layers: Sequence[Layer],
    weights: Sequence[LayerWeights],
    *,
    source: str = "<ncnn>",
) -> dict[str, Tensor]:
    """Build a state dict for ``build(arch, params)`` from parsed ncnn weights (strict-loadable).

    For SPAN the result is the eval form (``params['form']`` must be ``"eval"`` or absent).
    """
    params = dict(params)
    if arch == "span":
        if params.get("form", "eval") != "eval":
            raise ModelError("ncnn SPAN files hold the fused eval form; use params form='eval'")
        params["form"] = "eval"
    _check_graph(arch, params, layers, source)
    if arch == "rrdbnet":
        seq = [("Convolution", n) for n in _conv_names_rrdbnet(params)]
    elif arch == "srvgg":
        seq = _names_srvgg(params)
    elif arch == "span":
        seq = _names_span()
    else:
        raise ModelError(f"no ncnn mapping for architecture {arch!r}")
    if len(seq) != len(weights):
        raise ModelError(f"{source}: {len(weights)} weight layers, {arch} with {params} needs {len(seq)}")
    state: dict[str, Tensor] = {}
    for (ltype, name), lw in zip(seq, weights, strict=True):
        if lw.layer.type != ltype:
            raise ModelError(
                f"{source}: layer {lw.layer.name} is {lw.layer.type}, expected {ltype} for {name}"
            )
        if name == "mean":
            mean = tuple(float(v) for v in lw.tensors[0].flatten())
            want = tuple(params.get("rgb_mean", DEFAULT_RGB_MEAN))
            if len(mean) != 3 or max(abs(a - b) for a, b in zip(mean, want, strict=True)) > 1e-6:
                raise ModelError(f"{source}: SPAN rgb_mean {mean} differs from {want}")
            continue
        if ltype == "PReLU":
            state[f"{name}.weight"] = lw.tensors[0]
        else:
            state[f"{name}.weight"] = lw.tensors[0]
            if len(lw.tensors) > 1:
                state[f"{name}.bias"] = lw.tensors[1]
    model = archs.build(arch, params)
    expected = model.state_dict()
    for key, tensor in expected.items():
        got = state.get(key)
        if got is None or tuple(got.shape) != tuple(tensor.shape):
            raise ModelError(
                f"{source}: {key} has shape {None if got is None else tuple(got.shape)}, "
                f"{arch} with {params} expects {tuple(tensor.shape)}"
            )
    extra = sorted(set(state) - set(expected))
    if extra:
        raise ModelError(f"{source}: unexpected tensors {extra}")
    return {k: state[k].to(torch.float32).contiguous() for k in expected}
