"""The text-motion evaluator: config presets, checkpoints, encoders, training and its CLI."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from motiongpt.config import apply_overrides, config_to_dict, load_config
from motiongpt.data.humanml3d import load_humanml3d
from motiongpt.eval.evaluator import EvaluatorConfig, TextMotionEvaluator, get_preset
from motiongpt.eval.protocol import multimodality_metric, t2m_metrics
from motiongpt.eval.text import Vocabulary
from motiongpt.eval.train import train_evaluator

REPO = Path(__file__).resolve().parents[2]

# A very small evaluator so training runs in seconds in the tests.
SMALL = [
    "model.dim_word=16", "model.dim_text_hidden=32", "model.dim_coemb_hidden=32", "model.dim_movement_enc_hidden=32",
    "model.dim_movement_latent=32", "model.dim_motion_hidden=32", "train.batch_size=16", "train.total_steps=60",
    "train.eval_every=30", "train.val_repeats=2", "train.warmup_steps=5", "train.progress_bar=false",
    "train.tensorboard=false", "train.lr=3e-3", "data.val_split=train_val",
]


@pytest.mark.parametrize("name", ["tiny", "t2m"])
def test_yaml_presets_match_the_dataclass_presets(name):
    assert config_to_dict(load_config(EvaluatorConfig, REPO / "configs" / "eval" / f"{name}.yaml")) == config_to_dict(get_preset(name))


def test_t2m_preset_has_guo_et_al_sizes():
    m, t = get_preset("t2m").model, get_preset("t2m").train
    assert (m.dim_word, m.dim_pos_ohot, m.dim_text_hidden, m.dim_coemb_hidden) == (300, 15, 512, 512)
    assert (m.dim_movement_enc_hidden, m.dim_movement_latent, m.dim_motion_hidden, m.unit_length) == (512, 512, 1024, 4)
    assert (m.max_text_len, t.loss, t.margin, t.batch_size, t.lr) == (20, "margin", 10.0, 32, 1e-4)


def _small_model(syn_corpus: Path) -> tuple[TextMotionEvaluator, list]:
    ds = load_humanml3d(syn_corpus, "train")
    cfg = apply_overrides(get_preset("tiny"), SMALL)
    vocab = Vocabulary.build(c for clip in ds.clips for c in clip.captions)
    torch.manual_seed(0)
    return TextMotionEvaluator(cfg, vocab, mean=ds.mean, std=ds.std), ds.clips


def test_encoders_are_batch_independent_and_validate_input(syn_corpus):
    model, clips = _small_model(syn_corpus)
    feats = [c.features for c in clips[:6]]
    together = model.encode_motion(feats, batch_size=6)
    alone = np.concatenate([model.encode_motion([f]) for f in feats])
    assert together.shape == (6, 32) and np.allclose(together, alone, atol=1e-5)
    # an (N, T, D) array with lengths is the same as the cropped list
    t = max(f.shape[0] for f in feats)
    padded = np.zeros((6, t, 263), np.float32)
    for i, f in enumerate(feats):
        padded[i, : f.shape[0]] = f
    assert np.allclose(model.encode_motion(padded, [f.shape[0] for f in feats]), together, atol=1e-5)
    caps = [clips[0].captions[0], clips[0].captions[0].text, list(clips[0].captions[0].tokens)]
    text = model.encode_text(caps)
    assert np.allclose(text[0], text[1], atol=1e-6) and np.allclose(text[0], text[2], atol=1e-6)
    bad = feats[0].copy()
    bad[3, 5] = np.nan
    with pytest.raises(ValueError, match=r"features\[1\].*NaN"):
        model.encode_motion([feats[0], bad])
    with pytest.raises(ValueError, match="263"):
        model.encode_motion([np.zeros((40, 251), np.float32)])
    with pytest.raises(ValueError, match="shorter than one unit"):
        model.encode_motion([np.zeros((3, 263), np.float32)])


def test_checkpoint_round_trip_is_strict(syn_corpus, tmp_path):
    model, clips = _small_model(syn_corpus)
    out = model.save_pretrained(tmp_path / "ev")
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["model.safetensors", "config.yaml", "vocab.json", "mean.npy", "std.npy", "manifest.json"])
    again = TextMotionEvaluator.from_pretrained(out)
    feats = [c.features for c in clips[:3]]
    assert np.array_equal(again.encode_motion(feats), model.encode_motion(feats))
    assert again.vocab.words == model.vocab.words
    # a hand-edited weights file no longer matches its manifest
    state = load_file(str(out / "model.safetensors"))
    state["word_emb.weight"] = state["word_emb.weight"] + 1.0
    save_file(state, str(out / "model.safetensors"))
    with pytest.raises(ValueError, match="manifest"):
        TextMotionEvaluator.from_pretrained(out)
    # unverified load still refuses weights that do not fit (a missing key)
    del state["text_encoder.hidden"]
    save_file(state, str(out / "model.safetensors"))
    with pytest.raises(ValueError, match="missing keys \\['text_encoder.hidden'\\]"):
        TextMotionEvaluator.from_pretrained(out, verify=False)
    (out / "vocab.json").unlink()
    with pytest.raises(FileNotFoundError, match="vocab.json"):
        TextMotionEvaluator.from_pretrained(out)


def test_protocol_on_real_pairs(syn_corpus):
    model, clips = _small_model(syn_corpus)
    clips = clips[:40]
    feats = [c.features for c in clips]
    caps = [c.captions[0] for c in clips]
    same = t2m_metrics(model, caps, feats, feats, seed=1)
    assert same["fid"] == pytest.approx(0.0, abs=1e-6)
    for k in ("top1", "top3", "matching_score", "diversity"):
        assert same[k] == pytest.approx(same["real_" + k])
    assert same["n"] == 40 and same["diversity_times"] == 40
    other = t2m_metrics(model, caps, feats, feats[::-1], seed=1)
    assert other["fid"] == pytest.approx(0.0, abs=1e-4)  # same set of motions, other order
    assert other["matching_score"] != pytest.approx(same["matching_score"])
    mm = multimodality_metric(model, [feats[:2], feats[2:4]], times=None)
    emb = model.encode_motion(feats[:4])
    expected = (np.linalg.norm(emb[0] - emb[1]) + np.linalg.norm(emb[2] - emb[3])) / 2
    assert mm == pytest.approx(expected, rel=1e-5)


def _weights(path: Path) -> dict:
    return load_file(str(path / "model.safetensors"))


def test_training_learns_is_deterministic_and_writes_a_loadable_run(syn_corpus, tmp_path):
    cfg = apply_overrides(get_preset("tiny"), SMALL)
    s1 = train_evaluator(cfg, syn_corpus, tmp_path / "a")
    assert s1["steps"] == 60 and s1["best_step"] in (30, 60)
    records = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    train_losses = [r["loss"] for r in records if r["split"] == "train"]
    assert train_losses[-1] < train_losses[0]
    # well above chance (1/32 top-1, 3/32 top-3) on the pairs it was selected on
    assert s1["last_val"]["top3"] > 0.3
    ev = TextMotionEvaluator.from_pretrained(tmp_path / "a")
    assert ev.config.data.data_root == str(syn_corpus.resolve()) and ev.config.model.nfeats == 263
    with pytest.raises(FileExistsError, match="overwrite"):
        train_evaluator(cfg, syn_corpus, tmp_path / "a")
    train_evaluator(cfg, syn_corpus, tmp_path / "b")
    wa, wb = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_cli_runs_with_overrides(syn_corpus, tmp_path, monkeypatch):
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import train_evaluator as cli
    finally:
        sys.path.pop(0)
    argv = ["--data_root", str(syn_corpus), "--out_dir", str(tmp_path / "cli"), "--preset", "tiny"]
    argv += [o for o in SMALL if not o.startswith("train.total_steps")] + ["train.total_steps=4", "train.eval_every=0"]
    summary = cli.main(argv)
    assert summary["steps"] == 4 and (tmp_path / "cli" / "manifest.json").is_file()
    with pytest.raises(SystemExit):
        cli.main(["--data_root", str(syn_corpus), "--out_dir", str(tmp_path / "x"), "--preset", "huge"])


def test_contrastive_losses_closed_form():
    from motiongpt.eval.train import contrastive_loss

    text = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    motion = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    margin = apply_overrides(get_preset("t2m"), ["train.margin=6"])
    # positives at distance 0; each text's negative (shifted by one) at distance 5: (6 - 5)^2
    assert float(contrastive_loss(text, motion, margin, shift=1)) == pytest.approx(1.0)
    nce = apply_overrides(get_preset("tiny"), ["train.temperature=1"])
    # logits -d: each row [0, -5] -> cross-entropy log(1 + e^-5), the same both ways
    assert float(contrastive_loss(text, motion, nce)) == pytest.approx(math.log(1 + math.exp(-5)), rel=1e-5)
    # two identical captions are not each other's negatives: only the own pair is left, loss 0
    same = torch.ones(2, 2, dtype=torch.bool)
    assert float(contrastive_loss(text, motion, nce, same_text=same)) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.gpu
def test_encoders_on_cuda_match_cpu(syn_corpus):
    model, clips = _small_model(syn_corpus)
    feats, caps = [c.features for c in clips[:4]], [c.captions[0] for c in clips[:4]]
    cpu_motion, cpu_text = model.encode_motion(feats), model.encode_text(caps)
    model.to("cuda")
    assert model.device.type == "cuda"
    assert np.allclose(model.encode_motion(feats), cpu_motion, rtol=1e-3, atol=1e-3)
    assert np.allclose(model.encode_text(caps), cpu_text, rtol=1e-3, atol=1e-3)
