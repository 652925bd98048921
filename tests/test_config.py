"""Typed config loading: YAML + overrides, strict keys and types, atomic save/reload."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import yaml

from motiongpt.config import ConfigError, apply_overrides, config_to_dict, load_config, save_config


@dataclass
class Inner:
    rank: int = 8
    """LoRA rank."""
    targets: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"])
    """Modules to adapt."""


@dataclass
class Outer:
    name: str = "run"
    """Run name."""
    lr: float = 1e-3
    """Learning rate."""
    resume: bool = False
    """Resume from the last checkpoint."""
    seed: int | None = None
    """Seed, or None for random."""
    lora: Inner = field(default_factory=Inner)
    """Adapter settings."""


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: 2e-4\nlora:\n  rank: 16\n")
    cfg = load_config(Outer, path, ["lora.targets=[a,b,c]", "resume=true", "seed=7", "name=x"])
    assert cfg.lr == pytest.approx(2e-4)
    assert cfg.lora.rank == 16 and cfg.lora.targets == ["a", "b", "c"]
    assert cfg.resume is True and cfg.seed == 7 and cfg.name == "x"


def test_unknown_key_names_file_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("lorra: {rank: 2}\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*lorra"):
        load_config(Outer, path)
    with pytest.raises(ConfigError, match="nope"):
        apply_overrides(Outer(), ["lora.nope=1"])


def test_bad_types_are_errors():
    with pytest.raises(ConfigError, match="lora.rank"):
        apply_overrides(Outer(), ["lora.rank=abc"])
    with pytest.raises(ConfigError, match="resume"):
        apply_overrides(Outer(), ["resume=maybe"])
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(Outer(), ["resume"])
    assert apply_overrides(Outer(), ["seed=null"]).seed is None


def test_save_roundtrip(tmp_path):
    cfg = apply_overrides(Outer(), ["lora.rank=4", "lr=0.5"])
    save_config(cfg, tmp_path / "sub" / "config.yaml")
    assert yaml.safe_load((tmp_path / "sub" / "config.yaml").read_text()) == config_to_dict(cfg)
    assert load_config(Outer, tmp_path / "sub" / "config.yaml") == cfg
    assert not list((tmp_path / "sub").glob("*.tmp"))
