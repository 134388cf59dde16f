"""Architectures: strict loading, key schemes, hyper-parameter detection, descriptors."""

from __future__ import annotations

import pytest
import torch

from vsrflow.errors import ModelError
from vsrflow.models import arch as archs
from vsrflow.models.arch import rrdbnet, span, srvgg
from vsrflow.models.checkpoint import load_strict

SMALL = {
    "rrdbnet": {"num_block": 2, "num_feat": 16, "num_grow_ch": 8, "scale": 4},
    "srvgg": {"num_feat": 8, "num_conv": 3, "upscale": 4},
    "span": {"feature_channels": 8, "upscale": 2},
}


def _rand_state(module: torch.nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {k: torch.randn(v.shape, generator=gen) * 0.1 for k, v in module.state_dict().items()}


@pytest.mark.parametrize("arch", sorted(SMALL))
def test_strict_load_round_trip_and_shapes(arch: str) -> None:
    params = SMALL[arch]
    src = archs.build(arch, params)
    dst = archs.build(arch, params)
    load_strict(dst, src.state_dict())
    desc = archs.describe(arch, params)
    x = torch.rand(1, 3, 12, 16)
    with torch.no_grad():
        y = dst.eval()(x)
    assert y.shape == (1, 3, 12 * desc.scale, 16 * desc.scale)
    assert y.dtype == torch.float32


@pytest.mark.parametrize("scale", [1, 2, 4, 8])
@pytest.mark.parametrize("scheme", ["esrgan", "old"])
def test_rrdbnet_key_schemes_load_and_match(scale: int, scheme: rrdbnet.KeyScheme) -> None:
    params = {**SMALL["rrdbnet"], "scale": scale}
    ref = archs.build("rrdbnet", params).eval()
    ref.load_state_dict(_rand_state(ref))
    other = rrdbnet.from_basicsr(ref.state_dict(), scheme)
    assert rrdbnet.detect_scheme(other) == scheme
    assert set(other) != set(ref.state_dict())  # genuinely different names
    assert rrdbnet.detect_params(other) == rrdbnet.RRDBParams(**params)
    net = archs.build("rrdbnet", params).eval()
    load_strict(net, archs.normalize_state("rrdbnet", other))
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(net(x), ref(x))


def test_old_arch_x4_uses_documented_indices() -> None:
    ref = archs.build("rrdbnet", SMALL["rrdbnet"])
    old = rrdbnet.from_basicsr(ref.state_dict(), "old")
    tops = {k.rsplit(".", 1)[0] for k in old if not k.startswith("model.1.sub.")}
    assert tops == {"model.0", "model.3", "model.6", "model.8", "model.10"}
    assert "model.1.sub.2.weight" in old  # trunk conv after num_block=2 blocks
    assert "model.1.sub.1.RDB3.conv5.0.weight" in old
    esr = rrdbnet.from_basicsr(ref.state_dict(), "esrgan")
    assert {"trunk_conv.weight", "upconv1.weight", "upconv2.weight", "HRconv.weight"} <= set(esr)
    assert "RRDB_trunk.1.RDB2.conv3.bias" in esr


def test_rrdbnet_detect_params_reads_gc_nb_scale() -> None:
    params = {"num_block": 3, "num_feat": 24, "num_grow_ch": 12, "scale": 2}
    state = archs.build("rrdbnet", params).state_dict()
    assert archs.detect(state) == ("rrdbnet", {"num_in_ch": 3, "num_out_ch": 3, **params})


def test_rrdbnet_rejects_unknown_state() -> None:
    with pytest.raises(ModelError, match="not an RRDBNet"):
        rrdbnet.detect_scheme({"foo.weight": torch.zeros(1)})
    with pytest.raises(ModelError, match="cannot recognise"):
        archs.detect({"foo.weight": torch.zeros(1)})


def test_srvgg_keys_and_detection() -> None:
    state = archs.build("srvgg", {"num_feat": 8, "num_conv": 16, "upscale": 4}).state_dict()
    assert "body.34.weight" in state and "body.33.weight" in state  # last conv, last PReLU
    arch, params = archs.detect(state)
    assert arch == "srvgg" and params["num_conv"] == 16 and params["upscale"] == 4
    assert params["act_type"] == "prelu"
    relu_state = archs.build("srvgg", {"num_conv": 2, "act_type": "relu"}).state_dict()
    with pytest.raises(ModelError, match="act_type"):
        srvgg.detect_params(relu_state)
    assert srvgg.detect_params(relu_state, act_type="relu").num_conv == 2


def test_srvgg_adds_nearest_upsampled_input() -> None:
    net = archs.build("srvgg", SMALL["srvgg"]).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        x = torch.rand(1, 3, 5, 6)
        assert torch.equal(net(x), torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest"))


def test_span_fusion_matches_training_branches_inside() -> None:
    torch.manual_seed(0)
    conv = span.Conv3XC(4, 6, 2, form="full")
    x = torch.randn(1, 4, 10, 10)
    with torch.no_grad():
        train = conv.train()(x)
        fused = conv.eval()(x)
    # The training path zero-pads before the first 1x1 conv (so its bias leaks into the border);
    # the fused conv pads after: they agree everywhere except the 1-pixel border.
    assert torch.allclose(train[..., 1:-1, 1:-1], fused[..., 1:-1, 1:-1], atol=1e-5)


def test_span_full_and_eval_forms_load_strict_and_agree() -> None:
    full = archs.build("span", {**SMALL["span"], "form": "full"}).eval()
    state = _rand_state(full, seed=3)
    # Garbage in the stored eval_conv must not matter: the branches are the truth (as upstream).
    state["conv_1.eval_conv.weight"] = torch.full_like(state["conv_1.eval_conv.weight"], 7.0)
    load_strict(full, state)
    assert {"conv_1.sk.weight", "block_1.c1_r.conv.1.weight", "conv_1.eval_conv.weight"} <= set(state)
    eval_state = span.fuse_state_dict(state)
    assert span.detect_form(eval_state) == "eval" and span.detect_form(state) == "full"
    assert not any(".sk." in k or ".conv." in k for k in eval_state)
    net = archs.build("span", {**SMALL["span"], "form": "eval"}).eval()
    load_strict(net, eval_state)
    x = torch.rand(1, 3, 9, 7)
    with torch.no_grad():
        assert torch.allclose(full(x), net(x), atol=1e-5)
    arch, params = archs.detect(eval_state)
    assert arch == "span" and params["feature_channels"] == 8 and params["upscale"] == 2


def test_span_eval_form_keys_are_documented() -> None:
    keys = set(archs.build("span", {"form": "eval"}).state_dict())
    convs = ["conv_1", "conv_2"] + [f"block_{b}.c{c}_r" for b in range(1, 7) for c in (1, 2, 3)]
    want = {f"{n}.eval_conv.{t}" for n in convs for t in ("weight", "bias")}
    want |= {"conv_cat.weight", "conv_cat.bias", "upsampler.0.weight", "upsampler.0.bias"}
    assert keys == want


def test_descriptors() -> None:
    x4plus = archs.describe("rrdbnet", {"num_block": 23, "scale": 4})
    assert (x4plus.scale, x4plus.size_multiple, x4plus.receptive_radius) == (4, 1, 349)
    x2 = archs.describe("rrdbnet", {"num_block": 23, "scale": 2})
    assert (x2.size_multiple, x2.min_size) == (2, 2)
    x1 = archs.describe("rrdbnet", {"num_block": 23, "scale": 1})
    assert x1.size_multiple == 4
    assert archs.describe("srvgg", {"num_conv": 16}).receptive_radius == 18
    assert archs.describe("srvgg", {"num_conv": 32}).receptive_radius == 34
    assert archs.describe("span", {"upscale": 2}).receptive_radius == 21


@pytest.mark.parametrize(
    ("arch", "params"),
    [
        ("srvgg", {"num_feat": 4, "num_conv": 3, "upscale": 2}),
        ("span", {"feature_channels": 4, "upscale": 2, "form": "eval"}),
        ("rrdbnet", {"num_block": 1, "num_feat": 4, "num_grow_ch": 4, "scale": 2}),
        ("rrdbnet", {"num_block": 1, "num_feat": 4, "num_grow_ch": 4, "scale": 4}),
    ],
)
def test_receptive_radius_bounds_the_influence(arch: str, params: dict[str, object]) -> None:
    """A pixel farther than the radius never changes the output pixel it should not reach."""
    net = archs.build(arch, params).eval()
    net.load_state_dict(_rand_state(net, seed=5))
    desc = archs.describe(arch, params)
    r = desc.receptive_radius
    assert r is not None
    size = 2 * r + 8 + (2 * r + 8) % 4
    x = torch.rand(1, 3, size, size)
    col = 2  # output column block for input column 2
    far = x.clone()
    far[..., col + r + 1 :] = torch.rand_like(far[..., col + r + 1 :])
    with torch.no_grad():
        a, b = net(x), net(far)
    s = desc.scale
    assert torch.equal(a[..., col * s : (col + 1) * s], b[..., col * s : (col + 1) * s])
