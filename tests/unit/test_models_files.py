"""User weight files: ``--model path.pth`` resolution, ``vsrflow models inspect``, and bad input
(truncated, not a state dict, missing/extra keys named, wrong scale, NaN weights)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from types import MappingProxyType

import pytest
import torch

from tests.conftest import run_cli
from tests.mediagen import make_video
from vsrflow.errors import InputError, ModelError
from vsrflow.models import arch as archs
from vsrflow.models.arch import rrdbnet
from vsrflow.models.loader import load_model
from vsrflow.models.registry import ModelSpec, get_spec, resolve
from vsrflow.models.store import WeightStore

TINY_RRDB = {"scale": 4, "num_block": 2, "num_feat": 8, "num_grow_ch": 4}
TINY_SRVGG = {"num_conv": 2, "num_feat": 8, "upscale": 4}


def _save(path: Path, arch: str, params: dict[str, object], *, wrap: str | None = "params_ema") -> Path:
    torch.manual_seed(0)
    state = archs.build(arch, params).state_dict()
    torch.save({wrap: state} if wrap else state, path)
    return path


def test_model_path_resolves_to_a_detected_spec(tmp_path: Path) -> None:
    state = rrdbnet.from_basicsr(dict(archs.build("rrdbnet", TINY_RRDB).state_dict()), "esrgan")
    path = tmp_path / "my_esrgan.pth"
    torch.save(state, path)
    spec = resolve(str(path), "anime")  # model wins over preset, as for ids
    assert spec.path == str(path.resolve()) and spec.arch == "rrdbnet" and spec.scale == 4
    assert spec.params["num_block"] == 2 and "esrgan keys" in spec.description
    loaded = load_model(str(path))
    assert loaded.descriptor.scale == 4 and "[user file]" in loaded.provenance
    with torch.no_grad():
        assert loaded.module(torch.rand(1, 3, 8, 8)).shape == (1, 3, 32, 32)
    # The store treats the file as its own location (present, unverified), so presets/`has` work.
    store = WeightStore(tmp_path / "store")
    assert store.has(spec) and store.verify(spec)[0].status == "unverified"


def test_truncated_checkpoint(tmp_path: Path) -> None:
    path = _save(tmp_path / "t.pth", "srvgg", TINY_SRVGG)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cannot read weight file .*t\.pth") as err:
        load_model(path)
    assert err.value.hint and "truncated" in err.value.hint


def test_pickle_that_is_not_a_state_dict(tmp_path: Path) -> None:
    lst = tmp_path / "list.pth"
    torch.save([1, 2, 3], lst)
    with pytest.raises(InputError, match=r"does not contain a state dict \(found list\)"):
        get_spec(str(lst))
    mixed = tmp_path / "mixed.pth"
    torch.save({"conv.weight": torch.zeros(1), "epoch": 3}, mixed)
    with pytest.raises(InputError, match=r"entries epoch are not tensors"):
        get_spec(str(mixed))
    # An arbitrary pickled object is refused by weights_only loading: no code runs.
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps(Path("/etc/passwd")))
    with pytest.raises(InputError, match=r"cannot read weight file"):
        get_spec(str(evil))


def test_nan_weights_are_refused(tmp_path: Path) -> None:
    state = archs.build("srvgg", TINY_SRVGG).state_dict()
    state["body.2.weight"][0, 0, 0, 0] = float("nan")
    path = tmp_path / "nan.pth"
    torch.save(state, path)
    with pytest.raises(InputError, match=r"NaN or infinite values in body\.2\.weight"):
        load_model(path)


def test_missing_and_extra_keys_are_named(tmp_path: Path) -> None:
    state = dict(archs.build("rrdbnet", TINY_RRDB).state_dict())
    del state["conv_hr.bias"]
    missing = tmp_path / "missing.pth"
    torch.save(state, missing)
    with pytest.raises(InputError, match=r"missing keys: conv_hr\.bias"):
        load_model(missing)
    state = dict(archs.build("rrdbnet", TINY_RRDB).state_dict())
    state["body.0.rdb1.extra.weight"] = torch.zeros(1)
    extra = tmp_path / "extra.pth"
    torch.save(state, extra)
    with pytest.raises(InputError, match=r"keys that do not belong to it: body\.0\.rdb1\.extra\.weight"):
        load_model(extra)


def _store_spec(scale: int) -> ModelSpec:
    return ModelSpec(
        id="tiny-rrdb",
        arch="rrdbnet",
        scale=scale,
        params=MappingProxyType(dict(TINY_RRDB, scale=scale)),
        url=None,
        sha256=None,
        size=None,
        license="test",
        tags=(),
        description="tiny",
    )


def test_store_file_for_the_wrong_scale(tmp_path: Path) -> None:
    store = WeightStore(tmp_path)
    spec = _store_spec(4)
    tmp_path.mkdir(exist_ok=True)
    torch.save(archs.build("rrdbnet", dict(TINY_RRDB, scale=2)).state_dict(), store.path_for(spec))
    with pytest.raises(ModelError, match=r"holds x2 weights .* but tiny-rrdb is a x4 model"):
        load_model(spec, store)
    # Extra/missing keys in a store file are ModelErrors naming them (not the user's input).
    state = dict(archs.build("rrdbnet", TINY_RRDB).state_dict())
    state["bogus.weight"] = torch.zeros(1)
    torch.save(state, store.path_for(spec))
    with pytest.raises(ModelError, match=r"unexpected keys: bogus\.weight"):
        load_model(spec, store)


def test_cli_inspect(tmp_path: Path, cli_env: dict[str, str]) -> None:
    good = tmp_path / "g.pth"
    torch.save(rrdbnet.from_basicsr(dict(archs.build("rrdbnet", TINY_RRDB).state_dict()), "old"), good)
    swin = _save(
        tmp_path / "s.pth",
        "swin2sr",
        {"upscale": 4, "img_size": 8, "window_size": 4, "depths": [2], "embed_dim": 8, "num_heads": [2],
         "upsampler": "nearest+conv"},
    )  # fmt: skip
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"\x80\x04not a checkpoint")
    proc = run_cli(["models", "inspect", str(good)], cli_env)
    assert proc.returncode == 0, proc.stderr
    assert "RRDBNet x4 (old keys, nb 2, nf 8, gc 4)" in proc.stdout and "loads strict : yes" in proc.stdout
    proc = run_cli(["models", "inspect", "--json", str(swin)], cli_env)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["arch"] == "swin2sr" and info["scale"] == 4 and info["params"]["upsampler"] == "nearest+conv"
    proc = run_cli(["models", "inspect", str(bad)], cli_env)
    assert proc.returncode == 2 and "cannot read weight file" in proc.stderr and "bad.pth" in proc.stderr


def test_cli_upscale_with_model_path(tmp_path: Path, cli_env: dict[str, str]) -> None:
    weights = _save(tmp_path / "compact.pth", "srvgg", TINY_SRVGG)
    clip = make_video(tmp_path / "in.mp4", size=(32, 24), frames=4)
    out = tmp_path / "out.mp4"
    proc = run_cli(["upscale", str(clip), "-o", str(out), "--model", str(weights), "--scale", "2"], cli_env)
    assert proc.returncode == 0, proc.stderr
    assert "compact.pth (SRVGGNetCompact x4" in proc.stdout and "output: 64x48, 4 frames" in proc.stdout
    missing = run_cli(
        ["upscale", str(clip), "-o", str(tmp_path / "o2.mp4"), "--model", "nope/x.pth"], cli_env
    )
    assert missing.returncode == 2 and "weight file nope/x.pth does not exist" in missing.stderr


def test_job_spec_accepts_an_absolute_weight_path(tmp_path: Path) -> None:
    from vsrflow.workflow.job.spec import JobSpec

    weights = _save(tmp_path / "w.pth", "srvgg", TINY_SRVGG)
    spec = JobSpec(source="/in.mp4", destination="/out.mp4", model=str(weights))
    assert JobSpec.from_json(spec.to_json()) == spec
    first = spec.job_id("src")
    _save(weights, "srvgg", dict(TINY_SRVGG, num_conv=3))  # the file changes: another job
    assert spec.job_id("src") != first
    with pytest.raises(InputError, match="job spec: model"):
        JobSpec(source="/in.mp4", destination="/out.mp4", model="weights/w.pth")  # relative: refused
