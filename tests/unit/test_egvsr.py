"""EGVSR: official structure and keys, the flow/upsample/warp/space_to_depth conventions,
determinism, recurrent inference in the engine (chunked == unchunked with warm-up), temporal
behaviour on synthetic motion, and chunk warm-up decoding from a real video."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor
from torch.nn import functional as F

from tests.mediagen import make_video
from vsrflow.engine.upscaler import Upscaler
from vsrflow.models import arch as archs
from vsrflow.models.arch import egvsr
from vsrflow.models.arch.egvsr import EGVSR, backward_warp, space_to_depth
from vsrflow.models.checkpoint import load_strict

TINY = {"nf": 16, "nb": 2}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny tensors: intra-op threads only contend on a loaded 2-core runner (50x slower there)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def official_keys(nf: int = 64, nb: int = 10) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the official FRNet (EGVSR, BD) state dict, written out from its definition."""
    keys: dict[str, tuple[int, ...]] = {}

    def conv(name: str, cin: int, cout: int) -> None:
        keys[f"{name}.weight"] = (cout, cin, 3, 3)
        keys[f"{name}.bias"] = (cout,)

    for stage, (cin, cout) in {
        "encoder1": (6, 32), "encoder2": (32, 64), "encoder3": (64, 128),
        "decoder1": (128, 256), "decoder2": (256, 128), "decoder3": (128, 64),
    }.items():  # fmt: skip
        conv(f"fnet.{stage}.0", cin, cout)
        conv(f"fnet.{stage}.2", cout, cout)
    conv("fnet.flow.0", 64, 32)
    conv("fnet.flow.2", 32, 2)
    conv("srnet.conv_in.0", 17 * 3, nf)
    for i in range(nb):
        conv(f"srnet.resblocks.{i}.conv.0", nf, nf)
        conv(f"srnet.resblocks.{i}.conv.2", nf, nf)
    for i in (0, 2):  # ConvTranspose2d weights are (in, out, k, k)
        keys[f"srnet.conv_up.{i}.weight"] = (nf, nf, 3, 3)
        keys[f"srnet.conv_up.{i}.bias"] = (nf,)
    conv("srnet.conv_out", nf // 16, 3)
    keys["upsample_func.kernels"] = (4, 4)
    keys["srnet.upsample_func.kernels"] = (4, 4)
    return keys


def _official_state(nf: int = 64, nb: int = 10, seed: int = 0) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {k: 0.05 * torch.randn(shape, generator=g) for k, shape in official_keys(nf, nb).items()}
    state["upsample_func.kernels"] = egvsr.cubic_kernels()
    state["srnet.upsample_func.kernels"] = egvsr.cubic_kernels()
    return state


def _tiny(seed: int = 0, damp: float | None = None) -> EGVSR:
    net = archs.build("egvsr", TINY)
    assert isinstance(net, EGVSR)
    load_strict(net, _official_state(**TINY, seed=seed))
    if damp is not None:  # weaken the recurrent path (inputs 3.. of conv_in are the warped HR frame)
        with torch.no_grad():
            net.srnet.conv_in[0].weight[:, 3:] *= damp
    return net.eval()


def test_official_keys_load_strict() -> None:
    net = archs.build("egvsr", {})
    sd = net.state_dict()
    assert {k: tuple(v.shape) for k, v in sd.items()} == official_keys()
    load_strict(net, _official_state())
    # Files saved without the (deterministic) kernel buffers are completed; wrong kernels refused.
    state = _official_state()
    del state["upsample_func.kernels"]
    load_strict(net, archs.normalize_state("egvsr", state))
    state["srnet.upsample_func.kernels"] = torch.ones(4, 4)
    with pytest.raises(Exception, match="BD cubic kernels"):
        archs.normalize_state("egvsr", state)


def test_space_to_depth_tensorflow_order() -> None:
    x = torch.arange(2 * 3 * 8 * 12, dtype=torch.float32).view(2, 3, 8, 12)
    y = space_to_depth(x, 4)
    assert y.shape == (2, 48, 2, 3)
    for dy in range(4):
        for dx in range(4):
            for c in range(3):
                # tf.space_to_depth (NHWC) flattens (dy, dx, c): channel (dy*4 + dx)*C + c.
                assert torch.equal(y[:, (dy * 4 + dx) * 3 + c], x[:, c, dy::4, dx::4])
    assert torch.equal(F.pixel_shuffle(y.view(2, 16, 3, 2, 3).transpose(1, 2).reshape(2, 48, 2, 3), 4), x)


def test_backward_warp_conventions() -> None:
    x = torch.arange(5 * 7, dtype=torch.float32).view(1, 1, 5, 7)
    zero = torch.zeros(1, 2, 5, 7)
    torch.testing.assert_close(backward_warp(x, zero), x)  # align_corners=True: exact identity
    right = torch.zeros(1, 2, 5, 7)
    right[:, 0] = 1.0  # sample one pixel to the right
    out = backward_warp(x, right)
    torch.testing.assert_close(out[..., :-1], x[..., 1:])
    torch.testing.assert_close(out[..., -1], x[..., -1])  # border padding repeats the edge
    half = torch.zeros(1, 2, 5, 7)
    half[:, 1] = 0.5  # bilinear between rows
    torch.testing.assert_close(backward_warp(x, half)[..., :-1, :], (x[..., :-1, :] + x[..., 1:, :]) / 2)


def test_cubic_upsampler() -> None:
    up = egvsr.BicubicUpsample(4)
    const = torch.full((1, 2, 5, 6), 0.7)
    torch.testing.assert_close(up(const), torch.full((1, 2, 20, 24), 0.7))
    x = torch.rand(1, 1, 5, 6, dtype=torch.float64)
    out = up.double()(x)
    torch.testing.assert_close(out[..., ::4, ::4], x)  # phase 0 reproduces the samples

    def keys(t: float, a: float = -0.75) -> float:  # Keys (1981) cubic convolution kernel
        t = abs(t)
        return (a + 2) * t**3 - (a + 3) * t**2 + 1 if t <= 1 else a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a

    def sample(i: int, d: int, axis_len: int, line: Tensor) -> float:
        return sum(float(line[min(max(i + k, 0), axis_len - 1)]) * keys(d / 4 - k) for k in (-1, 0, 1, 2))

    # Separable: rows first then columns, each HR pixel (4i + d) from taps i-1..i+2 (edge-replicated).
    rows = torch.tensor(
        [[sample(i, d, 5, x[0, 0, :, c]) for c in range(6)] for i in range(5) for d in range(4)]
    )
    ref = torch.tensor([[sample(j, d, 6, rows[r]) for j in range(6) for d in range(4)] for r in range(20)])
    torch.testing.assert_close(out[0, 0], ref.double())


def test_shapes_flow_range_and_determinism() -> None:
    net = _tiny()
    clip = torch.rand(3, 3, 20, 28)  # not multiples of 8: exercises the reflect flow padding
    with torch.no_grad():
        flow = net.fnet(clip[1:2], clip[0:1])
        a = net(clip)
        b = _tiny()(clip)
    assert flow.shape == (1, 2, 16, 24) and flow.abs().max() <= 24
    assert a.shape == (3, 3, 80, 112) and torch.equal(a, b)
    with pytest.raises(Exception, match="at least 8x8"):
        net.step(torch.rand(1, 3, 7, 9))


def test_first_frame_equals_srnet_on_zeros_and_state_matters() -> None:
    net = _tiny()
    clip = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        y0, state = net.step(clip[0:1])
        ref = net.srnet(clip[0:1], torch.zeros(1, 48, 16, 16))
        torch.testing.assert_close(y0, ref)
        y1, _ = net.step(clip[1:2], state)
        y1_fresh, _ = net.step(clip[1:2])
    assert (y1 - y1_fresh).abs().max() > 1e-4  # the previous output really feeds the next frame


def _shifting_clip(frames: int, h: int = 16, w: int = 16, seed: int = 0) -> np.ndarray:
    """A random texture moving one pixel right per frame (wrap-around), uint8 (T, H, W, 3)."""
    base = np.random.default_rng(seed).integers(0, 256, (h, w + frames, 3), dtype=np.uint8)
    return np.stack([base[:, frames - t : frames - t + w] for t in range(frames)])


def test_warp_follows_synthetic_motion() -> None:
    """Content moving right by 1 LR px: flow -1 fetches the previous output at the moved position."""
    net = _tiny()
    with torch.no_grad():
        last = net.fnet.flow[2]
        last.weight.zero_()
        last.bias.copy_(torch.tensor([math.atanh(-1 / 24), 0.0]))  # constant flow (-1, 0) LR px
    clip = torch.from_numpy(_shifting_clip(2)).permute(0, 3, 1, 2).float() / 255
    captured: list[Tensor] = []
    hook = net.srnet.register_forward_hook(lambda _m, inp, _out: captured.append(inp[1]))
    with torch.no_grad():
        y0, state = net.step(clip[0:1])
        net.step(clip[1:2], state)
    hook.remove()
    warped = F.pixel_shuffle(captured[1].view(1, 16, 3, 16, 16).transpose(1, 2).reshape(1, 48, 16, 16), 4)
    # The warped previous HR frame is the previous output shifted right by 4 HR px (interior).
    torch.testing.assert_close(warped[..., 8:-8, 12:-8], y0[..., 8:-8, 8:-12], atol=1e-5, rtol=1e-5)


def _engine(net: EGVSR) -> Upscaler:
    return Upscaler(net, archs.describe("egvsr", TINY), device="cpu", precision="fp32")


def _chunked(up: Upscaler, frames: np.ndarray, cut: int, warmup: int) -> np.ndarray:
    up.reset()
    first = up.upscale_frames(frames[:cut])
    up.reset()
    up.warm_up(frames[max(0, cut - warmup) : cut])
    return np.concatenate([first, up.upscale_frames(frames[cut:])])


def test_engine_recurrent_and_chunked_equals_unchunked_with_warmup() -> None:
    frames = _shifting_clip(12)
    up = _engine(_tiny())
    assert up.temporal and up.warmup_frames == egvsr.DEFAULT_WARMUP and up.tile == 0
    up.reset()
    whole = up.upscale_frames(frames)
    up.reset()
    by_two = np.concatenate([up.upscale_frames(frames[i : i + 2]) for i in range(0, 12, 2)])
    assert np.array_equal(whole, by_two)  # successive calls continue the clip
    # Warm-up reaching back to the clip start reproduces the unchunked state exactly.
    assert np.array_equal(_chunked(up, frames, 6, warmup=6), whole)
    # Without warm-up the chunk boundary shows.
    assert not np.array_equal(_chunked(up, frames, 6, warmup=0), whole)


def test_limited_warmup_converges_for_a_contracting_recurrence() -> None:
    """With the default warm-up, a recurrence that forgets (like trained models after a few
    frames) makes chunked output equal unchunked within float tolerance."""
    frames = _shifting_clip(20)
    net = _tiny(damp=0.1)
    up = _engine(net)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    up.reset()
    whole = up.upscale_tensor(x)
    cut, w = 14, egvsr.DEFAULT_WARMUP
    up.reset()
    up.warm_up(frames[cut - w : cut])
    warm = up.upscale_tensor(x[cut:])
    up.reset()
    cold = up.upscale_tensor(x[cut:])
    err_warm = (warm - whole[cut:]).abs().max().item()
    err_cold = (cold - whole[cut:]).abs().max().item()
    assert err_warm < 1e-5 < err_cold


def test_decode_chunk_yields_warmup_frames(tmp_path: Path) -> None:
    from vsrflow.media.probe import probe
    from vsrflow.workflow.job.chunk_io import decode_chunk
    from vsrflow.workflow.job.plan import Chunk

    for codec in ("libx264", "ffv1"):  # one keyframe at 0 / every frame a keyframe
        video = make_video(tmp_path / f"{codec}.mkv", size=(32, 24), frames=30, codec=codec)
        info = probe(video)
        everything = Chunk(0, 0, 30, 0, 10**9, 0)
        all_frames = list(decode_chunk(video, info, everything, warmup=5))  # first chunk: none
        assert [f.index for f in all_frames] == list(range(30))
        pts = [f.pts for f in all_frames]
        chunk = Chunk(1, 20, 30, pts[20], pts[29] + (pts[1] - pts[0]), 20 if codec == "ffv1" else 0)
        got = list(decode_chunk(video, info, chunk, warmup=8))
        assert [f.index for f in got] == list(range(12, 30))
        assert [f.pts for f in got] == pts[12:]
        for f in got:
            assert np.array_equal(f.image, all_frames[f.index].image)
        plain = list(decode_chunk(video, info, chunk))
        assert [f.index for f in plain] == list(range(20, 30))


def test_flops_match_field_notes() -> None:
    assert egvsr.flops_per_pixel(egvsr.EGVSRParams()) / 1e6 == pytest.approx(1.79, abs=0.01)
