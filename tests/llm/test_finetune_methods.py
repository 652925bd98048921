"""Fine-tuning methods on the nano model: LoRA, QLoRA (4-bit), full, two-stage; configs and CLI."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from finetune_testlib import REPO, make_prepared, quick_cfg, single_thread, train_losses, val_loss  # noqa: E402,F401

from motiongpt.config import ConfigError, apply_overrides, config_to_dict, load_config  # noqa: E402
from motiongpt.llm.finetune_config import FinetuneConfig, check_finetune_config  # noqa: E402

CONFIGS = sorted((REPO / "configs").glob("*.yaml")) + sorted((REPO / "configs" / "demo").glob("finetune_*.yaml"))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    return make_prepared(tmp_path_factory.mktemp("prep") / "prep")


def _decreased(losses: list[float], k: int = 4) -> tuple[float, float]:
    head, tail = sum(losses[:k]) / k, sum(losses[-k:]) / k
    return head, tail


# ---------------------------------------------------------------------------------- configs


def test_every_shipped_config_loads():
    names = {p.name for p in CONFIGS}
    assert {"tiny_demo.yaml", "tiny_demo_lora.yaml", "llama2_7b_lora.yaml", "llama3_8b_qlora.yaml",
            "mistral_7b_lora.yaml"} <= names
    for path in CONFIGS:
        cfg = load_config(FinetuneConfig, path, ["prepared=/tmp/prep"])
        check_finetune_config(cfg)
        if "7b" in path.name or "8b" in path.name:
            assert cfg.base_model.startswith("/path/to/"), path  # a documented placeholder, never a hub id
    q = load_config(FinetuneConfig, REPO / "configs" / "llama3_8b_qlora.yaml")
    assert q.method == "qlora" and q.train.gradient_checkpointing
    assert load_config(FinetuneConfig, REPO / "configs" / "tiny_demo_lora.yaml").base_model == "lora/tiny_demo_full"


def test_tiny_demo_yaml_is_the_default():
    assert config_to_dict(load_config(FinetuneConfig, REPO / "configs" / "tiny_demo.yaml")) == \
        config_to_dict(FinetuneConfig())


def test_accelerate_and_deepspeed_configs_parse():
    import yaml

    top = yaml.safe_load((REPO / "accelerate_config.yaml").read_text())
    assert top["distributed_type"] == "NO" and top["num_processes"] == 1
    acc = REPO / "configs" / "accelerate"
    assert yaml.safe_load((acc / "multi_gpu_ddp.yaml").read_text())["distributed_type"] == "MULTI_GPU"
    for name, stage in (("zero2", 2), ("zero3", 3), ("zero3_offload", 3)):
        y = yaml.safe_load((acc / f"deepspeed_{name}.yaml").read_text())
        ds_file = REPO / y["deepspeed_config"]["deepspeed_config_file"]
        ds = json.loads(ds_file.read_text())
        assert ds["zero_optimization"]["stage"] == stage
        assert ds["train_micro_batch_size_per_gpu"] == "auto" and ds["gradient_accumulation_steps"] == "auto"
        assert ("offload_optimizer" in ds["zero_optimization"]) == name.endswith("offload")


def test_config_validation():
    with pytest.raises(ConfigError, match="unknown key"):
        apply_overrides(FinetuneConfig(), ["optim.learning_rate=1"])
    with pytest.raises(ConfigError, match="prepared is empty"):
        check_finetune_config(FinetuneConfig())
    cfg = apply_overrides(FinetuneConfig(), ["prepared=x", "batch.micro_batch_size=0"])
    with pytest.raises(ConfigError, match="both 0"):
        check_finetune_config(cfg)
    cfg = apply_overrides(FinetuneConfig(),
                          ["prepared=x", "batch.packing=true", "attn_implementation=flash_attention_2"])
    with pytest.raises(ConfigError, match="position_ids"):
        check_finetune_config(cfg)


def test_lr_schedule():
    from motiongpt.llm.finetune import lr_at
    from motiongpt.llm.finetune_config import OptimSection

    o = OptimSection(lr=1.0, warmup_steps=4, schedule="cosine", min_lr_ratio=0.1)
    lrs = [lr_at(s, 20, o) for s in range(20)]
    assert lrs[:4] == [0.25, 0.5, 0.75, 1.0]
    assert lrs[4] == pytest.approx(1.0) and lrs[-1] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(lrs[4:], lrs[5:], strict=False))
    lin = dataclasses.replace(o, schedule="linear", min_lr_ratio=0.0)
    assert lr_at(19, 20, lin) == pytest.approx(0.0) and lr_at(4 + 15 // 2, 20, lin) == pytest.approx(1 - 7 / 15)
    assert lr_at(10, 20, dataclasses.replace(o, schedule="constant")) == 1.0




def test_optimizer_fused_where_supported_and_decays_matrices_only():
    import torch

    from motiongpt.llm.finetune import _make_optimizer
    from motiongpt.llm.finetune_config import OptimSection

    o = OptimSection(lr=0.1, weight_decay=0.5)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    opt = _make_optimizer(model, o)
    assert opt.defaults["fused"] is True
    decay, no_decay = opt.param_groups
    assert [p.ndim for p in decay["params"]] == [2] and decay["weight_decay"] == 0.5
    assert sorted(p.ndim for p in no_decay["params"]) == [1, 1, 1] and no_decay["weight_decay"] == 0.0
    # the fused step is AdamW's step: same parameters after a few steps as the one-tensor-at-a-time kernel
    ref = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    ref.load_state_dict(model.state_dict())
    ref_opt = torch.optim.AdamW([{"params": [ref[0].weight], "weight_decay": 0.5},
                                 {"params": [ref[0].bias, ref[1].weight, ref[1].bias], "weight_decay": 0.0}],
                                lr=0.1, betas=tuple(o.betas), eps=o.eps, foreach=False)
    x = torch.randn(8, 4)
    for m, opt_ in ((model, opt), (ref, ref_opt)):
        for _ in range(3):
            opt_.zero_grad()
            m(x).pow(2).sum().backward()
            opt_.step()
    for a, b in zip(model.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # no fused kernel for parameters that are not on CPU / CUDA: the default kernel then
    assert _make_optimizer(torch.nn.Linear(4, 4, device="meta"), o).defaults["fused"] is None
def test_cli_help_is_fast_and_hub_ids_fail_fast(prepared, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    t = time.time()
    res = subprocess.run([sys.executable, "finetune_motion.py", "--help"], cwd=REPO, capture_output=True, text=True,
                         env=env, timeout=60)
    assert res.returncode == 0 and "--prepared" in res.stdout and "deepspeed_zero2.yaml" in res.stdout
    assert time.time() - t < 3.0  # no torch / transformers import for --help
    res = subprocess.run([sys.executable, "finetune_motion.py", "--prepared", str(prepared), "--out_dir",
                          str(tmp_path / "o"), "optim.lrr=1"], cwd=REPO, capture_output=True, text=True, env=env,
                         timeout=60)
    assert res.returncode == 2 and "unknown key" in res.stderr
    # a hub id is refused at once, with the offline explanation, before any training output
    from motiongpt.llm.finetune import finetune
    from motiongpt.llm.model import OfflineModelError

    with pytest.raises(OfflineModelError, match="offline"):
        finetune(quick_cfg(prepared, tmp_path / "hub", "base_model=meta-llama/Llama-2-7b-hf", "method=lora"))
    assert not list((tmp_path / "hub").glob("checkpoint-*"))


# ---------------------------------------------------------------------------------- methods


def test_lora_trains_and_saves_peft_adapter(prepared, tmp_path):
    from motiongpt.llm.checkpoint import read_run_config
    from motiongpt.llm.finetune import finetune

    out = tmp_path / "lora"
    s = finetune(quick_cfg(prepared, out, "method=lora", "optim.lr=1e-2", "train.max_steps=24", "train.save_every=8",
                           "train.eval_every=12"))
    losses = train_losses(out)
    head, tail = _decreased(losses)
    assert len(losses) == 24 and tail < head - 0.3, losses
    assert s["finished"] and s["val"]["loss"] < 6.0 and s["tokens_per_s"] > 0
    # PEFT format at the top level and in each checkpoint; keep_last_n=2 pruned checkpoint-8
    for d in (out, out / "checkpoint-24"):
        for f in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "motion_format.json",
                  "run_config.yaml"):
            assert (d / f).is_file(), d / f
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-16", "checkpoint-24"]
    assert (out / "latest").read_text().strip() == "checkpoint-24"
    assert (out / "base_model" / "config.json").is_file()  # the exact random preset base
    adapter_cfg = json.loads((out / "adapter_config.json").read_text())
    assert adapter_cfg["trainable_token_indices"]  # the motion-token rows train with the adapter
    assert sorted(adapter_cfg["target_modules"]) == sorted(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                            "up_proj", "down_proj"])
    cfg, resolved = read_run_config(out)
    assert cfg.method == "lora" and resolved["new_tokens"] == "trainable_tokens"
    assert resolved["motion_format"] == {"kind": "vocab", "nb_code": 32}
    assert resolved["template"] == "alpaca" and resolved["tasks"] == {"t2m": 16, "m2t": 8}
    assert resolved["prepared"] == str(prepared.resolve())
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"loss", "lr", "tokens_per_s", "grad_norm"} <= set(records[0])
    assert [r["step"] for r in records if r["split"] == "val"] == [12, 24]


@pytest.mark.parametrize("method", ["qlora", "8bit"])
def test_quantized_base_trains(prepared, tmp_path, method):
    """QLoRA (4-bit NF4, double quant) and LLM.int8 bases with the bitsandbytes CPU backend."""
    import bitsandbytes as bnb

    from motiongpt.llm.checkpoint import load_finetuned, read_run_config
    from motiongpt.llm.finetune import finetune

    out = tmp_path / method
    s = finetune(quick_cfg(prepared, out, f"method={method}", "optim.lr=1e-2", "train.max_steps=20",
                           "train.eval_every=20", "train.gradient_checkpointing=true"))
    head, tail = _decreased(train_losses(out))
    assert tail < head - 0.3 and s["finished"]
    _, resolved = read_run_config(out)
    assert resolved["precision"]["quantization"] == {"qlora": "nf4+double_quant", "8bit": "int8"}[method]
    model, _, _, _ = load_finetuned(out)  # rebuilt on its quantized base
    layer = bnb.nn.Linear4bit if method == "qlora" else bnb.nn.Linear8bitLt
    quantized = [m for m in model.modules() if isinstance(m, layer)]
    assert quantized
    if method == "qlora":
        assert quantized[0].weight.quant_type == "nf4"
    assert val_loss(model, prepared) == pytest.approx(s["val"]["loss"], abs=1e-4)


def test_full_then_lora_two_stage(prepared, tmp_path):
    from transformers import AutoModelForCausalLM

    from motiongpt.llm.checkpoint import read_run_config
    from motiongpt.llm.finetune import finetune

    stage1 = tmp_path / "stage1"
    s1 = finetune(quick_cfg(prepared, stage1, "method=full", "optim.lr=1e-2", "train.max_steps=20",
                            "train.eval_every=0"))
    head, tail = _decreased(train_losses(stage1))
    assert tail < head - 0.5 and s1["finished"]
    assert (stage1 / "model.safetensors").is_file() and (stage1 / "config.json").is_file()
    AutoModelForCausalLM.from_pretrained(str(stage1), local_files_only=True)  # a plain transformers dir
    # stage 2: LoRA on top of stage 1 (its output dir is the base model)
    stage2 = tmp_path / "stage2"
    s2 = finetune(quick_cfg(prepared, stage2, "method=lora", f"base_model={stage1}", "optim.lr=1e-2",
                            "train.max_steps=8", "train.eval_every=0"))
    _, resolved = read_run_config(stage2)
    assert resolved["base_is_motiongpt"] and resolved["new_tokens"] == "none"  # rows trained in stage 1
    assert resolved["base_model_path"] == str(stage1.resolve()) and not resolved["base_saved"]
    assert not (stage2 / "base_model").exists()
    assert s2["first_loss"] < s1["first_loss"] - 0.5  # stage 2 starts from what stage 1 learned
    assert math.isfinite(s2["last_loss"])


def test_packed_training_with_token_budget(prepared, tmp_path):
    from motiongpt.llm.finetune import finetune

    out = tmp_path / "packed"
    s = finetune(quick_cfg(prepared, out, "method=lora", "batch.packing=true", "batch.micro_batch_size=0",
                           "batch.micro_batch_tokens=512", "batch.max_seq_len=256", "train.max_steps=4",
                           "train.eval_every=0", "lora.new_tokens=modules_to_save"))
    assert s["finished"] and math.isfinite(s["last_loss"])
    assert json.loads((out / "adapter_config.json").read_text())["modules_to_save"]


def test_untied_head_gets_its_own_motion_rows(prepared, tmp_path):
    """An untied LM head (LLaMA-2 style) trains the motion rows of both embedding and head."""
    from motiongpt.llm.checkpoint import load_finetuned
    from motiongpt.llm.finetune import finetune

    out = tmp_path / "untied"
    s = finetune(quick_cfg(prepared, out, "method=lora", "preset_overrides=[tie_word_embeddings=false]",
                           "train.max_steps=3", "train.eval_every=3"))
    indices = json.loads((out / "adapter_config.json").read_text())["trainable_token_indices"]
    assert set(indices) == {"embed_tokens", "lm_head"} and indices["embed_tokens"] == indices["lm_head"]
    model, _, _, _ = load_finetuned(out)
    assert not model.config.tie_word_embeddings
    assert s["finished"] and val_loss(model, prepared) == pytest.approx(s["val"]["loss"], abs=1e-5)
    # an adapter directory is not a base model
    with pytest.raises(ValueError, match="merge it"):
        finetune(quick_cfg(prepared, tmp_path / "x", "method=lora", f"base_model={out}"))
