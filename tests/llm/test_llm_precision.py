"""resolve_precision: every method x dtype x device combination and its outcome.

CUDA combinations are checked on any machine by faking ``torch.cuda.is_available`` /
``is_bf16_supported`` (nothing is moved to a GPU). No quantized model is loaded here.
"""

from __future__ import annotations

import importlib.util
import os
import warnings

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from motiongpt.llm.model import resolve_precision  # noqa: E402

METHODS = ["lora", "qlora", "8bit", "full"]
HAS_BNB = importlib.util.find_spec("bitsandbytes") is not None


def _fake_cuda(monkeypatch, available: bool, bf16: bool = True) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)


def _quiet(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning expected here
        return resolve_precision(*args, **kwargs)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", ["auto", "float32", "fp32"])
def test_cpu_fp32(method, dtype):
    if method in ("qlora", "8bit") and not HAS_BNB:
        pytest.skip("bitsandbytes not installed")
    p = _quiet(method, dtype, "cpu")
    assert p["method"] == method and p["device"] == "cpu"
    assert p["dtype"] == p["compute_dtype"] == torch.float32
    assert p["mixed_precision"] == "no"
    assert p["adapter"] is (method != "full")
    assert p["model_kwargs"]["dtype"] == torch.float32
    assert p["prepare_kbit"] is (method in ("qlora", "8bit"))
    if method in ("lora", "full"):
        assert p["quantization_config"] is None and "quantization_config" not in p["model_kwargs"]


@pytest.mark.skipif(not HAS_BNB, reason="bitsandbytes not installed")
def test_qlora_and_8bit_configs_built():
    from transformers import BitsAndBytesConfig

    q = resolve_precision("qlora", "auto", "cpu")["quantization_config"]
    assert isinstance(q, BitsAndBytesConfig)
    assert q.load_in_4bit and not q.load_in_8bit
    assert q.bnb_4bit_quant_type == "nf4" and q.bnb_4bit_use_double_quant is True
    assert q.bnb_4bit_compute_dtype == torch.float32
    p8 = resolve_precision("8bit", "auto", "cpu")
    assert isinstance(p8["quantization_config"], BitsAndBytesConfig)
    assert p8["quantization_config"].load_in_8bit and not p8["quantization_config"].load_in_4bit
    assert p8["model_kwargs"]["device_map"] == {"": "cpu"}
    assert p8["model_kwargs"]["quantization_config"] is p8["quantization_config"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", ["float16", "fp16", "half"])
def test_fp16_on_cpu_raises(method, dtype):
    with pytest.raises(ValueError, match="float16 on CPU"):
        resolve_precision(method, dtype, "cpu")


@pytest.mark.parametrize("method", ["lora", "full"] + (["qlora", "8bit"] if HAS_BNB else []))
def test_bf16_on_cpu_warns(method):
    with pytest.warns(UserWarning, match="bfloat16 on CPU"):
        p = resolve_precision(method, "bf16", "cpu")
    assert p["mixed_precision"] == "bf16" and p["compute_dtype"] == torch.bfloat16
    assert p["warnings"] and "30x slower" in p["warnings"][0]
    # full fine-tuning keeps fp32 master weights; adapter methods load the frozen base in bf16
    assert p["dtype"] == (torch.float32 if method == "full" else torch.bfloat16)


def test_unknown_values_raise():
    with pytest.raises(ValueError, match="unknown fine-tuning method"):
        resolve_precision("prefix", "auto", "cpu")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown dtype"):
        resolve_precision("lora", "int4", "cpu")
    with pytest.raises(ValueError, match="unsupported device"):
        resolve_precision("lora", "auto", "tpu")


def test_cuda_unavailable_raises(monkeypatch):
    _fake_cuda(monkeypatch, available=False)
    for dev in ("cuda", "cuda:1"):
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_precision("lora", "auto", dev)


def test_cuda_with_bf16(monkeypatch):
    _fake_cuda(monkeypatch, available=True, bf16=True)
    p = _quiet("lora", "auto", "cuda")
    assert p["dtype"] == torch.bfloat16 and p["mixed_precision"] == "bf16"
    p = _quiet("full", "auto", "cuda")
    assert p["dtype"] == torch.float32 and p["compute_dtype"] == torch.bfloat16 and p["mixed_precision"] == "bf16"
    p = _quiet("lora", "fp16", "cuda:0")
    assert p["dtype"] == torch.float16 and p["mixed_precision"] == "fp16"
    if HAS_BNB:
        q = _quiet("qlora", "auto", "cuda")
        assert q["quantization_config"].bnb_4bit_compute_dtype == torch.bfloat16
        assert q["model_kwargs"]["device_map"] == {"": "cuda:0"}
        assert q["warnings"] == []
        assert _quiet("8bit", "auto", "cuda:1")["model_kwargs"]["device_map"] == {"": "cuda:1"}


def test_cuda_without_bf16(monkeypatch):
    _fake_cuda(monkeypatch, available=True, bf16=False)
    p = _quiet("lora", "auto", "cuda")
    assert p["dtype"] == torch.float16 and p["mixed_precision"] == "fp16"
    with pytest.raises(ValueError, match="does not support"):
        resolve_precision("lora", "bf16", "cuda")


def test_quantized_methods_need_bitsandbytes(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real(name, *a))
    for method in ("qlora", "8bit"):
        with pytest.raises(ValueError, match="bitsandbytes"):
            resolve_precision(method, "auto", "cpu")
    assert resolve_precision("lora", "auto", "cpu")["quantization_config"] is None
