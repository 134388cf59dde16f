"""Architecture detection from state dicts: every supported layout and hyper-parameter range, and
the error for unknown layouts (closest architecture + keys that did not fit)."""

from __future__ import annotations

import pytest
import torch

from vsrflow.errors import ModelError
from vsrflow.models import arch as archs
from vsrflow.models.arch import rrdbnet, span
from vsrflow.models.checkpoint import load_strict
from vsrflow.models.detect import detect_arch


def _roundtrip(
    arch: str, params: dict[str, object], state: dict[str, torch.Tensor] | None = None
) -> dict[str, object]:
    net = archs.build(arch, params)
    state = dict(net.state_dict()) if state is None else state
    found = detect_arch(state)
    assert found.arch == arch
    rebuilt = archs.build(found.arch, found.params)
    load_strict(rebuilt, archs.normalize_state(found.arch, state))  # the detection really fits
    return dict(found.params)


_SIZES = [(1, 1, 8, 4), (2, 2, 16, 8), (4, 3, 12, 6), (8, 2, 8, 8)]


# Old-arch ESRGAN files exist only for x4/x8 (that code had no pixel-unshuffle): no x1/x2 case.
@pytest.mark.parametrize(
    ("scheme", "scale", "nb", "nf", "gc"),
    [
        (scheme, *size)
        for scheme in ("basicsr", "esrgan", "old")
        for size in _SIZES
        if scheme != "old" or size[0] >= 4
    ],
)
def test_rrdbnet_all_key_schemes_and_sizes(scheme: str, scale: int, nb: int, nf: int, gc: int) -> None:
    params = {"scale": scale, "num_block": nb, "num_feat": nf, "num_grow_ch": gc}
    net = archs.build("rrdbnet", params)
    state = rrdbnet.from_basicsr(dict(net.state_dict()), scheme)  # type: ignore[arg-type]
    found = _roundtrip("rrdbnet", params, state)
    assert (found["scale"], found["num_block"], found["num_feat"], found["num_grow_ch"]) == (
        scale,
        nb,
        nf,
        gc,
    )
    assert detect_arch(state).variant.startswith(f"RRDBNet x{scale} ({scheme} keys")


@pytest.mark.parametrize(("num_conv", "upscale"), [(1, 2), (16, 4), (32, 4), (5, 3)])
def test_srvgg_any_depth(num_conv: int, upscale: int) -> None:
    found = _roundtrip("srvgg", {"num_conv": num_conv, "upscale": upscale, "num_feat": 8})
    assert (found["num_conv"], found["upscale"], found["num_feat"]) == (num_conv, upscale, 8)


@pytest.mark.parametrize("form", ["full", "eval"])
@pytest.mark.parametrize(("channels", "upscale"), [(48, 4), (52, 2)])
def test_span_both_forms(form: str, channels: int, upscale: int) -> None:
    net = archs.build("span", {"feature_channels": channels, "upscale": upscale, "form": "full"})
    state = dict(net.state_dict())
    if form == "eval":
        state = span.fuse_state_dict(state)
    found = _roundtrip("span", {}, state)
    assert (found["feature_channels"], found["upscale"], found["form"]) == (channels, upscale, form)


def test_egvsr_official_layout() -> None:
    found = _roundtrip("egvsr", {"nf": 32, "nb": 3})
    assert (found["nf"], found["nb"]) == (32, 3)
    assert detect_arch(archs.build("egvsr", {}).state_dict()).scale == 4


def test_unknown_layout_names_closest_arch_and_misfit_keys() -> None:
    state = dict(archs.build("srvgg", {"num_conv": 2, "num_feat": 4}).state_dict())
    state["tail.proj.weight"] = torch.zeros(3, 3)
    state["tail.proj.bias"] = torch.zeros(3)
    with pytest.raises(ModelError) as err:
        detect_arch(state)
    text = str(err.value)
    assert "SRVGGNetCompact" in text and "tail.proj.weight" in text and "tail.proj.bias" in text

    alien = {"encoder.layer.0.weight": torch.zeros(2, 2), "decoder.out.bias": torch.zeros(2)}
    with pytest.raises(ModelError, match=r"no key matches a known layout.*encoder\.layer\.0\.weight"):
        detect_arch(alien)


def test_partial_layout_says_what_it_resembles() -> None:
    state = dict(archs.build("rrdbnet", {"num_block": 2, "num_feat": 8, "num_grow_ch": 4}).state_dict())
    del state["body.0.rdb1.conv1.weight"]
    with pytest.raises(ModelError) as err:
        detect_arch(state)
    assert "closest known architecture: RRDBNet" in str(err.value)
    assert "body.0.rdb1.conv1.weight" in str(err.value)  # the key it needed


def test_swin2sr_jpeg_variant_is_refused_clearly() -> None:
    params = {"upscale": 2, "img_size": 8, "window_size": 4, "depths": [2], "embed_dim": 8, "num_heads": [2]}
    net = archs.build("swin2sr", params)
    state = {
        k: v for k, v in net.state_dict().items() if not k.startswith(("upsample.", "conv_before_upsample."))
    }
    with pytest.raises(ModelError, match="JPEG/denoising variant"):
        detect_arch(state)
