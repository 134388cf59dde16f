"""Device and precision resolution."""

from __future__ import annotations

import logging

import pytest
import torch

from vsrflow.engine.device import is_oom_error, resolve_device, resolve_precision
from vsrflow.errors import InputError

CPU = torch.device("cpu")


def test_cpu_and_auto() -> None:
    assert resolve_device("cpu") == CPU
    assert resolve_device(" CPU ") == CPU
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


@pytest.mark.parametrize("spec", ["gpu", "cuda:x", "cuda:-1", "mps0", ""])
def test_unknown_device_is_input_error(spec: str) -> None:
    with pytest.raises(InputError, match="not supported"):
        resolve_device(spec)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("spec", ["cuda", "cuda:0"])
def test_cuda_without_cuda_is_input_error(spec: str) -> None:
    with pytest.raises(InputError, match="CUDA is not available"):
        resolve_device(spec)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_missing_cuda_index_is_input_error() -> None:
    with pytest.raises(InputError, match="does not exist"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")
    assert resolve_device("cuda:0") == torch.device("cuda", 0)


def test_precision_resolution_on_cpu(caplog: pytest.LogCaptureFixture) -> None:
    assert resolve_precision("auto", CPU) == torch.float32
    assert resolve_precision("fp32", CPU) == torch.float32
    assert resolve_precision("BF16", CPU) == torch.bfloat16
    with caplog.at_level(logging.WARNING, logger="vsrflow.engine"):
        assert resolve_precision("fp16", CPU) == torch.float32
    assert "not supported on CPU" in caplog.text
    with pytest.raises(InputError, match="fp8"):
        resolve_precision("fp8", CPU)


def test_auto_precision_on_cuda_is_fp16() -> None:
    assert resolve_precision("auto", torch.device("cuda", 0)) == torch.float16


def test_oom_detection() -> None:
    assert is_oom_error(torch.OutOfMemoryError("CUDA out of memory"))
    assert is_oom_error(torch.cuda.OutOfMemoryError("x"))
    assert is_oom_error(RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED out of memory"))
    assert not is_oom_error(RuntimeError("shape mismatch"))
    assert not is_oom_error(ValueError("out of memory"))
    assert not is_oom_error(MemoryError())


def test_auto_precision_runs_fp16_overflowing_models_in_bf16_on_cuda() -> None:
    from vsrflow.engine.device import FP16_OVERFLOW_MODELS, auto_precision

    cuda = torch.device("cuda", 0)  # a device object needs no GPU; the choice is what is tested
    assert "SPAN_x2_ch48" in FP16_OVERFLOW_MODELS
    assert auto_precision("SPAN_x2_ch48", cuda, bf16_supported=True) == "bf16"
    assert auto_precision("SPAN_x2_ch48", cuda, bf16_supported=False) == "fp32"  # never fp16
    assert auto_precision("realesr-animevideov3", cuda, bf16_supported=True) == "auto"
    assert auto_precision("SPAN_x2_ch48", torch.device("cpu")) == "auto"
    assert auto_precision(None, cuda, bf16_supported=True) == "auto"


def test_the_overflow_list_matches_the_committed_measurement() -> None:
    import json
    from pathlib import Path

    from vsrflow.engine.device import FP16_OVERFLOW_MODELS

    results = sorted((Path(__file__).resolve().parents[2] / "bench" / "results").glob("fp16-range-*.json"))
    assert results, "bench/results/fp16-range-*.json is the source of FP16_OVERFLOW_MODELS"
    runs = [r for p in results for r in json.loads(p.read_text())["runs"] if "max_abs_activation" in r]
    measured = {r["model"] for r in runs if r["overflows_fp16"]}
    assert measured == set(FP16_OVERFLOW_MODELS)
