"""``MotionGenerator.recommended_guidance_scale``: 2 for a run whose instruction data held
unconditional t2m records (``uncond_prob > 0``), 1 (off) otherwise.

Both runs go through the real path: HumanML3D-layout codes -> ``generate_instruction_dataset``
(which records ``uncond_prob`` in ``meta.json``) -> ``prepare_dataset`` -> one ``finetune`` step.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from gen_testlib import NB_CODE, QUICK, WORDS, make_vq


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A HumanML3D-layout folder with token codes only (``VQVAE/<id>.npy``, captions, splits)."""
    root = tmp_path_factory.mktemp("rec_guid") / "data"
    (root / "VQVAE").mkdir(parents=True)
    (root / "texts").mkdir()
    rng = random.Random(0)
    ids = [f"{i:06d}" for i in range(12)]
    for cid in ids:
        np.save(root / "VQVAE" / f"{cid}.npy", np.array([rng.randrange(NB_CODE) for _ in range(rng.randint(4, 10))],
                                                         np.int64))
        caption = " ".join(rng.choice(WORDS) for _ in range(5))
        (root / "texts" / f"{cid}.txt").write_text(f"{caption}.#a/DET#0.0#0.0\n", encoding="utf-8")
    (root / "train.txt").write_text("\n".join(ids[:10]) + "\n", encoding="utf-8")
    (root / "val.txt").write_text("\n".join(ids[10:]) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def vq_dir(tmp_path_factory) -> Path:
    return make_vq(tmp_path_factory.mktemp("rec_guid_vq") / "vq")


def _run(corpus: Path, vq_dir: Path, root: Path, uncond_prob: float) -> tuple[Path, dict]:
    """A one-step nano LoRA run on instruction data built with ``uncond_prob``; returns (run, report)."""
    from motiongpt.config import apply_overrides
    from motiongpt.llm.dataset_builder import InstructionDataConfig, generate_instruction_dataset
    from motiongpt.llm.finetune import finetune
    from motiongpt.llm.finetune_config import FinetuneConfig
    from motiongpt.llm.prepare import PrepareConfig, prepare_dataset

    report = generate_instruction_dataset(InstructionDataConfig(
        data_root=str(corpus), out_dir=str(root / "instructions"), tasks=["t2m", "m2t"], nb_code=NB_CODE,
        mirror=False, splits=["train", "val"], min_tokens=4, uncond_prob=uncond_prob))
    prepare_dataset(PrepareConfig(data_dir=str(root / "instructions"), out_dir=str(root / "prepared"),
                                  base_model="nano", max_len=320, vocab_size=360, seed=0))
    run = root / "run"
    finetune(apply_overrides(FinetuneConfig(), QUICK + [
        f"prepared={root / 'prepared'}", f"out_dir={run}", f"vq_dir={vq_dir}", "method=lora", "train.max_steps=1",
    ]))
    return run, report


def test_recommended_scale_follows_the_instruction_data(corpus, vq_dir, tmp_path):
    from motiongpt.generate import MotionGenerator

    guided_run, report_with = _run(corpus, vq_dir, tmp_path / "with", 0.5)
    assert report_with["config"]["uncond_prob"] == 0.5 and report_with["counts"]["train"]["uncond"] > 0
    plain_run, report = _run(corpus, vq_dir, tmp_path / "without", 0.0)
    assert report["config"]["uncond_prob"] == 0.0 and report["counts"]["train"]["uncond"] == 0

    guided = MotionGenerator.from_checkpoint(guided_run)
    from motiongpt.generate.generator import GUIDED_RECOMMENDED_SCALE

    assert guided.recommended_guidance_scale == GUIDED_RECOMMENDED_SCALE == 1.5
    # the unconditional prompt guidance decodes with is the one the unconditional records were
    # trained on (two definitions, builder and generator, that must agree token for token)
    from datasets import load_from_disk

    uncond_ids = guided.unconditional_prompt_ids()
    train = load_from_disk(str(tmp_path / "with" / "prepared" / "train"))
    prompts = [[t for t, lab in zip(row["input_ids"], row["labels"]) if lab == -100] for row in train]
    assert sum(p == uncond_ids for p in prompts) == report_with["counts"]["train"]["uncond"]
    assert MotionGenerator.from_checkpoint(plain_run).recommended_guidance_scale == 1.0

    # built directly: off unless told, and the value is checked
    direct = MotionGenerator(guided.model, guided.tokenizer, guided.fmt, guided.vq)
    assert direct.recommended_guidance_scale == 1.0
    assert MotionGenerator(guided.model, guided.tokenizer, guided.fmt, guided.vq,
                           recommended_guidance_scale=3).recommended_guidance_scale == 3.0
    with pytest.raises(ValueError, match="recommended_guidance_scale"):
        MotionGenerator(guided.model, guided.tokenizer, guided.fmt, guided.vq, recommended_guidance_scale=-1.0)


def test_run_carries_its_instruction_settings(corpus, vq_dir, tmp_path, caplog):
    """The run records the instruction builder's settings at fine-tune time: generation reads them
    from the run, so deleting the instruction and prepared folders changes nothing; a run without
    them says which settings it assumes."""
    import json
    import shutil

    import yaml

    from motiongpt.generate import MotionGenerator

    run, report = _run(corpus, vq_dir, tmp_path / "with", 0.5)
    resolved = yaml.safe_load((run / "run_config.yaml").read_text())["resolved"]
    assert resolved["instruction_config"] == report["config"]
    assert resolved["instruction_config_source"].endswith("instructions/meta.json")
    prepared_copy = json.loads((tmp_path / "with" / "prepared" / "instruction_config.json").read_text())
    assert prepared_copy["config"] == report["config"]
    before = MotionGenerator.from_checkpoint(run)
    shutil.rmtree(tmp_path / "with" / "instructions")
    shutil.rmtree(tmp_path / "with" / "prepared")
    after = MotionGenerator.from_checkpoint(run)
    for attr in ("recommended_guidance_scale", "trained_tasks", "max_motion_tokens", "guided_clauses"):
        assert getattr(after, attr) == getattr(before, attr), attr
    assert after.recommended_guidance_scale == 1.5 and after.trained_tasks == ("t2m", "m2t")

    # a run whose records the builder did not make: the assumed settings are named
    cfg_path = run / "run_config.yaml"
    data = yaml.safe_load(cfg_path.read_text())
    data["resolved"]["instruction_config"] = None
    data["resolved"]["instruction_config_source"] = "x/meta.json not found"
    cfg_path.write_text(yaml.safe_dump(data, sort_keys=False))
    with caplog.at_level("WARNING", logger="motiongpt.generate.generator"):
        bare = MotionGenerator.from_checkpoint(run)
    assert bare.recommended_guidance_scale == 1.0 and bare.trained_tasks is None
    assert any("x/meta.json not found" in r.getMessage() and "uncond_prob 0" in r.getMessage()
               for r in caplog.records)
