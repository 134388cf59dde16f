"""Swin2SR: parity with an independent implementation (HuggingFace transformers), strict loading of
official key names and buffers, mask recomputation/caching, window padding, detection, descriptor."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

# A declared test dependency (the `dev` extra): a missing install fails loudly, never skips.
import transformers
from torch import Tensor
from torch.nn import functional as F

from vsrflow.models import arch as archs
from vsrflow.models.arch import swin2sr
from vsrflow.models.arch.swin2sr import Swin2SR, Swin2SRParams
from vsrflow.models.checkpoint import load_strict
from vsrflow.models.detect import detect_arch
from vsrflow.models.registry import REGISTRY, resolve


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny tensors: intra-op threads only contend on a loaded 2-core runner (50x slower there)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Tiny configurations: the real models are C=180, depths/heads [6]*6, window 8 (seconds -> hours).
TINY: dict[str, Any] = dict(
    img_size=16, window_size=4, depths=(2, 2), embed_dim=16, num_heads=(2, 4), mlp_ratio=2.0
)
HEADS = [
    ("pixelshuffle", 2),
    ("pixelshuffle", 4),
    ("pixelshuffledirect", 2),
    ("nearest+conv", 4),
    ("pixelshuffle_aux", 4),
]


def _hf_model(upsampler: str, scale: int, seed: int = 0) -> Any:
    cfg = transformers.Swin2SRConfig(
        image_size=TINY["img_size"],
        patch_size=1,
        num_channels=3,
        num_channels_out=3,
        embed_dim=TINY["embed_dim"],
        depths=list(TINY["depths"]),
        num_heads=list(TINY["num_heads"]),
        window_size=TINY["window_size"],
        mlp_ratio=TINY["mlp_ratio"],
        qkv_bias=True,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        drop_path_rate=0.0,
        upscale=scale,
        img_range=1.0,
        resi_connection="1conv",
        upsampler=upsampler,
    )
    torch.manual_seed(seed)
    model = transformers.Swin2SRForImageSuperResolution(cfg).eval()
    # Random weights well away from the initialisation (identity-ish LayerNorms, zero biases), so
    # every parameter matters for the comparison. logit_scale crosses the ln(100) clamp in the
    # unshifted blocks; shifted blocks stay below ln(20) because HF adds the -100 shift mask twice
    # (a deviation from mv-lab that only shows when a masked logit can compete with the row max).
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("logit_scale"):
                shifted = int(name.split(".layers.")[1].split(".")[0]) % 2 == 1
                p.copy_(torch.empty_like(p).uniform_(0.0, 3.0 if shifted else 5.5))
            elif "layernorm" in name and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            else:
                p.copy_(0.1 * torch.randn_like(p))
    return model


_LAYER = [
    (r"^swin2sr\.encoder\.stages\.(\d+)\.layers\.(\d+)\.", r"layers.\1.residual_group.blocks.\2."),
    (r"^swin2sr\.encoder\.stages\.(\d+)\.conv\.", r"layers.\1.conv."),
    (r"^swin2sr\.encoder\.stages\.(\d+)\.patch_embed\.projection\.", r"layers.\1.patch_embed.proj."),
]
_BLOCK = {
    "attention.self.logit_scale": "attn.logit_scale",
    "attention.self.continuous_position_bias_mlp.0.weight": "attn.cpb_mlp.0.weight",
    "attention.self.continuous_position_bias_mlp.0.bias": "attn.cpb_mlp.0.bias",
    "attention.self.continuous_position_bias_mlp.2.weight": "attn.cpb_mlp.2.weight",
    "attention.output.dense.weight": "attn.proj.weight",
    "attention.output.dense.bias": "attn.proj.bias",
    "layernorm_before.weight": "norm1.weight",
    "layernorm_before.bias": "norm1.bias",
    "layernorm_after.weight": "norm2.weight",
    "layernorm_after.bias": "norm2.bias",
    "intermediate.dense.weight": "mlp.fc1.weight",
    "intermediate.dense.bias": "mlp.fc1.bias",
    "output.dense.weight": "mlp.fc2.weight",
    "output.dense.bias": "mlp.fc2.bias",
}
_TOP = {
    "swin2sr.first_convolution": "conv_first",
    "swin2sr.embeddings.patch_embeddings.projection": "patch_embed.proj",
    "swin2sr.embeddings.patch_embeddings.layernorm": "patch_embed.norm",
    "swin2sr.layernorm": "norm",
    "swin2sr.conv_after_body": "conv_after_body",
    "upsample.conv_before_upsample": "conv_before_upsample.0",
    "upsample.final_convolution": "conv_last",
    "upsample.conv_up1": "conv_up1",
    "upsample.conv_up2": "conv_up2",
    "upsample.conv_hr": "conv_hr",
    "upsample.conv_bicubic": "conv_bicubic",
    "upsample.conv_aux": "conv_aux",
    "upsample.conv_after_aux.0": "conv_after_aux.0",
    "upsample.conv": "upsample.0",  # UpsampleOneStep (lightweight)
}


def mv_lab_state(hf: Any, buffers: dict[str, Tensor]) -> dict[str, Tensor]:
    """HF Swin2SR weights under mv-lab names (qkv fused, q/v biases split out) + official buffers."""
    out: dict[str, Tensor] = {}
    hf_state = hf.state_dict()
    for key, value in hf_state.items():
        if (
            ".attention.self.query." in key
            or ".attention.self.key." in key
            or ".attention.self.value." in key
        ):
            continue
        new = key
        for pat, rep in _LAYER:
            new = re.sub(pat, rep, new)
        if new.startswith("layers.") and ".residual_group.blocks." in new:
            head, _, leaf = new.partition(".residual_group.blocks.")
            idx, _, rest = leaf.partition(".")
            new = f"{head}.residual_group.blocks.{idx}.{_BLOCK[rest]}"
        elif m := re.match(r"^upsample\.upsample\.convolution_(\d+)\.(weight|bias)$", key):
            new = f"upsample.{2 * int(m[1])}.{m[2]}"
        elif not new.startswith("layers."):
            stem, _, leaf = new.rpartition(".")
            assert stem in _TOP, key
            new = f"{_TOP[stem]}.{leaf}"
        out[new] = value
    for key in hf_state:
        if key.endswith(".attention.self.query.weight"):
            base = key[: -len("query.weight")]
            new_base = out_key_base(key)
            out[new_base + "qkv.weight"] = torch.cat(
                [
                    hf_state[base + "query.weight"],
                    hf_state[base + "key.weight"],
                    hf_state[base + "value.weight"],
                ]
            )
            out[new_base + "q_bias"] = hf_state[base + "query.bias"]
            out[new_base + "v_bias"] = hf_state[base + "value.bias"]
    out.update(buffers)
    return out


def out_key_base(hf_query_key: str) -> str:
    m = re.match(r"^swin2sr\.encoder\.stages\.(\d+)\.layers\.(\d+)\.", hf_query_key)
    assert m
    return f"layers.{m[1]}.residual_group.blocks.{m[2]}.attn."


def _buffers(net: Swin2SR) -> dict[str, Tensor]:
    names = ("relative_coords_table", "relative_position_index", "attn_mask")
    return {k: v for k, v in net.state_dict().items() if k.rsplit(".", 1)[-1] in names}


def _pair(upsampler: str, scale: int) -> tuple[Any, Swin2SR, dict[str, Tensor]]:
    hf = _hf_model(upsampler, scale)
    params = dict(TINY, upscale=scale, upsampler=upsampler)
    ours = archs.build("swin2sr", params).eval()
    assert isinstance(ours, Swin2SR)
    state = mv_lab_state(hf, _buffers(ours))
    load_strict(ours, state, source="hf->mv-lab")
    return hf, ours, state


def _hf_reference(hf: Any, x: Tensor, upsampler: str, scale: int) -> Tensor:
    if upsampler != "pixelshuffle_aux":
        return hf(x).reconstruction  # type: ignore[no-any-return]
    # HF feeds the aux head a bicubic resize of the RAW pixels; mv-lab resizes the padded,
    # mean-subtracted input. Run HF's modules with the mv-lab bicubic input.
    h, w = x.shape[-2:]
    mean = hf.swin2sr.mean
    bicubic = F.interpolate(x - mean, size=(h * scale, w * scale), mode="bicubic", align_corners=False)
    feats = hf.swin2sr(x).last_hidden_state
    rec, _aux = hf.upsample(feats, bicubic, h, w)
    return rec / hf.swin2sr.img_range + mean  # type: ignore[no-any-return]


@pytest.mark.parametrize(("upsampler", "scale"), HEADS)
def test_parity_with_transformers(upsampler: str, scale: int) -> None:
    hf, ours, _ = _pair(upsampler, scale)
    torch.manual_seed(1)
    # 16x16 = the training size (stored masks); 24x12 another size (recomputed masks).
    for h, w in ((16, 16), (24, 12)):
        x = torch.rand(2, 3, h, w)
        with torch.no_grad():
            ref = _hf_reference(hf, x, upsampler, scale)
            got = ours(x)
        assert got.shape == (2, 3, h * scale, w * scale)
        diff = (got - ref).abs().max().item()
        assert diff < 1e-5, f"{upsampler} x{scale} {h}x{w}: max abs diff {diff}"
        assert ref.abs().max().item() > 0.1  # a real signal, not two zeros


def test_buffers_match_transformers() -> None:
    hf, ours, _ = _pair("pixelshuffle", 2)
    for stage in range(2):
        hf_attn = hf.swin2sr.encoder.stages[stage].layers[0].attention.self
        our_attn = ours.layers[stage].residual_group.blocks[0].attn
        torch.testing.assert_close(our_attn.relative_coords_table, hf_attn.relative_coords_table)
        assert torch.equal(our_attn.relative_position_index, hf_attn.relative_position_index)
        hf_layer = hf.swin2sr.encoder.stages[stage].layers[1]
        mask = hf_layer.get_attn_mask(16, 16, dtype=torch.float32)
        assert torch.equal(ours.layers[stage].residual_group.blocks[1].attn_mask, mask)


def test_padding_matches_padded_reference() -> None:
    """A non-window-multiple input == the HF model on the reflect-padded input, cropped."""
    hf, ours, _ = _pair("nearest+conv", 4)
    x = torch.rand(1, 3, 13, 10)
    padded = F.pad(F.pad(x, (0, 0, 0, 3), mode="reflect"), (0, 2, 0, 0), mode="reflect")
    with torch.no_grad():
        ref = hf(padded).reconstruction[..., : 13 * 4, : 10 * 4]
        got = ours(x)
    assert got.shape == (1, 3, 52, 40)
    assert (got - ref).abs().max().item() < 1e-5


def test_tiny_frame_below_window_uses_replicate_padding() -> None:
    ours = archs.build("swin2sr", dict(TINY, upscale=2, upsampler="pixelshuffledirect")).eval()
    with torch.no_grad():
        y = ours(torch.rand(1, 3, 1, 2))
    assert y.shape == (1, 3, 2, 4)
    assert torch.isfinite(y).all()


def test_masks_cached_per_size_and_stored_mask_used_at_training_size() -> None:
    ours = archs.build("swin2sr", dict(TINY, upscale=2)).eval()
    assert isinstance(ours, Swin2SR)
    with torch.no_grad():
        ours(torch.rand(1, 3, 16, 16))
        assert ours.cached_masks == 0  # training size: the stored attn_mask buffers
        ours(torch.rand(1, 3, 24, 12))
        assert ours.cached_masks == 1  # one mask shared by every shifted block
        ours(torch.rand(1, 3, 24, 12))
        ours(torch.rand(2, 3, 21, 9))  # pads to 24x12: same mask
        assert ours.cached_masks == 1
        ours(torch.rand(1, 3, 8, 8))
        assert ours.cached_masks == 2
    # A cached mask equals a freshly computed one.
    torch.testing.assert_close(
        ours._masks.get(24, 12, 4, 2, torch.device("cpu"), torch.float32), swin2sr.shift_mask(24, 12, 4, 2)
    )


def test_strict_loading_names_missing_buffer() -> None:
    _, _, state = _pair("pixelshuffle", 2)
    state = dict(state)
    del state["layers.1.residual_group.blocks.1.attn_mask"]
    fresh = archs.build("swin2sr", dict(TINY, upscale=2))
    with pytest.raises(Exception, match=r"missing keys: layers\.1\.residual_group\.blocks\.1\.attn_mask"):
        load_strict(fresh, state)


@pytest.mark.parametrize(("upsampler", "scale"), HEADS)
def test_detection_recovers_params(upsampler: str, scale: int) -> None:
    _, _, state = _pair(upsampler, scale)
    found = detect_arch(state)
    assert found.arch == "swin2sr"
    assert found.scale == scale
    p = Swin2SRParams(**found.params)
    assert (p.upsampler, p.upscale, p.embed_dim, p.depths, p.num_heads) == (
        upsampler,
        scale,
        16,
        (2, 2),
        (2, 4),
    )
    assert (p.window_size, p.img_size, p.mlp_ratio) == (4, 16, 2.0)
    rebuilt = archs.build("swin2sr", found.params)
    load_strict(rebuilt, state)


def test_official_full_size_key_layout() -> None:
    """The classical x2 model (C=180, [6]*6, window 8, img 64) has the official key count and shapes."""
    net = archs.build("swin2sr", {"upscale": 2, "img_size": 64})
    sd = net.state_dict()
    assert sd["layers.5.residual_group.blocks.5.attn_mask"].shape == (64, 64, 64)
    assert sd["layers.0.residual_group.blocks.0.attn.relative_coords_table"].shape == (1, 15, 15, 2)
    assert sd["layers.0.residual_group.blocks.0.attn.relative_position_index"].shape == (64, 64)
    assert sd["layers.0.residual_group.blocks.0.attn.qkv.weight"].shape == (540, 180)
    assert "layers.0.residual_group.blocks.0.attn_mask" not in sd  # unshifted blocks carry none
    assert sd["upsample.0.weight"].shape == (256, 64, 3, 3)
    assert sd["conv_before_upsample.0.weight"].shape == (64, 180, 3, 3)
    assert "mean" not in sd
    found = detect_arch(sd)
    assert found.params["img_size"] == 64 and found.params["window_size"] == 8


def test_descriptor_tiles_by_default_and_flops() -> None:
    d = archs.describe("swin2sr", {"upscale": 4, "upsampler": "nearest+conv"})
    assert d.default_tile == swin2sr.DEFAULT_TILE and d.size_multiple == 8 and d.receptive_radius is None
    # Reference cost: 25.4 / 26.6 MFLOP per LR pixel for the classical x2 / x4 models.
    assert swin2sr.flops_per_pixel(Swin2SRParams(upscale=2)) / 1e6 == pytest.approx(25.4, abs=0.1)
    assert swin2sr.flops_per_pixel(Swin2SRParams(upscale=4)) / 1e6 == pytest.approx(26.6, abs=0.1)


# --------------------------------------------------------------------------- registry, presets, engine


@pytest.mark.parametrize("model_id", [i for i, s in REGISTRY.items() if s.arch == "swin2sr"])
def test_registry_entries_build_and_match_their_detection(model_id: str) -> None:
    spec = REGISTRY[model_id]
    assert spec.url is not None and spec.url.startswith(
        "https://github.com/mv-lab/swin2sr/releases/download/"
    )
    assert spec.url.endswith(f"/{model_id}.pth")
    assert spec.sha256 is None and spec.license == "Apache-2.0"  # none published: not invented
    net = archs.build("swin2sr", spec.params)
    found = detect_arch(net.state_dict())
    assert found.arch == "swin2sr" and found.scale == spec.scale
    assert Swin2SRParams(**found.params) == Swin2SRParams(**spec.params)


def test_live_action_prefers_swin2sr_realworld_when_present(caplog: pytest.LogCaptureFixture) -> None:
    realworld = "Swin2SR_RealworldSR_X4_64_BSRGAN_PSNR"
    assert resolve(None, "live-action", scale=4, available=lambda s: True).id == realworld
    with caplog.at_level(logging.WARNING, logger="vsrflow.models.registry"):
        chosen = resolve(None, "live-action", scale=4, available=lambda s: s.id != realworld)
    assert chosen.id == "RealESRGAN_x4plus"
    assert f"{realworld} not present" in caplog.text and "falling back to RealESRGAN_x4plus" in caplog.text
    # Without knowledge of the store, the preset never picks a model it cannot fetch offline.
    assert resolve(None, "live-action").id == "RealESRGAN_x4plus"


class _Recorder(torch.nn.Module):
    """Stand-in with Swin2SR's contract that records the region sizes the engine feeds it."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self.sizes: list[tuple[int, int]] = []
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        self.sizes.append((int(x.shape[-2]), int(x.shape[-1])))
        return F.interpolate(x, scale_factor=self.scale, mode="nearest")


def test_engine_tiles_swin2sr_by_default_at_1080p() -> None:
    """Default tiling bounds every model call to (tile + 2*pad)^2 input pixels on a 1080p frame."""
    from vsrflow.engine.upscaler import Upscaler

    d = archs.describe("swin2sr", REGISTRY["Swin2SR_RealworldSR_X4_64_BSRGAN_PSNR"].params)
    rec = _Recorder(4)
    up = Upscaler(rec, d, device="cpu", precision="fp32")
    assert up.tile == swin2sr.DEFAULT_TILE and up.tile_pad == 32
    out = up.upscale_frames(np.zeros((1, 1080, 1920, 3), dtype=np.uint8))
    assert out.shape == (1, 4320, 7680, 3)
    limit = swin2sr.DEFAULT_TILE + 2 * 32
    assert len(rec.sizes) > 1 and all(h <= limit and w <= limit for h, w in rec.sizes)
    assert all(h % 8 == 0 and w % 8 == 0 for h, w in rec.sizes)  # window multiples: no inner padding
    # tile=0 forces whole frames (the caller's explicit choice).
    rec.sizes.clear()
    Upscaler(rec, d, device="cpu", precision="fp32", tile=0).upscale_frames(
        np.zeros((1, 60, 100, 3), np.uint8)
    )
    assert rec.sizes == [(64, 104)]


def test_engine_runs_tiny_swin2sr_tiled_close_to_whole_frame() -> None:
    """Real network through the engine: tiled (pad 32 > the tiny model's reach) == whole frame."""
    from vsrflow.engine.upscaler import Upscaler

    params = dict(TINY, upscale=2, upsampler="pixelshuffledirect")
    torch.manual_seed(0)
    net = archs.build("swin2sr", params)
    whole_net = archs.build("swin2sr", params)
    whole_net.load_state_dict(net.state_dict())
    d = archs.describe("swin2sr", params)
    frames = np.random.default_rng(0).integers(0, 256, (2, 40, 52, 3), dtype=np.uint8)
    tiled = Upscaler(net, d, device="cpu", precision="fp32", tile=16, tile_pad=32).upscale_frames(frames)
    whole = Upscaler(whole_net, d, device="cpu", precision="fp32", tile=0).upscale_frames(frames)
    assert tiled.shape == whole.shape == (2, 80, 104, 3)
    assert np.abs(tiled.astype(int) - whole.astype(int)).max() <= 1
