"""End to end: the real demo CLI on a tiny corpus, then a cached re-run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


# A smoke-sized run: every stage for real, at a size that takes seconds. 40 clips: the evaluator's
# model selection needs one R-precision batch of 32 pairs (train_val: 36 of them).
TINY_DEMO = """\
num_clips: 40
num_render: 1
workers: 1
vq_overrides:
  - train.total_iters=12
  - train.eval_every=6
  - train.save_every=6
  - train.warmup_iters=2
  - train.lr_milestones=[10]
  - train.batch_size=8
llm_base_model: nano
text_encoder: smollm2
text_encoder_layers: 1
paraphrase_prob: 0.5
num_samples: 2
full_overrides:
  - train.max_steps=6
  - train.eval_every=3
  - train.eval_max_batches=2
  - train.save_every=3
  - optim.warmup_steps=1
  - train.progress_bar=false
  - train.tensorboard=false
lora_overrides:
  - train.max_steps=4
  - train.eval_every=2
  - train.eval_max_batches=2
  - train.save_every=2
  - optim.warmup_steps=1
  - train.progress_bar=false
  - train.tensorboard=false
evaluator_overrides:
  - model.dim_word=16
  - model.dim_text_hidden=32
  - model.dim_coemb_hidden=32
  - model.dim_movement_enc_hidden=32
  - model.dim_movement_latent=32
  - model.dim_motion_hidden=32
  - train.batch_size=16
  - train.total_steps=6
  - train.eval_every=3
  - train.val_repeats=1
  - data.val_split=train_val
  - train.progress_bar=false
  - train.tensorboard=false
eval_repeats: 2
eval_key_texts: 3
eval_mm_texts: 2
eval_mm_gens: 2
"""


def _run_demo(out: Path) -> dict:
    config = out.parent / "tiny_demo.yaml"
    config.write_text(TINY_DEMO)
    cmd = [sys.executable, str(REPO / "scripts" / "demo.py"), "--out", str(out), "--config", str(config)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "summary.json").read_text())


@pytest.mark.slow
def test_demo_runs_and_reuses_cached_stages(tmp_path, smollm2, wordnet):
    out = tmp_path / "demo"
    summary = _run_demo(out)
    dataset = Path(summary["dataset"])
    assert dataset.is_absolute() and (dataset / "meta.json").is_file()
    assert summary["metrics"]["num_clips"] == 40
    assert sum(summary["metrics"]["split_sizes"][s] for s in ("train", "val", "test")) == 40
    stages = {"dataset", "vqvae", "render", "instructions", "prepare", "finetune_full", "finetune_lora", "generate",
              "evaluator", "evaluate"}
    assert set(summary["stages"]) >= stages
    vq = Path(summary["vqvae"])
    assert (vq / "model.safetensors").is_file() and (dataset / "VQVAE" / "meta.json").is_file()
    # every clip and its mirror got codes; the MPJPE is a real measurement (positive, finite)
    assert summary["metrics"]["token_files"] == 80
    assert 0 < summary["metrics"]["vq_mpjpe_mm"] < 1e4
    assert len(summary["gifs"]) == 2 and summary["gifs"][1].endswith("_vq.gif")
    gif = Path(summary["gifs"][0])
    with Image.open(gif) as im:
        assert im.n_frames >= 40  # clips are at least 40 frames long
    assert summary["metrics"]["dataset_cached"] is False
    # the renders in two processes (the demo's default on 2 cores) give the same files as one process
    from motiongpt.pipeline import DemoConfig, _stage_render

    twice = _stage_render(DemoConfig(num_render=1, workers=2), dataset, tmp_path / "gifs2", vq, vq_changed=True)
    assert [Path(g).name for g in twice] == [Path(g).name for g in summary["gifs"]]
    assert all(Path(a).read_bytes() == Path(b).read_bytes() for a, b in zip(twice, summary["gifs"]))

    # fine-tuning: the final (LoRA) run directory, absolute, with its adapter; both stages report a
    # finite validation loss
    m = summary["metrics"]
    ckpt = Path(summary["checkpoint"])
    assert ckpt.is_absolute() and ckpt.name == "llm_lora"
    adapter = [ckpt / "adapter_model.safetensors", ckpt / "adapter_config.json"]
    assert all(f.is_file() for f in adapter) and (ckpt / "train_summary.json").is_file()
    assert (ckpt.parent / "llm_full" / "model.safetensors").is_file()
    for key in ("val_loss_full", "val_loss_lora", "train_tokens_per_s"):
        assert 0 < m[key] < 1e6, key
    assert m["train_records"] > 0
    # generation: constrained decoding makes even a nano model after a few steps write a well-formed
    # span (1 to 49 codes), so every sample parses and is rendered
    assert m["samples_parsed"] == "2 of 2" and len(m["samples"]) == 2
    for s in m["samples"]:
        assert s["caption"] and 1 <= s["n_tokens"] <= 49 and s["parsed"] is True
        with Image.open(s["gif"]) as im:
            assert im.n_frames == 4 * s["n_tokens"]
    results = json.loads((out / "samples" / "results.json").read_text())
    assert [r["codes"] for r in results["samples"]] and all(r["ok"] for r in results["samples"])
    assert not any(m[f"{st}_cached"]
                   for st in ("instructions", "prepare", "finetune_full", "finetune_lora", "generate"))

    # evaluation on the held-out test split: the evaluator trained on the corpus, eval.py's metrics
    assert m["evaluator_cached"] is False and m["evaluate_cached"] is False
    assert (Path(summary["evaluator"]) / "manifest.json").is_file()
    eval_dir = Path(m["eval_dir"])
    assert eval_dir.is_absolute() and (eval_dir / "metrics.json").is_file() and (eval_dir / "metrics.md").is_file()
    n_test = m["split_sizes"]["test"]
    assert m["eval_texts"] == n_test and m["eval_repeats"] == 2 and m["key_token_task"] == "t2m_keys"
    for key in ("semantic_accuracy", "r_precision_top3", "r_precision_top3_real", "key_token_accuracy_free"):
        assert 0.0 <= m[key] <= 1.0, key
    # the goal's key-token figure is what generation as shipped (constrained) delivers, measured on its codes
    keys_doc = json.loads((Path(m["eval_dir"]) / "metrics.json").read_text())["tasks"]["t2m_keys"]["metrics"]
    assert m["key_token_accuracy"] == round(keys_doc["pair_rate"]["mean"], 4) == 1.0
    assert m["key_token_accuracy_free"] == round(keys_doc["free_pair_rate"]["mean"], 4)
    assert m["r_precision_top3_real"] > 0  # top-3 of a batch of n_test >= 3: at least 3 / n_test by chance
    for key in ("fid", "fid_vq_recon", "key_pose_mm", "multimodality"):
        assert 0.0 <= m[key] < 1e6, key
    doc = json.loads((eval_dir / "metrics.json").read_text())
    assert set(doc["tasks"]) == {"t2m", "t2m_keys"} and doc["tasks"]["t2m_keys"]["n_texts"] == 3
    assert doc["rows"]["real"]["semantic_accuracy"]["mean"] == 1.0  # real clips do what their captions say
    assert "| Ours (t2m) |" in (eval_dir / "metrics.md").read_text()
    # the demo's defaults rerank the text-to-motion generations (4 candidates, scored while decoding)
    assert doc["config"]["candidates"] == 4 and "best of 4 candidates" in (eval_dir / "metrics.md").read_text()
    # the embedded default reads words with the pretrained SmolLM2's first blocks (one here)
    full_cfg = json.loads((ckpt.parent / "llm_full" / "config.json").read_text())
    assert full_cfg["model_type"] == "motiongpt_text_llama" and full_cfg["text_encoder"]["num_hidden_layers"] == 1
    assert full_cfg["text_encoder"]["hidden_size"] == 576  # SmolLM2-135M's width
    # the same test clips in words the templates never use, scored by the evaluation
    for style in ("synonyms", "connectors"):
        assert (out / "rewordings" / f"{style}.txt").is_file()
        assert 0.0 <= m[f"semantic_accuracy_{style}"] <= 1.0
        assert doc["captions"][style]["n"] == n_test
    # training captions reworded through WordNet, the rewording files' words held out of them
    icfg = json.loads((out / "instructions" / "meta.json").read_text())["config"]
    held_out = sorted(str((out / "rewordings" / f"{st}.txt").resolve()) for st in ("synonyms", "connectors"))
    assert icfg["paraphrase_prob"] == 0.5 and sorted(icfg["paraphrase_exclude"]) == held_out
    from motiongpt.data.paraphrase import exclusion_words
    from motiongpt.data.synthetic.captions import template_vocabulary
    from motiongpt.data.synthetic.rewording import ALLOWED_WORDS, read_caption_file

    # the rewordings' content words (their function words, "an" among them, are everyone's)
    unseen = exclusion_words(c for f in held_out for _, c in read_caption_file(f)) - template_vocabulary() - ALLOWED_WORDS
    train = json.loads((out / "instructions" / "train.json").read_text())
    inputs = [r["input"].split("<Motion Token>")[0] for r in train if r["task"] in ("t2m", "t2m_keys")]
    words = {w for t in inputs for w in re.findall(r"[a-z]+", t.lower())}
    assert words - template_vocabulary(), "no training caption was reworded"
    assert not words & unseen, sorted(words & unseen)[:10]

    watched = [dataset / "meta.json", *adapter, ckpt.parent / "llm_full" / "model.safetensors",
               ckpt.parent / "prepared" / "stats.json", ckpt.parent / "instructions" / "meta.json",
               Path(summary["evaluator"]) / "model.safetensors", *sorted((eval_dir / "cache").glob("*/repeat_*.json"))]
    mtimes = [f.stat().st_mtime_ns for f in watched]
    again = _run_demo(out)
    am = again["metrics"]
    for st in ("dataset", "vq", "instructions", "prepare", "finetune_full", "finetune_lora", "generate", "evaluator",
               "evaluate"):
        assert am[f"{st}_cached"] is True, st
    assert am["vq_mpjpe_mm"] == m["vq_mpjpe_mm"]
    # the evaluation is recomputed from the cached generations: the same figures
    for key in ("fid", "fid_vq_recon", "r_precision_top3", "r_precision_top3_real", "semantic_accuracy",
                "key_token_accuracy"):
        assert am[key] == m[key], key
    assert am["val_loss_lora"] == m["val_loss_lora"] and am["samples"] == m["samples"]
    assert [f.stat().st_mtime_ns for f in watched] == mtimes  # nothing was rebuilt or retrained
