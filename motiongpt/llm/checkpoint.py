"""Fine-tuning output directories: checkpoints, the ``latest`` pointer, pruning, and reloading.

Layout of ``out_dir`` (default ``lora/<run_name>``)::

    out_dir/
      adapter_config.json adapter_model.safetensors   final adapter (lora / qlora / 8bit), PEFT format
      config.json model.safetensors ...               or final full weights (full), save_pretrained format
      tokenizer.json tokenizer_config.json ...        the tokenizer the data was prepared with
      motion_format.json run_config.yaml              token format; resolved config + provenance
      train_summary.json                              written last: the run finished
      base_model/         adapter runs on a preset only: the exact (random-init) base the adapter
                          was trained on (a preset cannot be rebuilt bit-for-bit by later tools otherwise)
      checkpoint-<step>/  the same model files + training state (optimizer, RNG per rank, step)
      latest              text file: name of the newest complete checkpoint (written after it)
      metrics.jsonl tb/   training / validation scalars

So ``out_dir`` itself is loadable (``--lora_path out_dir``): with plain peft
``PeftModel.from_pretrained(base, out_dir)`` or plain transformers
``AutoModelForCausalLM.from_pretrained(out_dir)`` (full), and with :func:`load_finetuned`, which
also rebuilds the right base model (vocabulary grown for motion tokens, quantization as asked).

``run_config.yaml`` holds the :class:`~motiongpt.llm.finetune_config.FinetuneConfig` fields plus a
``resolved`` section (base model path, adapter / new-token handling, token format, template,
tasks, prepared-data config, data fingerprint, library versions); :func:`read_run_config` splits
the two.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from motiongpt.config import atomic_write_text, config_to_dict
from motiongpt.llm.finetune_config import FinetuneConfig
from motiongpt.utils.atomic import atomic_write_bytes

if TYPE_CHECKING:  # pragma: no cover
    from transformers import PreTrainedTokenizerBase

__all__ = [
    "CHECKPOINT_PREFIX",
    "LATEST_FILE",
    "RUN_CONFIG_FILE",
    "SUMMARY_FILE",
    "BASE_MODEL_DIR",
    "TRAIN_STATE_FILE",
    "list_checkpoints",
    "latest_checkpoint",
    "write_latest",
    "prune_checkpoints",
    "write_run_config",
    "read_run_config",
    "publish_model_files",
    "model_file_names",
    "resolve_base_dir",
    "load_finetuned",
    "export_merged",
]

CHECKPOINT_PREFIX = "checkpoint-"
LATEST_FILE = "latest"
RUN_CONFIG_FILE = "run_config.yaml"
SUMMARY_FILE = "train_summary.json"
BASE_MODEL_DIR = "base_model"
TRAIN_STATE_FILE = "trainer_state.json"

# Files of a checkpoint that are training state, not the model: never published at the top level.
_STATE_PREFIXES = ("optimizer.", "rng_state", TRAIN_STATE_FILE)


def _step_of(path: Path) -> int | None:
    name = path.name
    if not name.startswith(CHECKPOINT_PREFIX):
        return None
    tail = name[len(CHECKPOINT_PREFIX):]
    return int(tail) if tail.isdigit() else None


def list_checkpoints(out_dir: str | os.PathLike) -> list[Path]:
    """Complete ``checkpoint-<step>`` directories of ``out_dir``, oldest first."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    found = [(s, p) for p in out_dir.iterdir() if p.is_dir() and (s := _step_of(p)) is not None
             and (p / TRAIN_STATE_FILE).is_file()]
    return [p for _, p in sorted(found)]


def latest_checkpoint(out_dir: str | os.PathLike) -> Path | None:
    """The checkpoint named by ``out_dir/latest`` (None when there is none)."""
    pointer = Path(out_dir) / LATEST_FILE
    if not pointer.is_file():
        return None
    path = pointer.parent / pointer.read_text(encoding="utf-8").strip()
    if not (path / TRAIN_STATE_FILE).is_file():
        raise FileNotFoundError(f"{pointer} names {path.name}, which is not a complete checkpoint")
    return path


def write_latest(out_dir: str | os.PathLike, checkpoint: Path) -> None:
    """Point ``out_dir/latest`` at ``checkpoint`` (atomically)."""
    atomic_write_text(Path(out_dir) / LATEST_FILE, checkpoint.name + "\n")


def prune_checkpoints(out_dir: str | os.PathLike, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` checkpoints (0 keeps all); never the ``latest`` one."""
    if keep <= 0:
        return []
    ckpts = list_checkpoints(out_dir)
    latest = latest_checkpoint(out_dir)
    removed = []
    for old in ckpts[:-keep]:
        if latest is not None and old.resolve() == latest.resolve():
            continue
        shutil.rmtree(old, ignore_errors=True)
        removed.append(old)
    return removed


# --------------------------------------------------------------------------------------------
# run config


def write_run_config(folder: str | os.PathLike, cfg: FinetuneConfig, resolved: dict[str, Any]) -> Path:
    """Write ``run_config.yaml``: the config fields, then the ``resolved`` provenance section."""
    data = config_to_dict(cfg)
    data["resolved"] = resolved
    path = Path(folder) / RUN_CONFIG_FILE
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))
    return path


def read_run_config(folder: str | os.PathLike) -> tuple[FinetuneConfig, dict[str, Any]]:
    """``(FinetuneConfig, resolved)`` from a run or checkpoint directory (or the yaml file itself)."""
    from motiongpt.config import load_config

    path = Path(folder)
    if path.is_dir():
        path = path / RUN_CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: not a motiongpt fine-tuning output")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    resolved = data.pop("resolved", {}) or {}
    # load_config validates every key and type but reads a file: give it the config part alone
    with tempfile.TemporaryDirectory(prefix="motiongpt_runcfg_") as tmp:
        cfg_path = Path(tmp) / RUN_CONFIG_FILE
        cfg_path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        cfg = load_config(FinetuneConfig, cfg_path)
    return cfg, resolved


# --------------------------------------------------------------------------------------------
# publishing the final model at the top level


def model_file_names(checkpoint: Path) -> list[str]:
    """The files of ``checkpoint`` that make up the model (not its training state)."""
    return sorted(p.name for p in checkpoint.iterdir() if p.is_file() and not p.name.startswith(_STATE_PREFIXES))


def publish_model_files(checkpoint: Path, out_dir: Path) -> list[str]:
    """Copy the model files of ``checkpoint`` to ``out_dir`` (each file atomically).

    ``run_config.yaml`` goes last among them, and the caller writes ``train_summary.json`` after
    that, so a reader that finds the summary finds a complete, consistent model. Model files of an
    earlier publish that this checkpoint lacks (e.g. another weight shard) are removed first.
    """
    names = model_file_names(checkpoint)
    previous = out_dir / SUMMARY_FILE
    if previous.is_file():
        old = json.loads(previous.read_text(encoding="utf-8")).get("files", [])
        for name in old:
            if name not in names:
                (out_dir / name).unlink(missing_ok=True)
        previous.unlink()
    ordered = [n for n in names if n != RUN_CONFIG_FILE] + ([RUN_CONFIG_FILE] if RUN_CONFIG_FILE in names else [])
    for name in ordered:
        atomic_write_bytes(out_dir / name, (checkpoint / name).read_bytes())
    return ordered


# --------------------------------------------------------------------------------------------
# reloading


def resolve_base_dir(folder: str | os.PathLike, resolved: dict[str, Any]) -> str:
    """The base model of an adapter run: its saved ``base_model/`` (preset runs) or the recorded path."""
    folder = Path(folder)
    if resolved.get("base_saved"):
        for cand in (folder / BASE_MODEL_DIR, folder.parent / BASE_MODEL_DIR):
            if (cand / "config.json").is_file():
                return str(cand)
        raise FileNotFoundError(
            f"the adapter in {folder} was trained on a preset base saved as {BASE_MODEL_DIR}/ next to it, "
            "which is missing"
        )
    base = resolved.get("base_model_path")
    if not base:
        raise ValueError(f"{folder / RUN_CONFIG_FILE} does not record the base model path")
    return str(base)


def load_finetuned(
    path: str | os.PathLike,
    *,
    method: str | None = None,
    dtype: str = "auto",
    device: str = "cpu",
    is_trainable: bool = False,
) -> tuple[Any, "PreTrainedTokenizerBase", Any, dict[str, Any]]:
    """Load a fine-tuned model from a run directory or a checkpoint directory.

    Returns ``(model, tokenizer, motion_format, info)`` where ``info`` holds ``config``
    (:class:`FinetuneConfig`), ``resolved`` and ``adapter`` (bool). Adapter runs: the base model
    (``base_model/`` for preset runs, else the recorded directory) is loaded through
    :func:`~motiongpt.llm.model.load_base_model` with ``method`` (default: the run's method, so a
    QLoRA adapter gets its 4-bit base; pass ``lora`` for an unquantized base, e.g. to merge), its
    vocabulary is grown for the motion tokens exactly as in training (seeded), and the adapter is
    applied with ``peft.PeftModel.from_pretrained``. Full runs: the directory is the model.
    """
    from motiongpt.llm.model import add_motion_tokens, load_base_model
    from motiongpt.llm.tokens import load_motion_format

    path = Path(path)
    cfg, resolved = read_run_config(path)
    fmt = load_motion_format(path)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    adapter = bool(resolved.get("adapter", cfg.method != "full"))
    info = {"config": cfg, "resolved": resolved, "adapter": adapter}
    if not adapter:
        model, tok = load_base_model(str(path), tok, method="full", dtype=dtype, device=device)
        model.eval()
        return model, tok, fmt, info
    from peft import PeftModel

    base_dir = resolve_base_dir(path, resolved)
    base, tok = load_base_model(base_dir, tok, method=method or cfg.method, dtype=dtype, device=device)
    if base.get_input_embeddings().weight.shape[0] < len(tok):
        add_motion_tokens(tok, base, fmt, seed=cfg.motion_init_seed)
    model = PeftModel.from_pretrained(base, str(path), is_trainable=is_trainable)
    if not is_trainable:
        model.eval()
    return model, tok, fmt, info


def export_merged(
    lora_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    dtype: str = "float32",
    device: str = "cpu",
    overwrite: bool = False,
) -> Path:
    """Merge an adapter run into its base model and save a plain transformers model directory.

    ``lora_path``: a run or checkpoint directory of an adapter method. The base is loaded
    *unquantized* in ``dtype`` (merging into a 4-bit base would re-quantize the update; a QLoRA
    adapter is merged into the full-precision base it was trained against — for a preset base that
    is the exact saved ``base_model/``). ``out_dir`` gets ``config.json`` + ``model.safetensors``
    (``save_pretrained``), the tokenizer, ``motion_format.json`` and a ``run_config.yaml`` marking it
    a plain model (``resolved.adapter: false``, ``merged_from``), written atomically. The result
    loads with ``AutoModelForCausalLM.from_pretrained(out_dir, local_files_only=True)`` and works as
    ``--lora_path`` or as ``base_model`` of a further fine-tune.
    """
    from motiongpt.llm.tokens import save_motion_format
    from motiongpt.utils.atomic import atomic_directory

    lora_path, out_dir = Path(lora_path), Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{out_dir} exists and is not empty (pass overwrite=True / --overwrite)")
    model, tok, fmt, info = load_finetuned(lora_path, method="lora", dtype=dtype, device=device)
    if not info["adapter"]:
        raise ValueError(f"{lora_path} holds a full model (method {info['config'].method!r}): nothing to merge")
    merged = model.merge_and_unload()
    resolved = dict(info["resolved"])
    resolved.update(adapter=False, merged_from=str(lora_path.resolve()), merged_dtype=dtype,
                    base_saved=False)
    with atomic_directory(out_dir) as tmp:
        merged.save_pretrained(str(tmp))
        tok.save_pretrained(str(tmp))
        save_motion_format(fmt, tmp)
        write_run_config(tmp, info["config"], resolved)
    return out_dir
