"""eval.py through a subprocess, at nano size: metrics.json / metrics.md, and option errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, str(REPO / "eval.py"), *args], capture_output=True, text=True,
                          timeout=300, cwd=REPO, env=env)


def test_cli_writes_metrics_and_resumes(run_dir, evaluator_dir, syn_corpus, tmp_path):
    out = tmp_path / "eval"
    args = ["--lora_path", str(run_dir), "--data_root", str(syn_corpus), "--evaluator", str(evaluator_dir),
            "--tasks", "t2m,t2m_keys_pos,m2t", "--repeats", "2", "--max_texts", "4", "--mm_texts", "2",
            "--mm_gens", "2", "--dataname", "t2m", "--seed", "3", "--no_progress", "--out_dir", str(out)]
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((out / "metrics.json").read_text())
    assert set(doc["tasks"]) == {"t2m", "t2m_keys_pos", "m2t"} and doc["config"]["seed"] == 3
    assert doc["dataset"]["n_motions"] == 4 and doc["tasks"]["t2m"]["metrics"]["top3"]["n"] == 2
    md = (out / "metrics.md").read_text()
    for row in ("| Real |", "| VQ-VAE reconstruction |", "| Ours (t2m) |", "| t2m_keys_pos (position) |",
                "## Motion-to-text", "## Semantic accuracy"):
        assert row in md, row
    assert "R-precision batches of 4" in md  # fewer motions than 32: flagged as not comparable
    assert md.strip() in proc.stdout
    # t2m, t2m_keys_pos, its free pass, m2t and MultiModality, two repeats each
    assert len(list((out / "cache").glob("*/repeat_*.json"))) == 10
    assert doc["cache"]["generated"] == 10 and doc["cache"]["reused"] == 0

    again = run_cli(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    doc2 = json.loads((out / "metrics.json").read_text())
    assert doc2["cache"]["generated"] == 0 and doc2["cache"]["reused"] == 10
    assert doc2["per_repeat"] == doc["per_repeat"]

    # other settings on the same cache: an error naming the change, pointing at --fresh
    changed = run_cli(*[a if a != "3" else "4" for a in args])
    assert changed.returncode == 2 and "seed: 3 -> 4" in changed.stderr and "--fresh" in changed.stderr


def test_cli_rejects_bad_options_before_loading(tmp_path):
    bad = run_cli("--lora_path", str(tmp_path), "--data_root", str(tmp_path), "--out_dir", str(tmp_path / "o"),
                  "--tasks", "t2m,dance")
    assert bad.returncode == 2 and "unknown task(s) ['dance']" in bad.stderr
    bad = run_cli("--lora_path", str(tmp_path), "--data_root", str(tmp_path), "--out_dir", str(tmp_path / "o"),
                  "--dataname", "humanml")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
    bad = run_cli("--lora_path", str(tmp_path), "--data_root", str(tmp_path), "--out_dir", str(tmp_path / "o"),
                  "--cond_scale", "-1")  # MoMask's name for --guidance_scale
    assert bad.returncode == 2 and "guidance_scale" in bad.stderr
    missing = run_cli("--lora_path", str(tmp_path / "nope"), "--data_root", str(tmp_path),
                      "--out_dir", str(tmp_path / "o"))
    assert missing.returncode == 2 and "checkpoint directory not found" in missing.stderr
    assert not (tmp_path / "o").exists()
