"""generate_motion.py through a subprocess, at tiny size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, str(REPO / "generate_motion.py"), *args], capture_output=True, text=True,
                          timeout=300, cwd=REPO, env=env)


def test_cli_text_file_repeats_and_renders(vocab_run, vocab_gen, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a person walks forward.#40\na person jumps.#24\n")
    out = tmp_path / "out"
    proc = run_cli("--lora_path", str(vocab_run), "--text_path", str(prompts), "--repeat_times", "2",
                   "--out_dir", str(out), "--render", "--no_mp4", "--seed", "7")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "4 of 4 samples ok" in proc.stdout
    doc = json.loads((out / "results.json").read_text())
    assert [s["name"] for s in doc["samples"]] == ["000_00", "000_01", "001_00", "001_01"]
    assert [s["seed"] for s in doc["samples"]] == [7, 8, 9, 10]
    assert doc["meta"]["checkpoint"] == str(vocab_run.resolve()) and doc["meta"]["constrained"] is True
    for s, frames in zip(doc["samples"], (40, 40, 24, 24)):
        assert s["ok"] and s["length_frames"] == frames
        for key in ("joints", "features", "tokens", "gif", "bvh"):
            assert (out / s["files"][key]).is_file(), key
        assert np.load(out / s["files"]["joints"]).shape == (frames, 22, 3)
    # any sample regenerates alone from its record (same seed, same sampling settings)
    from motiongpt.generate import GenerationRequest, SamplingConfig

    rec = doc["samples"][2]
    sampling = SamplingConfig(**doc["meta"]["sampling"])
    again = vocab_gen.generate([GenerationRequest.from_dict(rec["request"])], sampling)[0]
    assert again.codes == rec["codes"]


def test_cli_motion_input_and_errors(vocab_run, vocab_gen, tmp_path):
    joints, _ = vocab_gen.decode([1, 5, 9, 13, 17, 21, 25, 29])
    np.save(tmp_path / "clip.npy", joints)
    out = tmp_path / "out"
    proc = run_cli("--lora_path", str(vocab_run), "--task", "inbetween", "--motion", str(tmp_path / "clip.npy"),
                   "--motion_length", "40", "--context_frames", "8", "--out_dir", str(out), "--no_bvh",
                   "--temperature", "0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    s = json.loads((out / "results.json").read_text())["samples"][0]
    codes = vocab_gen.encode_motion(joints)
    assert s["ok"] and s["length_frames"] == 40
    assert s["codes"][:2] == codes[:2] and s["codes"][-2:] == codes[-2:]
    assert "bvh" not in s["files"] and (out / s["files"]["joints"]).is_file()

    bad = run_cli("--lora_path", str(vocab_run), "--num_beams", "2", "--temperature", "0.5", "--out_dir",
                  str(tmp_path / "bad"))
    assert bad.returncode == 2 and "error:" in bad.stderr and "deterministic" in bad.stderr
    assert not (tmp_path / "bad").exists()
