"""bench/bench_finetune.py's model and trainer arguments (no model is built, nothing is trained)."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_finetune", REPO / "bench" / "bench_finetune.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _args(**kw) -> argparse.Namespace:
    base = dict(model="tiny", prepared="/p", lora_r=16, lora_alpha=32.0, lora_dropout=0.05, rows=3, micro_batch=8,
                max_seq_len=512, warmup=1, steps=2, text_encoder_layers=4)
    return argparse.Namespace(**{**base, **kw})


def test_resolve_model(bench, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert bench.resolve_model("tiny") == "tiny" and bench.model_tag("nano") == "nano"
    import motiongpt.llm.pretrained as pretrained

    monkeypatch.setattr(pretrained, "fetch_smollm2", lambda: tmp_path)
    assert bench.resolve_model("smollm2") == str(tmp_path.resolve())
    with pytest.raises(ValueError, match="config.json"):
        bench.resolve_model(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    assert bench.resolve_model(str(tmp_path)) == str(tmp_path.resolve())
    tag = bench.model_tag(str(tmp_path.resolve()))
    assert tag.startswith(tmp_path.name + "-") and "/" not in tag and tag != bench.model_tag(str(tmp_path / "x"))


def test_ours_configs(bench, tmp_path: Path) -> None:
    a = _args(model="/models/smol")
    lora = bench._ours_cfg(a, "ours", tmp_path)
    assert (lora.base_model, lora.method, lora.text_encoder, lora.lora.r) == ("/models/smol", "lora", "", 16)
    assert not lora.batch.packing and lora.batch.group_by_length and lora.batch.micro_batch_size == 8
    te = bench._ours_cfg(_args(model="/models/smol", text_encoder_layers=2), "ours_textenc", tmp_path)
    assert (te.base_model, te.method, te.text_encoder, te.text_encoder_layers) == ("tiny", "full", "/models/smol", 2)
    assert te.batch.packing and not te.batch.group_by_length and te.batch.micro_batch_size == 3
    assert te.train.max_steps == 3 and te.dtype == "float32"
    preset = bench._ours_cfg(_args(), "ours", tmp_path)
    assert (preset.base_model, preset.method, preset.text_encoder) == ("tiny", "lora", "")


def test_textenc_needs_a_model_directory(bench, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", ["bench_finetune.py", "--trainers", "ours,ours_textenc"])
    with pytest.raises(SystemExit):
        bench.main()
    assert "ours_textenc needs a pretrained model directory" in capsys.readouterr().err
