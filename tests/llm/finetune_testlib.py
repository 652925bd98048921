"""Shared helpers of the fine-tuning tests: a tiny prepared dataset and quick configs.

The prepared dataset is made by the real preparation code (``motiongpt.llm.prepare``) from a few
dozen synthetic instruction records: t2m (caption -> codes) and m2t (codes -> caption).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from motiongpt.config import apply_overrides  # noqa: E402
from motiongpt.llm.finetune_config import FinetuneConfig  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
WORDS = ("a person walks forward turns left right jumps runs waves the hand arm sits down stands up slowly "
         "quickly in a circle backwards kicks with his her leg then stops and").split()
NB_CODE = 32


def _captions(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 7))) + "." for _ in range(n)]


def make_prepared(root: Path, *, n_train: int = 24, n_val: int = 6, seed: int = 0, kind: str = "vocab",
                  train_on_prompt: bool = False, base_model: str = "nano", m2t: bool = True) -> Path:
    """A small prepared dataset (t2m and, with ``m2t``, m2t records over ``NB_CODE`` codes) at
    ``root``, made by ``motiongpt.llm.prepare.prepare_dataset`` from instruction records written next
    to it, with ``base_model``'s tokenizer (a preset: a BPE trained on the records)."""
    from motiongpt.llm.dataset_builder import write_records
    from motiongpt.llm.prepare import PrepareConfig, prepare_dataset
    from motiongpt.llm.templates import load_instructions
    from motiongpt.llm.tokens import MotionTokenFormat, codes_to_text, save_motion_format

    root = Path(root)
    records_dir = root.parent / f"{root.name}_records"
    fmt = MotionTokenFormat(kind, NB_CODE)
    caps = _captions(n_train + n_val, seed)
    rng = random.Random(seed + 1)
    instr = load_instructions()

    def records(captions: list[str]) -> list[dict[str, Any]]:
        out = []
        for i, cap in enumerate(captions):
            codes = [rng.randrange(NB_CODE) for _ in range(rng.randint(4, 12))]
            if i % 3 or not m2t:
                out.append({"instruction": instr["t2m"][0], "input": cap, "output": codes_to_text(codes, fmt),
                            "task": "t2m"})
            else:
                out.append({"instruction": instr["m2t"][0], "input": codes_to_text(codes, fmt), "output": cap,
                            "task": "m2t"})
        return out

    records_dir.mkdir(parents=True, exist_ok=True)
    write_records(records_dir / "train.json", records(caps[:n_train]))
    if n_val:
        write_records(records_dir / "val.json", records(caps[n_train:]))
    save_motion_format(fmt, records_dir)
    prepare_dataset(PrepareConfig(data_dir=str(records_dir), out_dir=str(root), base_model=base_model, max_len=256,
                                  train_on_prompt=train_on_prompt, vocab_size=360, seed=seed))
    return root


QUICK = [
    "base_model=nano", "dtype=float32", "lora.r=4", "lora.alpha=8", "lora.dropout=0.0",
    "batch.micro_batch_size=4", "batch.max_seq_len=256", "optim.lr=3e-3", "optim.warmup_steps=2",
    "train.log_every=1", "train.tensorboard=false", "train.progress_bar=false", "train.keep_last_n=2",
]


def quick_cfg(prepared: Path, out_dir: Path, *extra: str) -> FinetuneConfig:
    """A nano-model config for a few CPU steps (``extra``: more ``key=value`` overrides)."""
    return apply_overrides(FinetuneConfig(), QUICK + [f"prepared={prepared}", f"out_dir={out_dir}", *extra])


def train_losses(out_dir: Path) -> list[float]:
    from motiongpt.utils.metrics import read_jsonl

    return [r["loss"] for r in read_jsonl(Path(out_dir) / "metrics.jsonl") if r["split"] == "train"]


def val_loss(model, prepared: Path) -> float:
    """Validation loss computed exactly as the trainer does (per-record targets, summed / count)."""
    import datasets
    import torch

    from motiongpt.llm.packing import IGNORE_INDEX, TokenizedRecords, collate_rows

    val = TokenizedRecords.from_dataset(datasets.load_from_disk(str(prepared / "val")))
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(val), 4):
            batch = collate_rows(val, [[i] for i in range(start, min(start + 4, len(val)))], pad_id=3, packed=False)
            logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                           position_ids=batch["position_ids"], use_cache=False).logits
            total += torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), batch["targets"].reshape(-1), ignore_index=IGNORE_INDEX,
                reduction="sum").item()
            count += int(batch["num_targets"])
    return total / count


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """One intra-op thread for these tests (restored afterwards).

    On a shared 2-core machine, torch's OpenMP workers spin-wait for each other whenever another
    process holds a core: a 24-step nano run measured 0.7 s with 1 thread and 22-99 s with 2.
    The nano model gains nothing from a second thread anyway. Test modules import this fixture.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
