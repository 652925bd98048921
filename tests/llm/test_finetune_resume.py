"""Exact resume, checkpoint safety, adapter reload with plain peft, and merged export."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from finetune_testlib import REPO, make_prepared, quick_cfg, single_thread, train_losses, val_loss  # noqa: E402,F401


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    return make_prepared(tmp_path_factory.mktemp("prep") / "prep")


def _weights(path: Path) -> dict:
    from safetensors.torch import load_file

    name = "adapter_model.safetensors" if (path / "adapter_model.safetensors").is_file() else "model.safetensors"
    return load_file(str(path / name))


@pytest.mark.parametrize("method,extra", [
    ("lora", ["lora.dropout=0.1", "batch.gradient_accumulation_steps=2", "batch.micro_batch_size=3"]),
    ("full", ["batch.packing=true", "batch.micro_batch_size=2", "optim.weight_decay=0.1"]),
])
def test_resume_equals_uninterrupted(prepared, tmp_path, method, extra):
    """N steps + resume + N steps == 2N steps: loss curve and final weights (dropout on, across an
    epoch boundary, with accumulation / packing)."""
    from motiongpt.llm.finetune import finetune

    opts = [f"method={method}", "train.max_steps=10", "train.eval_every=5", "train.save_every=5", *extra]
    a, b = tmp_path / "a", tmp_path / "b"
    finetune(quick_cfg(prepared, a, *opts))
    first = finetune(quick_cfg(prepared, b, *opts), stop_at=5)
    assert not first["finished"] and (b / "latest").read_text().strip() == "checkpoint-5"
    assert not (b / "train_summary.json").exists()  # nothing published before the run ends
    second = finetune(quick_cfg(prepared, b, *opts), resume=True)
    assert second["resumed_from"].endswith("checkpoint-5") and second["steps"] == 10 and second["finished"]
    la, lb = train_losses(a), train_losses(b)
    assert len(la) == len(lb) == 10
    assert la == pytest.approx(lb, abs=1e-6)
    wa, wb = _weights(a), _weights(b)
    assert set(wa) == set(wb)
    for k in wa:
        assert (wa[k] - wb[k]).abs().max().item() < 1e-6, k
    if method == "lora":  # on CPU the LoRA dropout (p=0.1 here) is the sparse one, and resumes exactly
        from motiongpt.llm.checkpoint import read_run_config

        assert read_run_config(b)[1]["lora_dropout"] == "sparse"
    # val records: one continuous curve, no duplicates
    steps = [json.loads(x)["step"] for x in (b / "metrics.jsonl").read_text().splitlines()
             if json.loads(x)["split"] == "val"]
    assert steps == [5, 10]


def test_checkpoint_safety_and_refusals(prepared, tmp_path):
    from motiongpt.llm.checkpoint import latest_checkpoint, list_checkpoints
    from motiongpt.llm.finetune import finetune

    out = tmp_path / "run"
    opts = ["method=lora", "train.max_steps=6", "train.save_every=2", "train.keep_last_n=2", "train.eval_every=0"]
    finetune(quick_cfg(prepared, out, *opts), stop_at=4)
    assert [p.name for p in list_checkpoints(out)] == ["checkpoint-2", "checkpoint-4"]
    # a run killed while writing checkpoint-6 leaves a temp dir; the last good checkpoint is intact
    (out / ".checkpoint-6.abc123.tmp").mkdir()
    (out / ".checkpoint-6.abc123.tmp" / "adapter_model.safetensors").write_bytes(b"partial")
    assert latest_checkpoint(out).name == "checkpoint-4"
    # a fresh run into a directory with checkpoints is refused without --resume / --overwrite
    with pytest.raises(FileExistsError, match="--resume"):
        finetune(quick_cfg(prepared, out, *opts))
    # changing the experiment on resume is refused; changing bookkeeping is fine
    with pytest.raises(ValueError, match="optim.lr"):
        finetune(quick_cfg(prepared, out, *opts, "optim.lr=1e-1"), resume=True)
    s = finetune(quick_cfg(prepared, out, *opts, "train.log_every=3"), resume=True)
    assert s["finished"] and not (out / ".checkpoint-6.abc123.tmp").exists()
    assert [p.name for p in list_checkpoints(out)] == ["checkpoint-4", "checkpoint-6"]  # keep_last_n=2
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        finetune(quick_cfg(prepared, tmp_path / "empty", *opts), resume=True)
    s = finetune(quick_cfg(prepared, out, *opts, "train.max_steps=2"), overwrite=True)
    assert s["finished"] and [p.name for p in list_checkpoints(out)] == ["checkpoint-2"]


@pytest.fixture(scope="module")
def lora_run(prepared, tmp_path_factory) -> tuple[Path, dict]:
    from motiongpt.llm.finetune import finetune

    out = tmp_path_factory.mktemp("lora_run") / "run"
    summary = finetune(quick_cfg(prepared, out, "method=lora", "optim.lr=1e-2", "train.max_steps=12",
                                 "train.eval_every=12", "lora.dropout=0.1"))
    return out, summary


def test_adapter_reloads_with_plain_peft(lora_run, prepared):
    """``PeftModel.from_pretrained(base, out_dir)`` restores the model as it was in training."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from motiongpt.llm.checkpoint import load_finetuned

    out, summary = lora_run
    base = AutoModelForCausalLM.from_pretrained(str(out / "base_model"), local_files_only=True)
    model = PeftModel.from_pretrained(base, str(out)).eval()
    # the final validation loss logged during training, recomputed on the reloaded model
    assert val_loss(model, prepared) == pytest.approx(summary["val"]["loss"], abs=1e-5)
    again, tok, fmt, info = load_finetuned(out)
    x = torch.tensor([[1, 40, 41, len(tok) - 3, len(tok) - 2, 2]])
    with torch.no_grad():
        assert torch.allclose(model(input_ids=x).logits, again(input_ids=x).logits, atol=1e-6)
    assert fmt.kind == "vocab" and info["adapter"]
    # the motion-token rows trained with the adapter (the merged rows differ from the base's)
    fresh = AutoModelForCausalLM.from_pretrained(str(out / "base_model"), local_files_only=True)
    base_rows = fresh.get_input_embeddings().weight.detach().clone()
    merged = PeftModel.from_pretrained(fresh, str(out)).merge_and_unload()
    motion = len(tok) - 2  # a <motion_id_K> row (the last ids are the motion tokens)
    assert not torch.allclose(merged.get_input_embeddings().weight[motion], base_rows[motion])
    assert torch.equal(merged.get_input_embeddings().weight[5], base_rows[5])  # a text row: untouched


def test_export_merged_matches_unmerged(lora_run, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    from motiongpt.llm.checkpoint import load_finetuned, read_run_config

    out, _ = lora_run
    dest = tmp_path / "merged"
    res = subprocess.run([sys.executable, "scripts/export_merged.py", "--lora_path", str(out), "--out", str(dest)],
                         cwd=REPO, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-2000:]
    merged = AutoModelForCausalLM.from_pretrained(str(dest), local_files_only=True).eval()
    unmerged, tok, _, _ = load_finetuned(out)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, len(tok), (3, 17), generator=g)
    with torch.no_grad():
        diff = (merged(input_ids=x).logits - unmerged(input_ids=x).logits).abs().max().item()
    assert diff < 1e-5
    assert (dest / "motion_format.json").is_file() and (dest / "tokenizer.json").is_file()
    assert not (dest / "adapter_config.json").exists()
    _, resolved = read_run_config(dest)
    assert resolved["adapter"] is False and resolved["merged_from"] == str(out.resolve())
    again, _, _, info = load_finetuned(dest)  # a merged dir is a plain model for the later tools
    assert not info["adapter"]
    with pytest.raises(FileExistsError):
        from motiongpt.llm.checkpoint import export_merged

        export_merged(out, dest)
    shutil.rmtree(dest)
