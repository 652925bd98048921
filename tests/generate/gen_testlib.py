"""Builders of the generation tests: a tiny VQ-VAE and a barely trained nano checkpoint.

The checkpoint is made by the real code path (instruction records of all eight tasks from
``motiongpt.llm.tasks``, ``prepare_dataset``, ``finetune``) but trained for a few steps only: the
constraints must make even such a model's output valid.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

NB_CODE = 32
WORDS = ("a person walks forward turns left right jumps runs waves the hand arm sits down stands up slowly "
         "quickly in a circle backwards kicks with his her leg then stops and").split()
QUICK = [
    "base_model=nano", "dtype=float32", "lora.r=4", "lora.alpha=8", "lora.dropout=0.0",
    "batch.micro_batch_size=8", "batch.max_seq_len=320", "optim.lr=3e-3", "optim.warmup_steps=1",
    "train.log_every=1", "train.tensorboard=false", "train.progress_bar=false", "train.keep_last_n=1",
    "train.eval_every=0", "train.save_every=0",
]


def make_vq(out: Path, seed: int = 0) -> Path:
    """An untrained tiny VQ-VAE (``NB_CODE`` codes) with a codebook initialised from data."""
    import torch

    from motiongpt.config import apply_overrides
    from motiongpt.vq import VQVAE, get_preset

    torch.manual_seed(seed)
    cfg = apply_overrides(get_preset("tiny"), ["model.width=32", "model.code_dim=16", f"model.nb_code={NB_CODE}",
                                               "model.depth=1"])
    rng = np.random.default_rng(seed)
    # small std: decoded features stay near the mean, so joints stay near a rest-like pose
    mean = np.zeros(263, np.float32)
    mean[3] = 0.9  # root height
    std = np.full(263, 0.05, np.float32)
    vq = VQVAE(cfg, mean=mean, std=std)
    vq.train()
    with torch.no_grad():
        vq(torch.from_numpy(rng.normal(size=(4, 64, 263)).astype(np.float32)))  # codebook from data
    vq.eval()
    vq.save_pretrained(out)
    return out


def _captions(n: int, rng: random.Random) -> list[str]:
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 7))) + "." for _ in range(n)]


def make_records(out: Path, kind: str, n_clips: int = 16, seed: int = 0) -> Path:
    """Instruction records of all eight tasks for ``n_clips`` random motions (``train.json``, ``val.json``)."""
    from motiongpt.llm.dataset_builder import write_records
    from motiongpt.llm.tasks import MotionItem, TaskConfig, build_item_records
    from motiongpt.llm.templates import TASKS, load_instructions
    from motiongpt.llm.tokens import MotionTokenFormat, save_motion_format

    rng = random.Random(seed)
    fmt = MotionTokenFormat(kind, NB_CODE)
    cfg = TaskConfig(tasks=list(TASKS), records_per_clip=1)
    instr = load_instructions()
    caps = _captions(n_clips * 2, rng)
    records = []
    for i in range(n_clips):
        codes = tuple(rng.randrange(NB_CODE) for _ in range(rng.randint(5, 12)))
        item = MotionItem(f"C{i:03d}", codes, (caps[2 * i], caps[2 * i + 1]))
        recs, _ = build_item_records(item, cfg, fmt, instr, seed=seed)
        records.extend(recs)
    out.mkdir(parents=True, exist_ok=True)
    write_records(out / "train.json", records[4:])
    write_records(out / "val.json", records[:4])
    save_motion_format(fmt, out)
    return out


def make_checkpoint(root: Path, kind: str = "vocab", method: str = "lora", steps: int = 3) -> Path:
    """A nano checkpoint trained ``steps`` steps on records of every task; returns its run directory."""
    from motiongpt.config import apply_overrides
    from motiongpt.llm.finetune import finetune
    from motiongpt.llm.finetune_config import FinetuneConfig
    from motiongpt.llm.prepare import PrepareConfig, prepare_dataset

    root = Path(root)
    vq = make_vq(root / "vq")
    records = make_records(root / "records", kind)
    prepared = root / "prepared"
    prepare_dataset(PrepareConfig(data_dir=str(records), out_dir=str(prepared), base_model="nano", max_len=320,
                                  vocab_size=360, seed=0))
    out = root / f"run_{kind}_{method}"
    cfg = apply_overrides(FinetuneConfig(), QUICK + [
        f"prepared={prepared}", f"out_dir={out}", f"vq_dir={vq}", f"method={method}", f"train.max_steps={steps}",
    ])
    finetune(cfg)
    return out


def parse_motion(raw_text: str, fmt, wrapped: bool) -> list[int]:
    """The codes of a model output that must be exactly one well-formed span (asserts it)."""
    from motiongpt.llm.tokens import MOTION_END, MOTION_START, codes_to_text, text_to_codes

    res = text_to_codes(raw_text, fmt, allow_bare=not wrapped)
    assert res.ok, (raw_text, res.problems)
    assert res.codes and all(0 <= c < fmt.nb_code for c in res.codes)
    # byte-exact: what codes_to_text writes for these codes, wrapped or bare as trained
    assert raw_text == codes_to_text(res.codes, fmt, wrap=wrapped), raw_text
    assert (MOTION_START in raw_text) == wrapped and (MOTION_END in raw_text) == wrapped
    return res.codes


def assert_clean_caption(text: str) -> None:
    """An m2t output: non-empty, no motion token, no span marker."""
    assert text.strip(), "empty caption"
    for bad in ("<Motion Token>", "</Motion Token>", "<motion_id_"):
        assert bad not in text, (bad, text)


def clauses_one_by_one(gen, caption: str, seed: int, sampling, cap: int = 12) -> list[int]:
    """What composed decoding should write for ``caption`` without context: each clause a plain
    ``t2m_next`` request with the clause's seed, within what a ``cap``-code budget leaves it (14
    codes, or the fair share, kept for each later clause: ``compose.clause_room`` restated)."""
    from motiongpt.generate import GenerationRequest
    from motiongpt.generate.compose import CLAUSE_SEED_STRIDE
    from motiongpt.llm.tasks import split_clauses

    clauses = split_clauses(caption)
    codes: list[int] = []
    for k, clause in enumerate(clauses):
        left, later = cap - len(codes), len(clauses) - 1 - k
        room = left - later * max(1, min(14, left // (later + 1))) if later else left
        one = gen.generate([GenerationRequest("t2m_next", clause, max_length_frames=4 * room,
                                              seed=seed + k * CLAUSE_SEED_STRIDE)], sampling)[0]
        codes += one.generated_codes
    return codes
