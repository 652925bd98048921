"""Tokenize an instruction dataset once into a cached, ready-to-train folder.

Input: a folder with ``train.json`` (and optionally ``val.json``) — written by
:func:`~motiongpt.llm.dataset_builder.generate_instruction_dataset`, or MotionGPT-LoRA's own
``train.json`` (``instruction`` / ``input`` / ``output`` only, outputs bare ``315,91,406``: pass
``format=digits``), used unchanged.

Output layout (the fine-tuning stage reads exactly this)::

    <out>/train/               datasets.Dataset.save_to_disk: input_ids (list int32), labels (list
                               int32, -100 on the prompt unless train_on_prompt), length (int32),
                               task (string), motion (string)
    <out>/val/                 same (only when the input has val.json)
    <out>/tokenizer/           tokenizer.save_pretrained (motion tokens added)
    <out>/motion_format.json
    <out>/prepare_config.yaml  the resolved PrepareConfig
    <out>/stats.json           per split: records, kept, dropped_too_long, truncated, length
                               min/mean/p50/p95/max, records and tokens per task; input hashes

Examples are tokenized exactly as :func:`~motiongpt.llm.templates.build_example` does (prompt and
response encoded separately, ``eos`` appended to the response) — a test holds the two equal — but
batched through the fast tokenizer inside ``datasets.map``.

Re-running with the same request and the same input files (SHA-256) is a no-op; anything else
rebuilds the whole folder, which is swapped in atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import yaml

from motiongpt.config import config_to_dict, save_config
from motiongpt.llm.dataset_builder import read_records
from motiongpt.llm.tasks import MOTION_OUTPUT_TASKS, task_of_instruction
from motiongpt.llm.templates import (
    DEFAULT_INSTRUCTIONS_PATH,
    IGNORE_INDEX,
    TEMPLATE_NAMES,
    TemplateName,
    build_prompt,
    encode_prompt,
    load_instructions,
    resolve_template,
    tokenizer_corpus,
)
from motiongpt.llm.tokens import (
    FORMAT_FILENAME,
    MOTION_END,
    MOTION_START,
    MotionTokenFormat,
    load_motion_format,
    save_motion_format,
    text_to_codes,
)
from motiongpt.utils.atomic import atomic_directory, sha256_file

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerBase

__all__ = ["PrepareConfig", "prepare_dataset", "load_prepared", "PREPARE_VERSION", "STATUS_KEPT",
           "STATUS_TRUNCATED", "STATUS_DROPPED"]

log = logging.getLogger(__name__)

PREPARE_VERSION = 1
"""Bumped when the output of the same request changes; an older folder is then rebuilt."""

STATUS_KEPT, STATUS_TRUNCATED, STATUS_DROPPED = 0, 1, 2

_PRESETS = ("tiny", "nano")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
                    "merges.txt", "tokenizer.model", "added_tokens.json", "chat_template.jinja",
                    "chat_template.json")


@dataclass
class PrepareConfig:
    """What :func:`prepare_dataset` tokenizes, with which tokenizer, and how."""

    data_dir: str = ""
    """Folder holding ``train.json`` (and optionally ``val.json``, ``motion_format.json``)."""
    out_dir: str = ""
    """Output folder (replaced as a whole; must be empty, absent, or an earlier output)."""
    base_model: str = "tiny"
    """``tiny`` / ``nano`` (a BPE tokenizer is trained here on the train split's text) or a local
    Hugging Face model directory whose tokenizer is used."""
    format: Literal["vocab", "digits"] | None = None
    """Motion token format; None: from ``data_dir/motion_format.json`` (required for a
    MotionGPT-LoRA ``train.json``, which has none: pass ``digits``)."""
    nb_code: int | None = None
    """Codebook size; None: from ``motion_format.json``, else 512."""
    template: TemplateName = "alpaca"
    """Prompt template (``alpaca_short``: Alpaca's sections without its preamble sentence;
    ``compact``: instruction and input lines and a ``###`` line; ``auto``: the tokenizer's chat
    template when it has one, else Alpaca)."""
    max_len: int = 512
    """Longest example (prompt + response + eos) in tokens; longer ones are dropped (or truncated)."""
    train_on_prompt: bool = False
    """Compute the loss on the prompt too (default: labels are -100 on the prompt)."""
    truncate: bool = False
    """Over-long examples: cut the *beginning* of the prompt body (after bos) so the input text and
    ``### Response:`` marker survive, never the response or its eos; dropped when even that cannot
    fit. Default: drop them (counted either way)."""
    vocab_size: int = 2000
    """BPE vocabulary size for the presets, before the motion tokens are added (small: the tiny
    model's embedding table is part of its size)."""
    min_frequency: int = 2
    """BPE merges need a pair seen at least this often."""
    seed: int = 0
    """Seed of the ``max_records`` subset."""
    max_records: int | None = None
    """Keep a seeded random subset of at most this many train records (quick experiments); None: all."""
    splits: list[str] = field(default_factory=lambda: ["train", "val"])
    """Record files ``<split>.json`` to tokenize (train is required, others optional)."""
    instructions_path: str | None = None
    """Instruction strings (BPE corpus, task of MotionGPT-LoRA records); None: the packaged file."""
    batch_size: int = 1000
    """Records per batched ``datasets.map`` call."""

    def validate(self) -> None:
        """Raise ``ValueError`` naming the field for a bad setting."""
        if not self.data_dir:
            raise ValueError("data_dir is required (a folder with train.json)")
        if not self.out_dir:
            raise ValueError("out_dir is required")
        if self.max_len < 8:
            raise ValueError(f"max_len must be >= 8, got {self.max_len}")
        if "train" not in self.splits:
            raise ValueError(f"splits must include 'train', got {self.splits}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        if self.max_records is not None and self.max_records < 1:
            raise ValueError(f"max_records must be positive or None, got {self.max_records}")
        if self.template not in TEMPLATE_NAMES:
            raise ValueError(f"template must be one of {', '.join(TEMPLATE_NAMES)}, got {self.template!r}")
        if self.format not in (None, "vocab", "digits"):
            raise ValueError(f"format must be vocab or digits (or None: from motion_format.json), got {self.format!r}")


# --------------------------------------------------------------------------------------------
# helpers


def _sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _resolve_format(cfg: PrepareConfig, data_dir: Path) -> MotionTokenFormat:
    saved = load_motion_format(data_dir) if (data_dir / FORMAT_FILENAME).is_file() else None
    kind = cfg.format or (saved.kind if saved else None)
    if kind is None:
        raise ValueError(
            f"{data_dir} has no {FORMAT_FILENAME}: pass format=vocab|digits (MotionGPT-LoRA train.json: digits)"
        )
    if saved is not None and cfg.format is not None and cfg.format != saved.kind:
        raise ValueError(f"format={cfg.format!r} but {data_dir / FORMAT_FILENAME} says {saved.kind!r}")
    nb_code = cfg.nb_code or (saved.nb_code if saved else 512)
    if saved is not None and cfg.nb_code is not None and cfg.nb_code != saved.nb_code:
        raise ValueError(f"nb_code={cfg.nb_code} but {data_dir / FORMAT_FILENAME} says {saved.nb_code}")
    return MotionTokenFormat(kind, nb_code)


def _is_preset(base_model: str) -> bool:
    return base_model in _PRESETS


def _base_tokenizer_hash(path: Path) -> str:
    files = [n for n in _TOKENIZER_FILES if (path / n).is_file()]
    if not files:
        raise FileNotFoundError(
            f"base_model {str(path)!r} holds no tokenizer files ({', '.join(_TOKENIZER_FILES[:3])}, ...)"
        )
    return _sha256_text("".join(f"{n}={sha256_file(path / n)};" for n in files))


def _input_hashes(cfg: PrepareConfig, data_dir: Path) -> dict[str, str]:
    """SHA-256 of everything the output depends on besides the request itself."""
    hashes = {}
    for split in cfg.splits:
        p = data_dir / f"{split}.json"
        if p.is_file():
            hashes[f"{split}.json"] = sha256_file(p)
    if (data_dir / FORMAT_FILENAME).is_file():
        hashes[FORMAT_FILENAME] = sha256_file(data_dir / FORMAT_FILENAME)
    instr = Path(cfg.instructions_path) if cfg.instructions_path else DEFAULT_INSTRUCTIONS_PATH
    hashes["instructions"] = sha256_file(instr)
    if not _is_preset(cfg.base_model):
        if not Path(cfg.base_model).is_dir():
            raise ValueError(
                f"base_model {cfg.base_model!r} is neither a preset ({', '.join(_PRESETS)}) nor a local directory "
                "(this toolkit runs offline)"
            )
        hashes["base_tokenizer"] = _base_tokenizer_hash(Path(cfg.base_model))
    return hashes


def _request(cfg: PrepareConfig) -> dict[str, Any]:
    # Folders are compared by content (the hashes), not by path, so a moved folder stays cached.
    d = config_to_dict(cfg)
    d.pop("data_dir")
    d.pop("out_dir")
    return d


def _cache_is_current(out: Path, request: dict[str, Any], hashes: dict[str, str]) -> bool:
    stats_path = out / "stats.json"
    if not (stats_path.is_file() and (out / "prepare_config.yaml").is_file() and (out / "train").is_dir()
            and (out / "tokenizer").is_dir()):
        return False
    try:
        stats = json.loads(stats_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return False
    return (stats.get("version") == PREPARE_VERSION and stats.get("request") == request
            and stats.get("inputs") == hashes)


def _check_out_dir(out: Path) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise FileExistsError(f"out_dir {out} exists and is not a directory")
    entries = [p.name for p in out.iterdir()]
    if entries and not (out / "prepare_config.yaml").is_file():
        raise FileExistsError(
            f"out_dir {out} is not empty and is not an earlier prepare output (no prepare_config.yaml; found "
            f"{sorted(entries)[:8]}); it would be replaced as a whole: choose another folder"
        )


_SPAN_RE = re.compile(re.escape(MOTION_START) + r".*?" + re.escape(MOTION_END), re.DOTALL)
_VOCAB_TOKEN_RE = re.compile(r"<motion_id_[0-9]+>")


def _plain_text(text: str) -> str:
    """``text`` without motion spans / tokens (what the BPE tokenizer should learn from)."""
    return _VOCAB_TOKEN_RE.sub(" ", _SPAN_RE.sub(" ", text)).strip()


def _bpe_texts(records: list[dict[str, Any]]) -> list[str]:
    """Text of the train records for the BPE corpus: instructions, inputs and caption outputs with
    the motion spans removed; motion outputs are left out (vocab: they are added tokens; digits:
    comma-joined codes would crowd out the words). Duplicates are kept once."""
    texts: dict[str, None] = {}
    for rec in records:
        for s in (rec["instruction"], rec.get("input") or "", rec.get("caption") or ""):
            s = _plain_text(s)
            if s:
                texts[s] = None
        if rec["_task"] not in MOTION_OUTPUT_TASKS:
            s = _plain_text(rec["output"])
            if s:
                texts[s] = None
    return list(texts)


_INT = r"(?:0|[1-9][0-9]*)"
_FAST_RE = {
    "vocab": re.compile(rf"(?:<motion_id_{_INT}>)+", re.ASCII),
    "digits": re.compile(rf"{_INT}(?:,{_INT})*", re.ASCII),
}
_DIGIT_RUN_RE = re.compile(r"[0-9]+", re.ASCII)


def _fast_valid_motion(text: str, fmt: MotionTokenFormat) -> bool:
    """True for a canonical non-empty span (wrapped, or bare) with every code < nb_code: the
    common case, checked with one regex instead of :func:`text_to_codes` (6x faster on 50k
    records). False means "not sure": the caller asks ``text_to_codes``."""
    body = text
    if body.startswith(MOTION_START) and body.endswith(MOTION_END):
        body = body[len(MOTION_START): len(body) - len(MOTION_END)]
    if not _FAST_RE[fmt.kind].fullmatch(body):
        return False
    return max(int(d) for d in _DIGIT_RUN_RE.findall(body)) < fmt.nb_code


def _load_split(path: Path, fmt: MotionTokenFormat, instructions: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Records of one file with ``_task`` resolved and motion outputs checked against ``fmt``."""
    records = read_records(path)
    for i, rec in enumerate(records):
        task = rec.get("task") or task_of_instruction(rec["instruction"], instructions) or "unknown"
        rec["_task"] = task
        if task in MOTION_OUTPUT_TASKS and not _fast_valid_motion(rec["output"], fmt):
            res = text_to_codes(rec["output"], fmt)  # slow path: the exact verdict and its problems
            if not res.ok or not res.codes:
                raise ValueError(
                    f"{path}: record {i} (task {task}): output is not a valid {fmt.kind} motion span "
                    f"({'; '.join(res.problems[:3]) or 'no codes'}); is the format right? "
                    f"output starts {rec['output'][:60]!r}"
                )
    return records


def _make_tokenizer(cfg: PrepareConfig, train_records: list[dict[str, Any]],
                    instructions: dict[str, list[str]]) -> "PreTrainedTokenizerBase":
    from motiongpt.llm.model import train_bpe_tokenizer

    if _is_preset(cfg.base_model):
        corpus = tokenizer_corpus(_bpe_texts(train_records), instructions)
        tok = train_bpe_tokenizer(corpus, cfg.vocab_size, None, min_frequency=cfg.min_frequency,
                                  model_max_length=max(1024, cfg.max_len))
    else:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(cfg.base_model), local_files_only=True)
    if tok.eos_token_id is None:
        raise ValueError(f"the tokenizer of base_model {cfg.base_model!r} has no eos token")
    if tok.pad_token_id is None:  # the collator pads; same rule as model.load_base_model
        tok.pad_token = tok.unk_token if tok.unk_token is not None else tok.eos_token
    return tok


def _tokenize_batch(batch: dict[str, list], tokenizer: Any, template: str, max_len: int,
                    train_on_prompt: bool, truncate: bool, special: frozenset[int], lead: list[int]) -> dict[str, list]:
    """Batched :func:`build_example` (same ids), plus the drop / truncate policy."""
    prompts = [build_prompt({"instruction": ins, "input": inp}, template, tokenizer)
               for ins, inp in zip(batch["instruction"], batch["input"], strict=True)]
    prompt_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(batch["output"], add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    out: dict[str, list] = {"input_ids": [], "labels": [], "length": [], "_status": []}
    for p, r in zip(prompt_ids, response_ids, strict=True):
        prompt = lead + list(p)
        response = list(r) + [eos]
        status = STATUS_KEPT
        if len(prompt) + len(response) > max_len:
            # leading special tokens (bos, or a chat template's) always stay in front
            n_lead = 0
            while n_lead < len(prompt) and prompt[n_lead] in special:
                n_lead += 1
            keep = max_len - len(response) - n_lead
            if not truncate or keep < 1:
                out["input_ids"].append([])
                out["labels"].append([])
                out["length"].append(len(prompt) + len(response))
                out["_status"].append(STATUS_DROPPED)
                continue
            prompt = prompt[:n_lead] + prompt[len(prompt) - keep:]
            status = STATUS_TRUNCATED
        ids = prompt + response
        labels = ids if train_on_prompt else [IGNORE_INDEX] * len(prompt) + response
        out["input_ids"].append(ids)
        out["labels"].append(list(labels))
        out["length"].append(len(ids))
        out["_status"].append(status)
    return out


def _length_stats(lengths: np.ndarray) -> dict[str, float]:
    if lengths.size == 0:
        return {"min": 0, "mean": 0.0, "p50": 0.0, "p95": 0.0, "max": 0}
    return {"min": int(lengths.min()), "mean": round(float(lengths.mean()), 2),
            "p50": float(np.percentile(lengths, 50)), "p95": float(np.percentile(lengths, 95)),
            "max": int(lengths.max())}


def _tokenize_split(records: list[dict[str, Any]], tokenizer: Any, template: str, cfg: PrepareConfig,
                    out_path: Path) -> dict[str, Any]:
    from datasets import Dataset, Features, List, Value

    special = frozenset(tokenizer.all_special_ids)
    # exactly what encode_prompt puts in front of a prompt (bos for Alpaca; nothing for a chat
    # prompt, which renders its own special tokens)
    lead = encode_prompt(tokenizer, "", template)
    ds = Dataset.from_dict({
        "instruction": [r["instruction"] for r in records],
        "input": [r.get("input") or "" for r in records],
        "output": [r["output"] for r in records],
        "task": [r["_task"] for r in records],
        "motion": [str(r.get("motion", "")) for r in records],
    })
    features = Features({
        "task": Value("string"), "motion": Value("string"),
        "input_ids": List(Value("int32")), "labels": List(Value("int32")),
        "length": Value("int32"), "_status": Value("int8"),
    })
    # num_proc=None: in this process. datasets 5 treats num_proc=1 as a pool of one worker
    # process (the tokenizer pickled over, every batch sent through a pipe): measured 2-3x slower.
    ds = ds.map(
        _tokenize_batch, batched=True, batch_size=cfg.batch_size, num_proc=None,
        remove_columns=["instruction", "input", "output"], features=features,
        fn_kwargs={"tokenizer": tokenizer, "template": template, "max_len": cfg.max_len,
                   "train_on_prompt": cfg.train_on_prompt, "truncate": cfg.truncate,
                   "special": special, "lead": lead},
        desc=f"tokenizing {out_path.name}",
    )
    # whole columns straight from Arrow (indexing ds[...] would iterate row by row)
    status = ds.data.column("_status").to_numpy().astype(np.int8)
    lengths_all = ds.data.column("length").to_numpy().astype(np.int64)
    tasks = ds.data.column("task").to_pylist()
    ds = ds.filter(lambda s: [x != STATUS_DROPPED for x in s], batched=True, input_columns="_status",
                   batch_size=cfg.batch_size)
    ds = ds.remove_columns("_status").select_columns(["input_ids", "labels", "length", "task", "motion"])
    ds.save_to_disk(str(out_path))

    kept = status != STATUS_DROPPED
    per_task: dict[str, dict[str, int]] = {}
    for task, st, n in zip(tasks, status.tolist(), lengths_all.tolist(), strict=True):
        t = per_task.setdefault(task, {"records": 0, "kept": 0, "dropped_too_long": 0, "tokens": 0})
        t["records"] += 1
        if st == STATUS_DROPPED:
            t["dropped_too_long"] += 1
        else:
            t["kept"] += 1
            t["tokens"] += n
    return {
        "records": int(status.size),
        "kept": int(kept.sum()),
        "dropped_too_long": int((status == STATUS_DROPPED).sum()),
        "truncated": int((status == STATUS_TRUNCATED).sum()),
        "tokens": int(lengths_all[kept].sum()),
        "length": _length_stats(lengths_all[kept]),
        "length_before_filter": _length_stats(lengths_all),
        "per_task": dict(sorted(per_task.items())),
    }


# --------------------------------------------------------------------------------------------
# entry points


def prepare_dataset(cfg: PrepareConfig, *, force: bool = False) -> Path:
    """Tokenize ``cfg.data_dir``'s record files into ``cfg.out_dir`` (layout in the module doc).

    A no-op (returns at once, nothing rewritten) when ``out_dir`` already holds the output of the
    same request for input files with the same SHA-256, unless ``force``. Returns ``out_dir``.
    """
    t0 = time.time()
    cfg.validate()
    data_dir, out = Path(cfg.data_dir), Path(cfg.out_dir)
    if not (data_dir / "train.json").is_file():
        raise FileNotFoundError(f"{data_dir / 'train.json'} not found (data_dir must hold the instruction records)")
    fmt = _resolve_format(cfg, data_dir)
    request = _request(cfg)
    hashes = _input_hashes(cfg, data_dir)
    if not force and _cache_is_current(out, request, hashes):
        log.info("%s is up to date (same request and inputs); nothing to do", out)
        return out
    _check_out_dir(out)

    instructions = load_instructions(cfg.instructions_path)
    splits: dict[str, list[dict[str, Any]]] = {}
    for split in cfg.splits:
        path = data_dir / f"{split}.json"
        if path.is_file():
            splits[split] = _load_split(path, fmt, instructions)
        elif split == "train":
            raise FileNotFoundError(f"{path} not found")
    if not splits["train"]:
        raise ValueError(f"{data_dir / 'train.json'} holds no records")
    if cfg.max_records is not None and len(splits["train"]) > cfg.max_records:
        idx = sorted(random.Random(cfg.seed).sample(range(len(splits["train"])), cfg.max_records))
        splits["train"] = [splits["train"][i] for i in idx]

    tokenizer = _make_tokenizer(cfg, splits["train"], instructions)
    base_vocab = len(tokenizer)
    from motiongpt.llm.model import add_motion_tokens

    ids = add_motion_tokens(tokenizer, None, fmt)
    template = resolve_template(cfg.template, tokenizer)

    resolved = PrepareConfig(**{**config_to_dict(cfg), "format": fmt.kind, "nb_code": fmt.nb_code,
                                "template": template})
    stats: dict[str, Any] = {
        "version": PREPARE_VERSION,
        "request": request,
        "inputs": hashes,
        "format": fmt.to_dict(),
        "template": template,
        "tokenizer": {"size": len(tokenizer), "base_size": base_vocab, "motion_tokens_added": ids.num_added,
                      "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
                      "pad_token_id": tokenizer.pad_token_id},
        "splits": {},
    }
    with atomic_directory(out) as tmp:
        for split, records in splits.items():
            s = _tokenize_split(records, tokenizer, template, cfg, tmp / split)
            stats["splits"][split] = s
            L = s["length"]
            log.info(
                "%s: %d records -> %d kept, %d dropped (> max_len %d), %d truncated; tokens %d; "
                "length min %s mean %s p50 %s p95 %s max %s",
                split, s["records"], s["kept"], s["dropped_too_long"], cfg.max_len, s["truncated"], s["tokens"],
                L["min"], L["mean"], L["p50"], L["p95"], L["max"],
            )
            if s["dropped_too_long"]:
                log.warning("%s: %d of %d examples are longer than max_len %d and were %s", split,
                            s["dropped_too_long"], s["records"], cfg.max_len, "dropped")
        if stats["splits"]["train"]["kept"] == 0:
            raise ValueError(f"every train example is longer than max_len {cfg.max_len}: raise max_len")
        tokenizer.save_pretrained(str(tmp / "tokenizer"))
        save_motion_format(fmt, tmp)
        (tmp / INSTRUCTION_CONFIG_FILE).write_text(json.dumps(instruction_settings(data_dir), indent=1) + "\n",
                                                   encoding="utf-8")
        save_config(resolved, tmp / "prepare_config.yaml")
        stats["seconds"] = round(time.time() - t0, 3)
        (tmp / "stats.json").write_text(json.dumps(stats, indent=1) + "\n", encoding="utf-8")
    return out


INSTRUCTION_CONFIG_FILE = "instruction_config.json"
"""The instruction builder's settings, copied into a prepared folder (and from there into every run
trained on it: ``resolved.instruction_config`` of ``run_config.yaml``)."""


def instruction_settings(data_dir: str | os.PathLike) -> dict[str, Any]:
    """``{"config": <the instruction builder's config>, "source": <its meta.json>}`` of an instruction
    dataset, or ``{"config": None, "source": None, "reason": ...}`` for records the builder did not
    make (e.g. MotionGPT-LoRA's ``train.json``): generation then says which settings it assumes."""
    meta_path = Path(data_dir) / "meta.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"config": None, "source": None, "reason": f"{meta_path} not found (records not made by "
                "scripts/generate_dataset.py)"}
    except ValueError as e:
        raise ValueError(f"{meta_path}: not JSON ({e})") from e
    cfg = meta.get("config") if isinstance(meta, dict) else None
    if not isinstance(cfg, dict):
        raise ValueError(f"{meta_path}: no 'config' object (not the instruction builder's meta.json)")
    return {"config": cfg, "source": str(meta_path.resolve())}


def load_prepared(out_dir: str | os.PathLike, splits: tuple[str, ...] = ("train", "val")) -> dict[str, Any]:
    """Open a prepared folder: ``{"train": Dataset, "val": Dataset (if present), "tokenizer",
    "format": MotionTokenFormat, "config": dict (prepare_config.yaml), "stats": dict,
    "instruction": dict (``instruction_config.json``; read from the data folder for a folder
    prepared before it was written)}``."""
    from datasets import load_from_disk
    from transformers import AutoTokenizer

    out = Path(out_dir)
    if not (out / "prepare_config.yaml").is_file():
        raise FileNotFoundError(f"{out} is not a prepared dataset (no prepare_config.yaml)")
    result: dict[str, Any] = {
        "tokenizer": AutoTokenizer.from_pretrained(str(out / "tokenizer"), local_files_only=True),
        "format": load_motion_format(out),
        "config": yaml.safe_load((out / "prepare_config.yaml").read_text(encoding="utf-8")),
        "stats": json.loads((out / "stats.json").read_text(encoding="utf-8")),
    }
    instr = out / INSTRUCTION_CONFIG_FILE
    if instr.is_file():
        result["instruction"] = json.loads(instr.read_text(encoding="utf-8"))
    else:
        result["instruction"] = instruction_settings((result["config"] or {}).get("data_dir") or out)
    for split in splits:
        if (out / split).is_dir():
            result[split] = load_from_disk(str(out / split))
    return result
