"""Checkpoint reading: wrapper unwrapping, prefixes, and clear errors for bad files."""

from __future__ import annotations

import pickle
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from vsrflow.errors import ModelError
from vsrflow.models import arch as archs
from vsrflow.models.checkpoint import WRAPPER_KEYS, extract_state_dict, load_strict, read_state_dict

PARAMS = {"num_feat": 4, "num_conv": 1, "upscale": 2}


@pytest.fixture()
def state() -> dict[str, torch.Tensor]:
    return dict(archs.build("srvgg", PARAMS).state_dict())


@pytest.mark.parametrize("key", WRAPPER_KEYS)
def test_unwraps_each_wrapper(tmp_path: Path, state: dict[str, torch.Tensor], key: str) -> None:
    path = tmp_path / "w.pth"
    torch.save({key: state, "epoch": 3}, path)
    assert read_state_dict(path).keys() == state.keys()


def test_prefers_params_ema_and_reads_raw(tmp_path: Path, state: dict[str, torch.Tensor]) -> None:
    other = {k: torch.zeros_like(v) for k, v in state.items()}
    got = extract_state_dict({"params": other, "params_ema": state})
    assert all(torch.equal(got[k], state[k]) for k in state)
    torch.save(OrderedDict(state), tmp_path / "raw.pth")
    assert read_state_dict(tmp_path / "raw.pth").keys() == state.keys()


@pytest.mark.parametrize("prefix", ["module.", "netG.", "module.netG."])
def test_strips_shared_prefix(state: dict[str, torch.Tensor], prefix: str) -> None:
    wrapped = {"state_dict": {prefix + k: v for k, v in state.items()}}
    assert set(extract_state_dict(wrapped)) == set(state)


def test_partial_prefix_is_kept(state: dict[str, torch.Tensor]) -> None:
    mixed = {("module." + k if i else k): v for i, (k, v) in enumerate(state.items())}
    assert set(extract_state_dict(mixed)) == set(mixed)


def test_truncated_file(tmp_path: Path, state: dict[str, torch.Tensor]) -> None:
    path = tmp_path / "w.pth"
    torch.save(state, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match=r"cannot read weight file .*w\.pth") as info:
        read_state_dict(path)
    assert info.value.hint and "fetch it again" in info.value.hint


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        read_state_dict(tmp_path / "nope.pth")


def test_pickle_that_is_not_a_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "list.pth"
    torch.save([1, 2, 3], path)
    with pytest.raises(ModelError, match="does not contain a state dict"):
        read_state_dict(path)
    path2 = tmp_path / "mixed.pth"
    torch.save({"weight": torch.zeros(1), "note": "hello"}, path2)
    with pytest.raises(ModelError, match=r"entries '?note'? are not tensors"):
        read_state_dict(path2)


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("this must never run",))


def test_arbitrary_pickle_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    with path.open("wb") as fh:
        pickle.dump({"x": _Evil()}, fh, protocol=2)
    with pytest.raises(ModelError, match="cannot read weight file"):
        read_state_dict(path)


def test_nan_weights_are_named(state: dict[str, torch.Tensor]) -> None:
    state["body.2.bias"] = torch.full_like(state["body.2.bias"], float("nan"))
    with pytest.raises(ModelError, match=r"NaN or infinite values in body\.2\.bias"):
        extract_state_dict(state)


def test_missing_and_extra_keys_are_named(state: dict[str, torch.Tensor]) -> None:
    net = archs.build("srvgg", PARAMS)
    broken = dict(state)
    del broken["body.0.bias"]
    broken["body.9.weight"] = torch.zeros(1)
    with pytest.raises(ModelError) as info:
        load_strict(net, broken, source="test.pth")
    text = str(info.value)
    assert "missing keys: body.0.bias" in text and "unexpected keys: body.9.weight" in text
    assert "test.pth" in text


def test_shape_mismatch_is_named(state: dict[str, torch.Tensor]) -> None:
    net = archs.build("srvgg", {**PARAMS, "num_feat": 5})
    with pytest.raises(ModelError, match=r"shape mismatch body\.0\.weight"):
        load_strict(net, state)
