"""ncnn .param/.bin reader and converter on synthetic files (the real files: integration tests)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from vsrflow.errors import ModelError
from vsrflow.models import arch as archs
from vsrflow.models.ncnn import TAG_FP16, Layer, parse_param, read_weights
from vsrflow.models.ncnn_convert import state_dict_from_ncnn


def _conv_line(name: str, src: str, dst: str, out: int, k: int, size: int, extra: str = "") -> str:
    return f"Convolution {name} 1 1 {src} {dst} 0={out} 1={k} 4=1 5=1 6={size} {extra}".strip()


def test_parse_param_arrays_and_numbers() -> None:
    text = "\n".join(
        [
            "7767517",
            "2 2",
            "Input in 0 1 data",
            _conv_line("c", "data", "out", 4, 3, 108, "9=2 -23310=1,2.000000e-01"),
        ]
    )
    layers = parse_param(text)
    assert [ly.type for ly in layers] == ["Input", "Convolution"]
    conv = layers[1]
    assert conv.inputs == ("data",) and conv.outputs == ("out",)
    assert conv.int(0) == 4 and conv.params[10] == (0.2,) and conv.int(9) == 2


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("123\n1 1\nInput in 0 1 data", "magic"),
        ("7767517\n2 1\nInput in 0 1 data", "header says 2 layers"),
        ("7767517\n1 1\nInput in 0 1", "too few blobs"),
        ("7767517\n1 1\nConvolution c 1 1 a b -23310=3,1", "announces 3 values"),
    ],
)
def test_parse_param_errors(text: str, match: str) -> None:
    with pytest.raises(ModelError, match=match):
        parse_param(text)


def _conv_layer(out: int, cin: int, k: int = 3, ltype: str = "Convolution") -> Layer:
    return Layer(ltype, "c", ("a",), ("b",), {0: out, 1: k, 5: 1, 6: out * cin * k * k})


def test_read_weights_fp16_and_fp32() -> None:
    w = np.arange(2 * 3 * 9, dtype=np.float32).reshape(2, 3, 3, 3) / 7
    b = np.array([0.5, -1.0], dtype=np.float32)
    fp16 = struct.pack("<I", TAG_FP16) + w.astype("<f2").tobytes() + b.tobytes()  # 108 bytes: aligned
    (lw,) = read_weights([_conv_layer(2, 3)], fp16)
    assert torch.allclose(lw.tensors[0], torch.from_numpy(w), atol=1e-2)
    assert torch.equal(lw.tensors[1], torch.from_numpy(b))
    fp32 = struct.pack("<I", 0) + w.tobytes() + b.tobytes()
    (lw,) = read_weights([_conv_layer(2, 3)], fp32)
    assert torch.equal(lw.tensors[0], torch.from_numpy(w))


def test_fp16_payload_padding() -> None:
    w = np.ones((1, 1, 3, 3), dtype=np.float32)  # 9 halfs = 18 bytes -> padded to 20
    data = struct.pack("<I", TAG_FP16) + w.astype("<f2").tobytes() + b"\0\0" + np.zeros(1, "<f4").tobytes()
    (lw,) = read_weights([_conv_layer(1, 1)], data)
    assert lw.tensors[0].shape == (1, 1, 3, 3)


def test_read_weights_must_consume_everything() -> None:
    good = struct.pack("<I", 0) + bytes(4 * 18) + bytes(8)
    with pytest.raises(ModelError, match="4 bytes left"):
        read_weights([_conv_layer(2, 1)], good + b"\0\0\0\0")
    with pytest.raises(ModelError, match="ends early"):
        read_weights([_conv_layer(2, 1)], good[:-1])
    with pytest.raises(ModelError, match="unsupported weight encoding tag"):
        read_weights([_conv_layer(2, 1)], struct.pack("<I", 0x000D4B38) + good[4:])
    with pytest.raises(ModelError, match="not supported"):
        read_weights([Layer("LSTM", "l", ("a",), ("b",), {})], b"")


def test_deconvolution_is_transposed() -> None:
    w = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 2, 2)  # ncnn: (out, in, kh, kw)
    data = struct.pack("<I", 0) + w.tobytes() + np.zeros(2, "<f4").tobytes()
    (lw,) = read_weights([_conv_layer(2, 3, k=2, ltype="Deconvolution")], data)
    assert torch.equal(lw.tensors[0], torch.from_numpy(w).permute(1, 0, 2, 3))


def _export_srvgg(state: dict[str, torch.Tensor], num_conv: int, upscale: int) -> tuple[str, bytes]:
    """A minimal ncnn export of an SRVGGNetCompact, fp32-tagged, in the real files' layer order."""
    lines, blobs, blob = [], b"", "x0"
    lines.append("Input in 0 1 data")
    lines.append("Split sp 1 2 data x0 skip")
    for i in range(num_conv + 2):
        w, b = state[f"body.{2 * i}.weight"], state[f"body.{2 * i}.bias"]
        lines.append(_conv_line(f"conv{i}", blob, f"c{i}", w.shape[0], 3, w.numel()))
        blobs += struct.pack("<I", 0) + w.numpy().astype("<f4").tobytes() + b.numpy().astype("<f4").tobytes()
        blob = f"c{i}"
        if i <= num_conv:
            slope = state[f"body.{2 * i + 1}.weight"]
            lines.append(f"PReLU pr{i} 1 1 {blob} p{i} 0={slope.numel()}")
            blobs += slope.numpy().astype("<f4").tobytes()
            blob = f"p{i}"
    lines.append(f"PixelShuffle ps 1 1 {blob} shuf 0={upscale}")
    lines.append(f"Interp up 1 1 skip near 0=1 1={upscale}.0 2={upscale}.0")
    lines.append("BinaryOp add 2 1 shuf near output")
    return "\n".join(["7767517", f"{len(lines)} {len(lines) + 2}", *lines]), blobs


def test_srvgg_conversion_round_trip() -> None:
    params = {"num_feat": 4, "num_conv": 2, "upscale": 2}
    state = {k: torch.randn(v.shape) for k, v in archs.build("srvgg", params).state_dict().items()}
    text, data = _export_srvgg(state, 2, 2)
    layers = parse_param(text)
    converted = state_dict_from_ncnn("srvgg", params, layers, read_weights(layers, data))
    assert converted.keys() == state.keys()
    assert all(torch.equal(converted[k], state[k]) for k in state)
    with pytest.raises(ModelError, match="needs"):
        state_dict_from_ncnn("srvgg", {**params, "num_conv": 3}, layers, read_weights(layers, data))
    with pytest.raises(ModelError, match="PixelShuffle"):
        state_dict_from_ncnn("srvgg", {**params, "upscale": 4}, layers, read_weights(layers, data))
