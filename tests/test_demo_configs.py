"""`make demo`'s stages live in configs/demo/*.yaml: the demo and the standalone command of the
same file (finetune_motion.py, scripts/prepare_motion.py, scripts/train_evaluator.py) build the
same config."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from motiongpt.config import config_to_dict
from motiongpt.pipeline import DemoConfig, finetune_stage_config

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("stage", ["full", "lora"])
def test_demo_stage_equals_the_standalone_command(stage, tmp_path, cli_module):
    demo = DemoConfig()
    config = getattr(demo, f"{stage}_config")
    assert config == f"configs/demo/finetune_{stage}.yaml" and getattr(demo, f"{stage}_overrides") == []
    paths = {"prepared": tmp_path / "prepared", "vq_dir": tmp_path / "vqvae", "out_dir": tmp_path / f"llm_{stage}"}
    base = "tiny" if stage == "full" else str(tmp_path / "llm_full")
    encoder = str(tmp_path / "smollm2") if stage == "full" else ""
    from_demo = finetune_stage_config(config, [], base_model=base, text_encoder=encoder,
                                      text_encoder_layers=demo.text_encoder_layers, **paths)
    argv = ["--config", str(REPO / config), "--base_model", base,
            *[f"--{k}={v}" for k, v in paths.items()]] + ([f"text_encoder={encoder}"] if encoder else [])
    mod = cli_module("finetune_motion.py")
    from_cli = mod.config_from_args(mod.build_parser().parse_args(argv))
    assert config_to_dict(from_cli) == config_to_dict(from_demo), shlex.join(argv)
    # the stage's sizing is in the file, not in Python strings
    if stage == "full":
        assert from_cli.train.max_steps == 1500 and from_cli.batch.packing and from_cli.method == "full"
        assert from_cli.text_encoder_layers == demo.text_encoder_layers
    else:
        assert from_cli.train.max_steps == 60 and from_cli.method == "lora"


def test_demo_config_headers_quote_a_working_command():
    for stage in ("full", "lora"):
        text = (REPO / "configs" / "demo" / f"finetune_{stage}.yaml").read_text()
        assert f"finetune_motion.py --config configs/demo/finetune_{stage}.yaml" in text


def test_demo_prepare_stage_equals_the_standalone_command(tmp_path, cli_module):
    from motiongpt.pipeline import prepare_stage_config

    demo = DemoConfig()
    assert demo.prepare_config == "configs/demo/prepare.yaml" and demo.prepare_overrides == []
    encoder = str(tmp_path / "smollm2")
    from_demo = prepare_stage_config(demo, tmp_path / "instructions", tmp_path / "prepared", encoder)
    mod = cli_module("scripts/prepare_motion.py")
    argv = ["--config", str(REPO / demo.prepare_config), "--data_dir", str(tmp_path / "instructions"),
            "--out_dir", str(tmp_path / "prepared"), "--base_model", encoder]
    from_cli = mod.config_from_args(mod.build_parser().parse_args(argv))
    assert config_to_dict(from_cli) == config_to_dict(from_demo)
    assert from_cli.template == "compact"


def test_demo_evaluator_stage_equals_the_standalone_command():
    from motiongpt.config import load_config
    from motiongpt.eval.evaluator import EvaluatorConfig
    from motiongpt.pipeline import evaluator_stage_config

    demo = DemoConfig()
    assert demo.evaluator_config == "configs/demo/evaluator.yaml" and demo.evaluator_overrides == []
    # scripts/train_evaluator.py --config FILE reads it with load_config, no other default
    from_cli = load_config(EvaluatorConfig, REPO / demo.evaluator_config)
    assert config_to_dict(from_cli) == config_to_dict(evaluator_stage_config(demo))
    assert from_cli.train.total_steps == 150
    assert "train_evaluator.py --config configs/demo/evaluator.yaml" in (REPO / demo.evaluator_config).read_text()
